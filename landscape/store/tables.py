"""A run's tables as a writer sees them: `Table` appends rows to one table's aligned arrays,
`RunWriter` finds a run's tables, truncates them past a resume point and sets the run's state.
`rows_to_keep` is how many rows survive that truncation."""

from __future__ import annotations

import h5py
import numpy as np

from landscape.store._hdf5 import read_table_column
from landscape.store.schema import RUN_STATUSES, STOP_REASONS, StopReason, TableKind


class Table:
    """Aligned arrays in one group, appended to row by row (or many rows at a time)."""

    def __init__(self, group: h5py.Group) -> None:
        self._group = group
        self.columns = tuple(group.attrs["columns"])
        # Held open: closing a dataset writes its cached chunks, and an error there (a full
        # disk) could only be printed, not raised. The file's flush() raises it instead.
        self._datasets = {c: group[c] for c in self.columns}

    def __len__(self) -> int:
        return self._datasets[self.columns[0]].shape[0]

    def append(self, **rows: np.ndarray) -> None:
        if set(rows) != set(self.columns):
            raise ValueError(
                f"{self._group.name}: got columns {sorted(rows)}, expected {sorted(self.columns)}"
            )
        counts = {len(v) for v in rows.values()}
        if len(counts) != 1:
            raise ValueError(f"{self._group.name}: columns of unequal length {counts}")
        (n,) = counts
        if n == 0:
            return
        start = len(self)
        for name, values in rows.items():
            dataset = self._datasets[name]
            dataset.resize(start + n, axis=0)
            dataset[start:] = np.asarray(values, dtype=dataset.dtype)

    def truncate(self, n: int) -> None:
        """Keep the first `n` rows (used to drop rows past a resume point)."""
        for name in self.columns:
            self._datasets[name].resize(n, axis=0)


class RunWriter:
    """Appends to one run's tables and sets its status."""

    def __init__(self, group: h5py.Group) -> None:
        self._group = group
        self._tables: dict[str, Table] = {}

    @property
    def run_id(self) -> str:
        return self._group.attrs["run_id"]

    def table(self, path: str) -> Table:
        """The table at `path`, as `table_path` spells it: "steps", "eval", "probe", "ics",
        "taps/<parameter>" or "activations/<layer>"."""
        if path not in self._tables:
            kind, _, name = path.partition("/")
            group = self._group.get(kind) if not name else self._group.get(kind, {}).get(name)
            if group is None or "columns" not in group.attrs:
                raise KeyError(f"run {self.run_id} has no table {path!r}")
            self._tables[path] = Table(group)
        return self._tables[path]

    def truncate(self, next_step: int) -> None:
        """Drop every row recorded for steps >= `next_step` (evaluations after `next_step`
        steps), so that training can continue from a checkpoint taken before step
        `next_step`. Needs the file opened outside SWMR mode."""
        tables = [self._group[TableKind.STEPS], self._group[TableKind.EVAL]]
        for kind in (TableKind.PROBE, TableKind.ICS, TableKind.WEIGHTS, TableKind.HESSIAN,
                     TableKind.HESSIAN_DENSITY, TableKind.SPARSITY):
            if kind in self._group:
                tables.append(self._group[kind])
        for kind in (TableKind.TAPS, TableKind.ACTIVATIONS, TableKind.GAMMA):
            tables.extend(self._group.get(kind, {}).values())
        for group in tables:
            table = Table(group)
            steps = read_table_column(group, "step")
            # Evaluation rows carry the number of steps done (at least 1), the others the step
            # index.
            is_eval = group.name.endswith("/" + TableKind.EVAL)
            limit = next_step + 1 if is_eval else next_step
            table.truncate(rows_to_keep(steps, limit, lowest=1 if is_eval else 0))

    def set_state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
                  seconds: float | None = None, stop_reason: str = StopReason.NONE) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        if stop_reason not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {stop_reason!r}")
        # Written first: a reader that sees the final status sees the reason too.
        self._group["stop_reason"][()] = np.bytes_(stop_reason)
        self._group["status"][()] = np.bytes_(status)
        self._group["steps_done"][()] = steps_done
        self._group["diverged_step"][()] = -1 if diverged_step is None else diverged_step
        if seconds is not None:
            self._group["seconds"][()] = seconds


def rows_to_keep(steps: np.ndarray, limit: int, *, lowest: int = 0) -> int:
    """How many leading rows of a table whose `step` column is `steps` to keep when training
    continues from step `limit`: the longest prefix of steps in [lowest, limit), strictly
    increasing.

    Not a binary search of `steps`: after a failed write (full disk, file-size limit) a table
    can end in rows that never reached the disk. HDF5's flush goes on to write the metadata
    after a raw-data write failed, so a dataset's new extent can be on disk without the chunk
    holding the new rows, which then read as the fill value 0 (tests/test_failed_writes.py: a
    run's only evaluation, in a chunk that could not be allocated, read as step 0). The rows
    before the checkpoint were all flushed before it was written, so they are a prefix of real
    rows, steps strictly increasing; the first row that breaks the order was lost, and it and
    every row after it go. (Undetectable from the steps alone: a lost first row that reads 0
    in a table that may hold a row at step 0, such as weights, when it had none there.)"""
    steps = np.asarray(steps)
    good = (steps >= lowest) & (steps < limit)
    good[1:] &= np.diff(steps) > 0
    return len(steps) if good.all() else int(np.argmin(good))
