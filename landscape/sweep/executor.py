"""The one small interface between a record and whoever trains its runs.

`landscape.sweep.entry` (`landscape.record`, `landscape.resume`) plans the runs, checks the
options, the limits and the machine, takes the writer lock and creates or reopens the record;
then it hands the runs to an executor. An executor decides where and when each run trains,
never what it measures (every executor trains a run with `landscape.sweep.run.train_one`):

- `check(config)`: refuse, before the file exists, options it cannot run;
- `session(path, new=...)`: around the writing (Ray: connect to the cluster, the shard folder);
- `continue_runs(writer, plans, path)`: make the unfinished runs of a reopened record ready to
  continue (before SWMR mode: a table can only shrink before it), whichever executor wrote
  them: a run in progress continues from its checkpoint, the record's (local) or its shard's
  (Ray); it returns the plans still to train and the checkpoints they continue from;
- `run(sweep)`: train these plans into `sweep.writer`, report progress (each executor is given
  its own reporter: a bar per run locally, one for the sweep on Ray), and stop after the
  current step of every run when `sweep.should_stop()` says so.

The two executors: `landscape.sweep.local.LocalExecutor` (the runs one after another in this
process) and `landscape.sweep.ray_executor.RayExecutor` (every run a Ray task).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Mapping, Protocol

from landscape.config import RecordConfig
from landscape.store import RecordWriter
from landscape.sweep.plans import RunPlan, RunResult
from landscape.training.checkpoint import Checkpoint
from landscape.training.tasks import Task


@dataclass(frozen=True)
class Sweep:
    """The runs an executor is handed, in plan order, and the record they go into."""

    config: RecordConfig
    plans: list[RunPlan]
    n_runs: int  # every run of the record (the progress shows [i/n_runs])
    task: Task  # the data, loaded once by the driver
    writer: RecordWriter
    path: Path
    formats: Mapping[str, str]  # run id -> memory format (see landscape.sweep.formats)
    should_stop: Callable[[], bool]
    resume_from: Mapping[str, Checkpoint] = field(default_factory=dict)  # run id -> its
    # checkpoint, as continue_runs found them


class Executor(Protocol):
    def check(self, config: RecordConfig) -> None:
        """Refuse options this executor cannot run (ConfigError)."""

    def session(self, path: Path, *, new: bool) -> ContextManager[None]:
        """Held while the record at `path` is written (`new`: it is being created)."""

    def continue_runs(self, writer: RecordWriter, plans: list[RunPlan], path: Path
                      ) -> tuple[list[RunPlan], dict[str, Checkpoint]]:
        """Make `plans`' runs of the reopened record ready to continue; the plans still to
        train, and the checkpoints of those that continue from one."""

    def run(self, sweep: Sweep) -> list[RunResult]:
        """Train the plans; the results of those that ran, in plan order."""


@contextlib.contextmanager
def nothing_around():
    yield
