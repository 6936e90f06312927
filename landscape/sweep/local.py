"""The local executor: the runs of a record one after another in this process."""

from __future__ import annotations

from pathlib import Path

import torch

from landscape.config import RecordConfig
from landscape.store import RecordWriter, RunStatus
from landscape.sweep.executor import Sweep, nothing_around
from landscape.sweep.plans import RunPlan, RunResult
from landscape.sweep.run import ProgressFactory, train_one
from landscape.training.checkpoint import Checkpoint, checkpoint_path, load_checkpoint
from landscape.training.precision import numerics
from landscape.training.tuning import FORMATS


class LocalExecutor:
    """`progress(plan, n_runs, total_steps)` gives each run's Progress (a bar, say); the run
    in progress checkpoints next to the record (`RECORD.h5.ckpt`)."""

    def __init__(self, progress: ProgressFactory | None = None) -> None:
        self.progress = progress

    def check(self, config: RecordConfig) -> None:
        pass  # the entry checks everything a run in this process needs

    def session(self, path: Path, *, new: bool):
        return nothing_around()

    def continue_runs(self, writer: RecordWriter, plans: list[RunPlan],
                      path: Path) -> Checkpoint | None:
        """The checkpointed run keeps its rows up to its checkpoint; every other unfinished
        run starts again."""
        saved = load_checkpoint(checkpoint_path(path))
        for plan in plans:
            start = saved.loop.next_step if saved and saved.run_id == plan.run_id else 0
            writer.run(plan.run_id).truncate(start)
        return saved

    def run(self, sweep: Sweep) -> list[RunResult]:
        config, resume_from, path = sweep.config, sweep.resume_from, sweep.path
        device = torch.device(config.device)
        results = []
        with numerics(device, config.allow_tf32):
            for plan in sweep.plans:
                saved = resume_from if resume_from and resume_from.run_id == plan.run_id else None
                fmt = sweep.formats.get(plan.run_id)
                run_task = sweep.task if fmt is None else sweep.task.using(FORMATS[fmt])
                result = train_one(config, plan, sweep.n_runs, run_task, sweep.writer, device,
                                   self.progress, sweep.should_stop, path, saved)
                results.append(result)
                if result.outcome.status == RunStatus.INTERRUPTED:
                    return results
                checkpoint_path(path).unlink(missing_ok=True)  # nothing left to continue
        return results
