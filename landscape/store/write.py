"""Writing records: creating a record with every run's tables, appending rows, setting a run's
state, and reopening a record to resume it (upgrading an older schema on the way).

Every run's arrays are created, empty and resizable along their row axis, when the record is
created; the file then switches to HDF5's single-writer / multiple-reader (SWMR) mode, in which
the library orders its writes so that the file on disk is consistent at every moment. A process
killed at any point therefore leaves a file that opens, holding every row up to the last flush:
a record only takes its name once it is in SWMR mode (`_publish`), and the flags a writer killed
while reopening it leaves are cleared by the next reader (`landscape.store._hdf5.open_left_open`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from landscape.errors import RecordError, RecordWriteError
from landscape.store._format import COMPRESSION, chunk_rows
from landscape.store._format import WRITE_LIBVER
from landscape.store._hdf5 import (check_replaceable, decode_attr, read_string,
                                   read_table_column, write_error_reason)
from landscape.store.copies import copy_record, create_file
from landscape.store.failed_writes import repair_end_of_file
from landscape.store.schema import (
    gradient_probe_distance,
    FORMAT_NAME,
    RUN_STATUSES,
    SCHEMA_VERSION,
    STOP_REASONS,
    Column,
    RunLayout,
    SURFACE_ATTRS,
    SURFACES,
    RunStatus,
    StopReason,
    TableKind,
    activation_columns,
    surface_columns,
    surface_path,
    weight_columns,
    activation_hist_edges,
    eval_columns,
    hessian_columns,
    hessian_density_columns,
    gamma_columns,
    ics_columns,
    probe_columns,
    sparsity_columns,
    step_columns,
    tap_columns,
    v1_stop_reason,
    v3_run_config,
)


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


class SurfaceWriter:
    """Fills one loss surface's grid, point by point (see `RecordWriter.surface`)."""

    def __init__(self, group: h5py.Group) -> None:
        self._group = group
        self._loss, self._accuracy, self._done = group["loss"], group["accuracy"], group["done"]

    @property
    def done(self) -> np.ndarray:
        """bool grid: the points already computed."""
        return self._done[()]

    def write(self, index: tuple[np.ndarray, ...], loss: np.ndarray, accuracy: np.ndarray
              ) -> None:
        """Store the values of the grid points at `index` (a tuple of index arrays, one per
        axis, as `np.nonzero` gives them), values first and `done` last, so that a point marked
        done always has its values."""
        for dataset, values in ((self._loss, loss), (self._accuracy, accuracy)):
            grid = dataset[()]
            grid[index] = values
            dataset[...] = grid
        done = self._done[()]
        done[index] = True
        self._done[...] = done


def _building_path(path: Path) -> Path:
    """Where a record is built before it appears at `path` (see `_publish`)."""
    return path.with_name(path.name + ".creating")


def _publish(writer: "RecordWriter", building: Path, path: Path) -> None:
    """Give the new record its name once it is in SWMR mode. Until then HDF5 writes its
    metadata in no safe order and the superblock says the file is open for writing: a writer
    killed while creating the record leaves `RECORD.h5.creating` (replaced by the next
    attempt), never a record that cannot be opened. The open file keeps working under its new
    name (POSIX rename)."""
    os.replace(building, path)
    writer.path = path


class RecordWriter:
    """A record open for writing. Create with `RecordWriter.create(...)`; use as a context manager."""

    def __init__(self, file: h5py.File) -> None:
        self._file = file
        self.path = Path(file.filename)
        self._failed = False  # a write failed: repair the file as it closes
        self._replaces: Path | None = None  # the record a copy made by `beside` replaces

    @classmethod
    def create(cls, path: str | os.PathLike, *, config: Mapping[str, Any],
               data: Mapping[str, Any], runs: Sequence[RunLayout], versions: Mapping[str, str],
               overwrite: bool = False) -> "RecordWriter":
        path = Path(path)
        if path.exists() and not overwrite:
            raise RecordError(f"{path} already exists; pass --overwrite to replace it")
        check_replaceable(path)
        if not path.parent.is_dir():
            raise RecordError(f"cannot write {path}: directory {path.parent} does not exist")
        building = _building_path(path)
        file = create_file(building)
        try:
            file.attrs["format"] = FORMAT_NAME
            file.attrs["schema_version"] = SCHEMA_VERSION
            file.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            file.attrs["versions"] = json.dumps(dict(versions))
            file.attrs["config"] = json.dumps(config)
            file.attrs["data"] = json.dumps(data)
            file.attrs["run_ids"] = json.dumps([r.run_id for r in runs])
            runs_group = file.create_group("runs")
            for layout in runs:
                _create_run(runs_group, layout)
        except BaseException:
            file.close()
            building.unlink(missing_ok=True)
            raise
        writer = cls(file)
        writer.start_appending()  # from here on only data is written: the layout is fixed
        _publish(writer, building, path)
        return writer

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> "RecordWriter":
        """Open an existing record to continue writing it (see `landscape record --resume`).

        A record whose writer was killed can only be opened for reading in SWMR mode, so the
        record is first copied, group by group, into a fresh file that replaces it atomically;
        the result is a clean file that is then reopened for writing.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".resume-tmp")
        copy_record(path, tmp, "to resume it", prepare=_upgrade)
        os.replace(tmp, path)
        return cls(h5py.File(path, "r+", libver=WRITE_LIBVER))

    @classmethod
    def beside(cls, path: str | os.PathLike, *, extra_bytes: int = 0) -> "RecordWriter":
        """A copy of the record at `path` (`RECORD.h5.add-tmp`), open for writing, for adding
        to the record without endangering what is in it (a surface): `commit()` replaces the
        record with it atomically, `discard()` (or a failed write) removes it. Refused before
        anything is written when the disk (or the file-size limit) has no room for the copy
        and `extra_bytes` more."""
        path = Path(path)
        tmp = path.with_name(path.name + ".add-tmp")
        copy_record(path, tmp, "to add to it", prepare=_upgrade, extra_bytes=extra_bytes)
        writer = cls(h5py.File(tmp, "r+", libver=WRITE_LIBVER))
        writer._replaces = path
        return writer

    def commit(self) -> None:
        """Close this copy (see `beside`) and put it in the record's place."""
        try:
            self._file.close()
        except (OSError, RuntimeError) as exc:  # the last metadata did not fit
            raise self.write_failed(exc) from exc
        os.replace(self.path, self._replaces)

    def discard(self) -> None:
        """Close this copy (see `beside`) and remove it; the record is as it was."""
        self.close()
        self.path.unlink(missing_ok=True)

    def start_appending(self) -> None:
        """Switch to SWMR mode: from here on only data is written (see the module docstring)."""
        self.flush()
        self._file.swmr_mode = True

    def run(self, run_id: str) -> RunWriter:
        return RunWriter(self._file["runs"][run_id])

    def surface(self, run_id: str, name: str, attrs: Mapping[str, Any],
                alpha: np.ndarray) -> "SurfaceWriter":
        """The surface `name` of run `run_id`: created (NaN, nothing done) with `attrs` (the
        options, `SURFACE_ATTRS`) and coordinates `alpha`, or the existing one when it was
        made with the same options (RecordError naming the differences otherwise). Call before
        `start_appending`: groups can only be created outside SWMR mode."""
        group = self._file["runs"][run_id]
        path = surface_path(name)
        if path in group:
            surface = group[path]
            differ = [f"{k} {decode_attr(surface.attrs[k])} then, {attrs[k]} now"
                      for k in SURFACE_ATTRS if decode_attr(surface.attrs[k]) != attrs[k]]
            if differ:
                raise RecordError(
                    f"run {run_id!r} already has a surface {name!r} made with other options "
                    f"({'; '.join(differ)}); give another --name to keep both")
            return SurfaceWriter(surface)
        surface = group.require_group(SURFACES).create_group(name)
        for key in SURFACE_ATTRS:
            surface.attrs[key] = attrs[key]
        dims, points = int(attrs["dims"]), int(attrs["points"])
        for col_name, col in surface_columns(dims, points).items():
            surface.create_dataset(col_name, shape=col.row_shape, dtype=col.dtype,
                                   fillvalue=False if col.dtype == "bool" else np.nan,
                                   **COMPRESSION)
        surface["alpha"][:] = alpha
        return SurfaceWriter(surface)

    def flush(self) -> None:
        try:
            self._file.flush()
        except (OSError, RuntimeError) as exc:  # h5py's flush raises RuntimeError
            raise self.write_failed(exc) from exc

    def write_failed(self, exc: BaseException) -> RecordWriteError:
        """The error to raise for a write to this record that failed with `exc`; the file is
        repaired as it closes (see landscape.store.failed_writes)."""
        self._failed = True
        return RecordWriteError(
            f"cannot write to {self.path}: {write_error_reason(exc)}. Everything up to the "
            f"last flush is in the file; make room and continue with: landscape record "
            f"--resume {self.path}")

    def close(self) -> None:
        if self._file.id.valid:
            try:
                self._file.close()
            except (OSError, RuntimeError):
                # After a failed write (full disk) closing fails the same way; what was
                # flushed before is in the file, and the error was already raised.
                pass
        if self._failed:
            # HDF5 wrote a header that counts the failed write's bytes: set it back to what
            # the file holds, so that it opens with everything up to the last flush.
            repair_end_of_file(self.path)

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _create_table(parent: h5py.Group, name: str, columns: Mapping[str, Column],
                  compress: bool = False, rows_per_chunk: int | None = None) -> None:
    group = parent.create_group(name)
    group.attrs["columns"] = list(columns)
    for col_name, col in columns.items():
        _create_column(group, col_name, col, compress, rows_per_chunk)


def _create_column(group: h5py.Group, name: str, col: Column, compress: bool = False,
                   rows_per_chunk: int | None = None) -> None:
    """A resizable column; `compress`: a table of large arrays (kept weights, taps, Γ), stored
    compressed (`_format.COMPRESSION`); `rows_per_chunk` (default: ~1 MiB of rows)."""
    rows = rows_per_chunk or chunk_rows(col.dtype, col.row_shape)
    group.create_dataset(
        name,
        shape=(0, *col.row_shape),
        maxshape=(None, *col.row_shape),
        chunks=(rows, *col.row_shape),
        dtype=col.dtype,
        **(COMPRESSION if compress else {}),
    )


def _create_run(runs_group: h5py.Group, layout: RunLayout) -> None:
    """One run's group: its identity, its state scalars and its empty tables. The order of
    creation is part of the file's bytes; keep it."""
    if "/" in layout.run_id or not layout.run_id:
        raise ValueError(f"invalid run id {layout.run_id!r}")
    group = runs_group.create_group(layout.run_id)
    group.attrs["run_id"] = layout.run_id
    for key, value in layout.attrs.items():
        group.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value
    group.attrs["taps"] = json.dumps(list(layout.taps))
    group.create_dataset("status", data=np.bytes_(RunStatus.PENDING), dtype="S16")
    group.create_dataset("steps_done", data=0, dtype="int64")
    # -1 while the run has not diverged; the reader turns it into None.
    group.create_dataset("diverged_step", data=-1, dtype="int64")
    group.create_dataset("seconds", data=0.0, dtype="float64")
    group.create_dataset("stop_reason", data=np.bytes_(StopReason.NONE), dtype="S16")
    _create_table(group, TableKind.STEPS, step_columns())
    _create_table(group, TableKind.EVAL, eval_columns())
    if layout.n_eta:
        _create_table(group, TableKind.PROBE, probe_columns(layout.n_eta))
    if layout.ics_layers:
        _create_table(group, TableKind.ICS, ics_columns(len(layout.ics_layers)))
        group[TableKind.ICS].attrs["layers"] = json.dumps(list(layout.ics_layers))
    if layout.taps:
        taps = group.create_group(TableKind.TAPS)
        for param, shape in layout.taps.items():
            _create_table(taps, param, tap_columns(shape, layout.tap_dtype), compress=True)
    if layout.activations:
        activations = group.create_group(TableKind.ACTIVATIONS)
        activations.attrs["layers"] = json.dumps(list(layout.activations))  # as asked for
        for layer, channels in layout.activations.items():
            _create_table(activations, layer, activation_columns(channels))
            activations[layer].attrs["hist_edges"] = activation_hist_edges()
    if layout.sparse_layers:
        _create_table(group, TableKind.SPARSITY, sparsity_columns(len(layout.sparse_layers)))
        group[TableKind.SPARSITY].attrs["layers"] = json.dumps(list(layout.sparse_layers))
        gammas = group.create_group(TableKind.GAMMA)
        for param, shape in layout.sparse_layers.items():
            _create_table(gammas, param, gamma_columns(shape), compress=True)
    if layout.weights:
        # One kept state per chunk: it is written once and read whole (a chunk of ~1 MiB of a
        # small tensor's rows would be allocated, and rewritten, for one row).
        _create_table(group, TableKind.WEIGHTS, weight_columns(layout.weights), compress=True,
                      rows_per_chunk=1)
    if layout.hessian_k:
        _create_table(group, TableKind.HESSIAN, hessian_columns(layout.hessian_k))
    if layout.hessian_density_nodes:
        _create_table(group, TableKind.HESSIAN_DENSITY,
                      hessian_density_columns(layout.hessian_density_nodes))


def _upgrade(file: h5py.File) -> None:
    """Bring a record written with an older schema to the current one (before SWMR mode: the
    only moment datasets can be added). Version 1 lacks eval/val_loss, eval/val_acc (NaN: it
    had no validation split) and stop_reason (derived from the status); versions 1 and 2 lack
    probe/distance (η‖g_t‖: they probed along the gradient)."""
    if int(file.attrs["schema_version"]) >= SCHEMA_VERSION:
        return
    for group in file["runs"].values():
        if "stop_reason" not in group:
            group.create_dataset("stop_reason",
                                 data=np.bytes_(v1_stop_reason(read_string(group["status"]))),
                                 dtype="S16")
        table = group[TableKind.EVAL]
        columns = list(table.attrs["columns"])
        n = len(table[columns[0]])
        for name, column in eval_columns().items():
            if name not in columns:
                _create_column(table, name, column)
                table[name].resize(n, axis=0)
                table[name][:] = np.nan
                columns.append(name)
        table.attrs["columns"] = columns
        if TableKind.PROBE in group and "distance" not in group[TableKind.PROBE]:
            _add_probe_distance(group[TableKind.PROBE])
        for activations in group.get(TableKind.ACTIVATIONS, {}).values():
            if "hist" not in activations:
                _add_unrecorded_histograms(activations)
        if "config" not in group.attrs:  # before version 4: no axes, the record's options
            group.attrs["factors"] = json.dumps({})
            group.attrs["config"] = json.dumps(v3_run_config(
                json.loads(file.attrs["config"]), decode_attr(group.attrs["model"]),
                float(group.attrs["lr"])))
    file.attrs["schema_version"] = SCHEMA_VERSION


def _add_unrecorded_histograms(table: h5py.Group) -> None:
    """Records before version 3 kept no activation histograms: their rows get counts of −1
    ("not recorded"), which readers leave out, so that a resumed run can append real ones."""
    n = len(table["step"])
    _create_column(table, "hist", activation_columns(1)["hist"])
    table["hist"].resize(n, axis=0)
    table["hist"][:] = -1
    table.attrs["hist_edges"] = activation_hist_edges()
    table.attrs["columns"] = [*table.attrs["columns"], "hist"]


def _add_probe_distance(table: h5py.Group) -> None:
    eta = table["eta"][()]
    _create_column(table, "distance", Column("float64", (eta.shape[1],)))
    table["distance"].resize(len(eta), axis=0)
    table["distance"][:] = gradient_probe_distance(eta, table["grad_norm"][()])
    columns = list(table.attrs["columns"])
    columns.insert(columns.index("grad_diff") + 1, "distance")
    table.attrs["columns"] = columns
