"""Recorders: what the training loop hands its measurements to.

`HDF5Recorder` writes one run of a record file, buffering rows in memory and writing them out at
a bounded interval (`flush_seconds`), so that a killed process loses at most that much.
`MemoryRecorder` keeps everything in numpy arrays, for use from Python without a file.
"""

from __future__ import annotations

import time
from typing import Mapping

import numpy as np

from landscape.store import RecordWriter


class HDF5Recorder:
    def __init__(self, writer: RecordWriter, run_id: str, *, flush_seconds: float) -> None:
        self._writer = writer
        self._run = writer.run(run_id)
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()
        self._buffers: dict[str, list[Mapping[str, np.ndarray]]] = {}
        self._steps_recorded = 0

    def steps(self, rows: Mapping[str, np.ndarray]) -> None:
        self._buffer("steps", rows)
        self._steps_recorded += len(rows["step"])

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None:
        self._buffer(f"taps/{parameter}", rows)

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None:
        self._buffer(name, rows)

    def evaluation(self, row: Mapping[str, float]) -> None:
        self._buffer("eval", {k: np.asarray([v]) for k, v in row.items()})

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None, flush: bool = False) -> None:
        """The run's status; written (with every buffered row) when the run stops, when asked
        to `flush`, and otherwise at most every `flush_seconds`."""
        finished = status != "running"
        if finished or flush or time.monotonic() - self._last_flush >= self._flush_seconds:
            self._write_buffers()
            self._run.set_state(status, steps_done=steps_done, diverged_step=diverged_step,
                                seconds=seconds)
            self._writer.flush()
            self._last_flush = time.monotonic()

    def interrupted(self) -> None:
        """Write what was measured so far and mark the run interrupted."""
        self.state("interrupted", steps_done=self._steps_recorded)

    def _buffer(self, path: str, rows: Mapping[str, np.ndarray]) -> None:
        self._buffers.setdefault(path, []).append(rows)

    def _write_buffers(self) -> None:
        for path, chunks in self._buffers.items():
            self._run.table(path).append(
                **{c: np.concatenate([chunk[c] for chunk in chunks]) for c in chunks[0]})
        self._buffers = {}


class MemoryRecorder:
    """Collects a run's measurements in memory; `arrays()` concatenates them."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[Mapping[str, np.ndarray]]] = {}
        self.status = "pending"
        self.steps_done = 0
        self.diverged_step: int | None = None

    def steps(self, rows: Mapping[str, np.ndarray]) -> None:
        self.chunks.setdefault("steps", []).append(rows)

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None:
        self.chunks.setdefault(f"taps/{parameter}", []).append(rows)

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None:
        self.chunks.setdefault(name, []).append(rows)

    def evaluation(self, row: Mapping[str, float]) -> None:
        self.chunks.setdefault("eval", []).append({k: np.asarray([v]) for k, v in row.items()})

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None, flush: bool = False) -> None:
        self.status, self.steps_done, self.diverged_step = status, steps_done, diverged_step

    def arrays(self, table: str) -> dict[str, np.ndarray]:
        chunks = self.chunks.get(table, [])
        if not chunks:
            return {}
        return {c: np.concatenate([chunk[c] for chunk in chunks]) for c in chunks[0]}
