"""How a Ray task tells the driver how far its run is: a small JSON file next to its shard
(`R.h5.shards/<run>.h5.progress`), replaced at every host sync and around slow probes. A Ray
actor for this would be one more process importing torch on every sweep.

The file holds [steps done, steps planned, last loss, the probe running or null], so that the
driver's bar can say that a run is inside a Hessian probe (a minute per step on a CPU) rather
than look hung.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import NamedTuple

from landscape.store.side_files import create_new

# A probe that took less than this last time is not announced (no file write per fast probe).
SLOW_PROBE_SECONDS = 0.5


class RunProgress(NamedTuple):
    """What a run reported last: steps done and planned, its last loss, and the probe it is
    running ('hessian (step 40)'), if any."""

    done: int
    planned: int
    loss: float
    probe: str | None = None


def progress_path(shard: Path) -> Path:
    return shard.with_name(shard.name + ".progress")


class FileProgress:
    """A run's Progress (see landscape.training.contracts) that the driver reads."""

    def __init__(self, shard: Path, total: int) -> None:
        self._path, self._total = progress_path(shard), total
        self._done, self._loss = 0, math.nan
        self._probe: str | None = None
        self._seconds: dict[str, float] = {}  # how long each probe took last time
        self._started: tuple[str, float, bool] | None = None  # name, start, announced

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        self._done += steps
        self._loss = loss
        self._write()

    def probing(self, name: str | None, step: int) -> None:
        """A probe starts (`name`) or ends (None): announced when it was slow last time, or
        has not run before."""
        now = time.perf_counter()
        if name is not None:
            announce = self._seconds.get(name, math.inf) >= SLOW_PROBE_SECONDS
            self._started = (name, now, announce)
            if announce:
                self._probe = f"{name} (step {step})"
                self._write()
            return
        if self._started is not None:
            running, start, announced = self._started
            self._seconds[running] = now - start
            self._started = None
            if announced:
                self._probe = None
                self._write()

    def _write(self) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        with os.fdopen(create_new(tmp, "the progress file"), "w") as file:
            file.write(json.dumps([self._done, self._total, self._loss, self._probe]))
        os.replace(tmp, self._path)


def read_progress(folder: Path) -> dict[str, RunProgress]:
    """run id -> its last report, for every run of the shards folder that has reported."""
    runs = {}
    for path in folder.glob("*.h5.progress"):
        try:
            runs[path.name.removesuffix(".h5.progress")] = RunProgress(
                *json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # removed as its run was copied in
            continue
    return runs
