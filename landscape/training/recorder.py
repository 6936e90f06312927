"""Recorders: what the training loop hands its measurements to.

`HDF5Recorder` writes one run of a record file, buffering rows in memory and writing them out at
a bounded interval (`flush_seconds`), so that a killed process loses at most that much.
`MemoryRecorder` keeps everything in numpy arrays, for use from Python without a file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import numpy as np

from landscape.errors import RecordError, RecordWriteError
from landscape.store.side_files import room_for
from landscape.store import (
    RecordWriter,
    RunStatus,
    StopReason,
    TableKind,
    table_path,
)


class HDF5Recorder:
    def __init__(self, writer: RecordWriter, run_id: str, *, flush_seconds: float,
                 steps_recorded: int = 0) -> None:
        self._writer = writer
        self._run = writer.run(run_id)
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()
        self._buffers: dict[str, list[Mapping[str, np.ndarray]]] = {}
        self._steps_recorded = steps_recorded
        self._steps_flushed = steps_recorded  # steps_done as the file has it

    def steps(self, rows: Mapping[str, np.ndarray]) -> None:
        self._buffer(TableKind.STEPS, rows)
        self._steps_recorded += len(rows["step"])

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None:
        self._buffer(table_path(TableKind.TAPS, parameter), rows)

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None:
        self._buffer(name, rows)

    def evaluation(self, row: Mapping[str, float]) -> None:
        self._buffer(TableKind.EVAL, {k: np.asarray([v]) for k, v in row.items()})

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None, flush: bool = False,
              stop_reason: str = StopReason.NONE) -> None:
        """The run's status (and, once it has finished, why it stopped); written (with every
        buffered row) when the run stops, when asked to `flush`, and otherwise at most every
        `flush_seconds`."""
        finished = status != RunStatus.RUNNING
        if finished or flush or time.monotonic() - self._last_flush >= self._flush_seconds:
            try:
                self._write_buffers()
                # The rows reach the file before the state that counts them: the state's few
                # bytes are written in place and succeed where the rows' new chunks fail (a
                # full disk), which would leave a run 'complete' without its last rows.
                self._writer.flush()
                self._run.set_state(status, steps_done=steps_done,
                                    diverged_step=diverged_step, seconds=seconds,
                                    stop_reason=stop_reason)
            # h5py reports a failed write as OSError (or RuntimeError from a flush).
            except (OSError, RuntimeError) as exc:  # disk full, file size limit, device gone
                # The writer repairs the file as it closes (RecordWriter.write_failed).
                raise self._writer.write_failed(exc) from exc
            except RecordWriteError:  # from the flush: nothing more is written
                raise
            except RecordError:  # refused for lack of room: the file is as at the last flush
                self._mark_interrupted()
                raise
            self._writer.flush()
            self._steps_flushed = steps_done
            self._last_flush = time.monotonic()

    def _mark_interrupted(self) -> None:
        """The run's status (a few bytes, no rows) set to interrupted after a refused write,
        so that `info` does not show it running; a failure here leaves it running."""
        try:
            self._run.set_state(RunStatus.INTERRUPTED, steps_done=self._steps_flushed)
            self._writer.flush()
        except (OSError, RuntimeError, RecordError):
            pass

    def interrupted(self) -> None:
        """Write what was measured so far and mark the run interrupted."""
        self.state(RunStatus.INTERRUPTED, steps_done=self._steps_recorded)

    def _buffer(self, path: str, rows: Mapping[str, np.ndarray]) -> None:
        self._buffers.setdefault(path, []).append(rows)

    def _check_space(self) -> None:
        """Refuse to write when the disk cannot take it: a write that fails half way leaves
        HDF5 unable to release the file, while refusing before writing leaves the record
        exactly as it was at the last flush (and resumable)."""
        rows = sum(a.nbytes for chunks in self._buffers.values() for chunk in chunks
                   for a in chunk.values() if isinstance(a, np.ndarray))
        # Each table may start a new ~1 MiB chunk; HDF5 adds some metadata.
        needed = rows + len(self._buffers) * (1 << 20) + _SPACE_MARGIN
        free = free_bytes(self._writer.path)
        if free < needed:
            raise RecordError(
                f"not enough free space for {self._writer.path} ({free / 2**20:,.0f} MiB "
                f"free, {needed / 2**20:,.0f} MiB needed); nothing was lost: make room and "
                f"continue with: landscape record --resume {self._writer.path}")

    def _write_buffers(self) -> None:
        self._check_space()
        for path, chunks in self._buffers.items():
            self._run.table(path).append(
                **{c: np.concatenate([chunk[c] for chunk in chunks]) for c in chunks[0]})
        self._buffers = {}


_SPACE_MARGIN = 16 << 20


def free_bytes(path: Path) -> int:
    """Room for `path` to grow: free space on its file system, or less under a file-size
    limit (`ulimit -f`), where a write fails as on a full disk."""
    return room_for(path)


class MemoryRecorder:
    """Collects a run's measurements in memory; `arrays()` concatenates them."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[Mapping[str, np.ndarray]]] = {}
        self.status = RunStatus.PENDING
        self.steps_done = 0
        self.diverged_step: int | None = None
        self.stop_reason = StopReason.NONE

    def steps(self, rows: Mapping[str, np.ndarray]) -> None:
        self.chunks.setdefault(TableKind.STEPS, []).append(rows)

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None:
        self.chunks.setdefault(table_path(TableKind.TAPS, parameter), []).append(rows)

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None:
        self.chunks.setdefault(name, []).append(rows)

    def evaluation(self, row: Mapping[str, float]) -> None:
        self.chunks.setdefault(TableKind.EVAL, []).append(
            {k: np.asarray([v]) for k, v in row.items()})

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None, flush: bool = False,
              stop_reason: str = StopReason.NONE) -> None:
        self.status, self.steps_done, self.diverged_step = status, steps_done, diverged_step
        self.stop_reason = stop_reason

    def arrays(self, table: str) -> dict[str, np.ndarray]:
        chunks = self.chunks.get(table, [])
        if not chunks:
            return {}
        return {c: np.concatenate([chunk[c] for chunk in chunks]) for c in chunks[0]}
