"""The HDF5 record: the one module that knows its layout (documented in docs/schema.md).

A record holds one group per training run. Every run's arrays are created, empty and resizable
along their row axis, when the record is created; the file then switches to HDF5's single-writer /
multiple-reader (SWMR) mode, in which the library orders its writes so that the file on disk is
consistent at every moment. A process killed at any point therefore leaves a file that opens,
holding every row up to the last flush. Readers open records in SWMR-read mode (the only mode in
which HDF5 opens a file whose writer died).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np
from h5py import h5f, h5p

from landscape.errors import RecordError, RecordWriteError

# Version 2 added eval/val_loss, eval/val_acc and the run's stop_reason. Version 1 records
# are read with NaN/derived values for them, and gain them when resumed.
SCHEMA_VERSION = 2
FORMAT_NAME = "landscape-record"
RUN_STATUSES = ("pending", "running", "complete", "diverged", "interrupted")
_CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: few index entries, cheap appends


@dataclass(frozen=True)
class Column:
    """One array of a table: its dtype and the shape of one row."""

    dtype: str
    row_shape: tuple[int, ...] = ()


def step_columns() -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "loss": Column("float32"),
        "grad_norm": Column("float32"),
        "update_norm": Column("float32"),
        "grad_change": Column("float32"),
        "lr": Column("float64"),
    }


def eval_columns() -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "epoch": Column("float64"),
        "train_loss": Column("float32"),
        "train_acc": Column("float32"),
        "test_loss": Column("float32"),
        "test_acc": Column("float32"),
        "val_loss": Column("float32"),  # NaN without a validation split
        "val_acc": Column("float32"),
    }


# Why a finished run stopped (see landscape.train): "planned", "early_stop" or "diverged";
# "" while it has not finished.
STOP_REASONS = ("", "planned", "early_stop", "diverged")


def probe_columns(n_eta: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "eta": Column("float64", (n_eta,)),
        "loss": Column("float32", (n_eta,)),
        "grad_diff": Column("float32", (n_eta,)),
        "grad_norm": Column("float32"),
        "beta": Column("float32"),
    }


def ics_columns(n_layers: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "distance": Column("float32", (n_layers,)),
        "cosine": Column("float32", (n_layers,)),
    }


def activation_columns(channels: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "mean": Column("float32", (channels,)),
        "var": Column("float32", (channels,)),
    }


def tap_columns(shape: Sequence[int], dtype: str) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "grad": Column(dtype, tuple(shape)),
        "weight_delta": Column(dtype, tuple(shape)),
    }


@dataclass(frozen=True)
class RunLayout:
    """What one run will hold: its identity (attributes) and the shapes of what it records."""

    run_id: str
    attrs: Mapping[str, Any]
    taps: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # parameter -> shape
    tap_dtype: str = "float32"
    n_eta: int = 0  # step lengths per probe; 0: the run is not probed
    ics_layers: tuple[str, ...] = ()  # layers whose internal covariate shift is measured
    activations: Mapping[str, int] = field(default_factory=dict)  # layer -> output channels


# ---------------------------------------------------------------------------------------------
# Writing


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


def _create_table(parent: h5py.Group, name: str, columns: Mapping[str, Column]) -> None:
    group = parent.create_group(name)
    group.attrs["columns"] = list(columns)
    for col_name, col in columns.items():
        _create_column(group, col_name, col)


def _create_column(group: h5py.Group, name: str, col: Column) -> None:
    row_bytes = np.dtype(col.dtype).itemsize * int(np.prod(col.row_shape, dtype=np.int64))
    chunk_rows = int(max(1, min(4096, _CHUNK_BYTES // max(row_bytes, 1))))
    group.create_dataset(
        name,
        shape=(0, *col.row_shape),
        maxshape=(None, *col.row_shape),
        chunks=(chunk_rows, *col.row_shape),
        dtype=col.dtype,
    )


class RunWriter:
    """Appends to one run's tables and sets its status."""

    def __init__(self, group: h5py.Group) -> None:
        self._group = group
        self._tables: dict[str, Table] = {}

    @property
    def run_id(self) -> str:
        return self._group.attrs["run_id"]

    def table(self, path: str) -> Table:
        """The table at `path`: "steps", "eval", "probe", "ics", "taps/<parameter>" or
        "activations/<layer>"."""
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
        tables = [self._group["steps"], self._group["eval"]]
        for kind in ("probe", "ics"):
            if kind in self._group:
                tables.append(self._group[kind])
        for kind in ("taps", "activations"):
            tables.extend(self._group.get(kind, {}).values())
        for group in tables:
            table = Table(group)
            steps = _read_table(group)["step"]
            # Evaluation rows carry the number of steps done, the others the step index.
            limit = next_step + 1 if group.name.endswith("/eval") else next_step
            table.truncate(int(np.searchsorted(steps, limit, side="left")))

    def set_state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
                  seconds: float | None = None, stop_reason: str = "") -> None:
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


class RecordWriter:
    """A record open for writing. Create with `RecordWriter.create(...)`; use as a context manager."""

    def __init__(self, file: h5py.File) -> None:
        self._file = file
        self.path = Path(file.filename)

    @classmethod
    def create(cls, path: str | os.PathLike, *, config: Mapping[str, Any],
               data: Mapping[str, Any], runs: Sequence[RunLayout], versions: Mapping[str, str],
               overwrite: bool = False) -> "RecordWriter":
        path = Path(path)
        if path.exists() and not overwrite:
            raise RecordError(f"{path} already exists; pass --overwrite to replace it")
        if not path.parent.is_dir():
            raise RecordError(f"cannot write {path}: directory {path.parent} does not exist")
        try:
            file = h5py.File(path, "w", libver="latest")
        except OSError as exc:
            raise RecordError(f"cannot create {path}: {exc}") from exc
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
            path.unlink(missing_ok=True)
            raise
        writer = cls(file)
        writer.start_appending()  # from here on only data is written: the layout is fixed
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
        with _open_for_reading(path) as source:
            try:
                with h5py.File(tmp, "w", libver="latest") as copy:
                    for key, value in source.attrs.items():
                        copy.attrs[key] = value
                    source.copy(source["runs"], copy, name="runs")
                    _upgrade(copy)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise RecordError(f"cannot rewrite {path} to resume it: {exc}") from exc
        os.replace(tmp, path)
        return cls(h5py.File(path, "r+", libver="latest"))

    def start_appending(self) -> None:
        """Switch to SWMR mode: from here on only data is written (see the module docstring)."""
        self.flush()
        self._file.swmr_mode = True

    def run(self, run_id: str) -> RunWriter:
        return RunWriter(self._file["runs"][run_id])

    def flush(self) -> None:
        try:
            self._file.flush()
        except (OSError, RuntimeError) as exc:  # h5py's flush raises RuntimeError
            raise RecordWriteError(
                f"cannot write to {self.path}: {write_error_reason(exc)}. Everything up to the "
                f"last flush is in the file; make room and continue with: landscape record "
                f"--resume {self.path}") from exc

    def close(self) -> None:
        if self._file.id.valid:
            try:
                self._file.close()
            except (OSError, RuntimeError):
                # After a failed write (full disk) closing fails the same way; what was
                # flushed before is in the file, and the error was already raised.
                pass

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_error_reason(exc: BaseException) -> str:
    """The operating system's reason in an HDF5 write error ('File too large', 'No space left
    on device'), or the error's first line."""
    match = re.search(r"error message = '([^']*)'", str(exc))
    return match.group(1) if match else str(exc).splitlines()[0]


def _create_run(runs_group: h5py.Group, layout: RunLayout) -> None:
    if "/" in layout.run_id or not layout.run_id:
        raise ValueError(f"invalid run id {layout.run_id!r}")
    group = runs_group.create_group(layout.run_id)
    group.attrs["run_id"] = layout.run_id
    for key, value in layout.attrs.items():
        group.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value
    group.attrs["taps"] = json.dumps(list(layout.taps))
    group.create_dataset("status", data=np.bytes_("pending"), dtype="S16")
    group.create_dataset("steps_done", data=0, dtype="int64")
    # -1 while the run has not diverged; the reader turns it into None.
    group.create_dataset("diverged_step", data=-1, dtype="int64")
    group.create_dataset("seconds", data=0.0, dtype="float64")
    group.create_dataset("stop_reason", data=np.bytes_(""), dtype="S16")
    _create_table(group, "steps", step_columns())
    _create_table(group, "eval", eval_columns())
    if layout.n_eta:
        _create_table(group, "probe", probe_columns(layout.n_eta))
    if layout.ics_layers:
        _create_table(group, "ics", ics_columns(len(layout.ics_layers)))
        group["ics"].attrs["layers"] = json.dumps(list(layout.ics_layers))
    if layout.taps:
        taps = group.create_group("taps")
        for param, shape in layout.taps.items():
            _create_table(taps, param, tap_columns(shape, layout.tap_dtype))
    if layout.activations:
        activations = group.create_group("activations")
        activations.attrs["layers"] = json.dumps(list(layout.activations))  # as asked for
        for layer, channels in layout.activations.items():
            _create_table(activations, layer, activation_columns(channels))


def _upgrade(file: h5py.File) -> None:
    """Bring a record written with an older schema to the current one (before SWMR mode: the
    only moment datasets can be added). Version 1 lacks eval/val_loss, eval/val_acc (NaN: it
    had no validation split) and stop_reason (derived from the status)."""
    if int(file.attrs["schema_version"]) >= SCHEMA_VERSION:
        return
    for group in file["runs"].values():
        if "stop_reason" not in group:
            group.create_dataset("stop_reason", data=np.bytes_(_derived_stop_reason(group)),
                                 dtype="S16")
        table = group["eval"]
        columns = list(table.attrs["columns"])
        n = len(table[columns[0]])
        for name, column in eval_columns().items():
            if name not in columns:
                _create_column(table, name, column)
                table[name].resize(n, axis=0)
                table[name][:] = np.nan
                columns.append(name)
        table.attrs["columns"] = columns
    file.attrs["schema_version"] = SCHEMA_VERSION


def _derived_stop_reason(group: h5py.Group) -> str:
    """A version-1 run stopped as planned or diverged: it had no early stopping."""
    status = group["status"][()].decode()
    return {"complete": "planned", "diverged": "diverged"}.get(status, "")


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class RunInfo:
    """A run's identity and state, without its arrays."""

    run_id: str
    model: str
    lr: float
    status: str
    steps_done: int
    diverged_step: int | None
    seconds: float
    taps: tuple[str, ...]
    probed: bool
    attrs: Mapping[str, Any]
    # Why the run stopped once finished: "planned" (every planned step), "early_stop" (the
    # validation loss stopped improving) or "diverged"; None while it has not finished.
    stop_reason: str | None = None

    @property
    def complete(self) -> bool:
        """Finished as planned (a diverged run is finished too, but not complete)."""
        return self.status == "complete"

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "diverged")


@dataclass(frozen=True)
class StepData:
    step: np.ndarray  # int64 [T]
    loss: np.ndarray  # float32 [T], training-batch loss L(w_t; B_t)
    grad_norm: np.ndarray  # ‖g_t‖ over all parameters
    update_norm: np.ndarray  # ‖w_{t+1} − w_t‖
    grad_change: np.ndarray  # ‖g_t − g_{t−1}‖ (NaN at the first step)
    lr: np.ndarray  # float64 [T], learning rate of step t


@dataclass(frozen=True)
class EvalData:
    step: np.ndarray  # steps completed when evaluated
    epoch: np.ndarray  # fractional epochs completed
    train_loss: np.ndarray  # mean training-batch loss since the previous evaluation
    train_acc: np.ndarray  # accuracy on those training batches (train mode, as trained)
    test_loss: np.ndarray  # held-out cross-entropy (eval mode; no smoothing, no penalty)
    test_acc: np.ndarray
    val_loss: np.ndarray  # the same on the validation split (NaN without one)
    val_acc: np.ndarray


@dataclass(frozen=True)
class ProbeData:
    step: np.ndarray  # int64 [P]
    eta: np.ndarray  # float64 [P, K], step lengths along −g_t
    loss: np.ndarray  # [P, K], L(w_t − η g_t; B_t)
    grad_diff: np.ndarray  # [P, K], ‖∇L(w_t; B_t) − ∇L(w_t − η g_t; B_t)‖
    grad_norm: np.ndarray  # [P], ‖g_t‖ (same parameters as grad_diff)
    beta: np.ndarray  # [P], max_k grad_diff / (η_k ‖g_t‖)


@dataclass(frozen=True)
class ICSData:
    step: np.ndarray  # int64 [P]
    layers: tuple[str, ...]  # the L layers measured
    distance: np.ndarray  # [P, L], ‖G − G'‖₂ (Definition 2.1)
    cosine: np.ndarray  # [P, L], cos∠(G, G')


@dataclass(frozen=True)
class ActivationData:
    step: np.ndarray  # int64 [S]
    mean: np.ndarray  # [S, C], per-channel mean of the layer's output on the training batch
    var: np.ndarray  # [S, C], per-channel variance (biased)


@dataclass(frozen=True)
class TapData:
    step: np.ndarray  # int64 [T']
    grad: np.ndarray  # [T', *shape], g_t of the parameter
    weight_delta: np.ndarray  # [T', *shape], w_{t+1} − w_t of the parameter


@dataclass(frozen=True)
class RunData:
    info: RunInfo
    steps: StepData
    eval: EvalData
    probe: ProbeData | None
    ics: ICSData | None
    activations: Mapping[str, ActivationData]


@dataclass(frozen=True)
class Record:
    """A record's header; arrays are read on demand with `load` and `tap`."""

    path: Path
    schema_version: int
    created: str
    versions: Mapping[str, str]
    config: Mapping[str, Any]
    data: Mapping[str, Any]
    runs: Mapping[str, RunInfo]

    def load(self, run_id: str) -> RunData:
        """Every per-step, evaluation and probe array of one run."""
        with _open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            probe = ProbeData(**_read_table(group["probe"])) if "probe" in group else None
            ics = None
            if "ics" in group:
                layers = tuple(json.loads(group["ics"].attrs["layers"]))
                ics = ICSData(layers=layers, **_read_table(group["ics"]))
            tables = group.get("activations", {})
            # HDF5 lists a group's members alphabetically; keep the order they were asked in.
            order = json.loads(tables.attrs["layers"]) if "layers" in getattr(
                tables, "attrs", {}) else list(tables)
            activations = {layer: ActivationData(**_read_table(tables[layer]))
                           for layer in order}
            return RunData(
                info=self.runs[run_id],
                steps=StepData(**_read_table(group["steps"])),
                eval=EvalData(**_read_eval(group["eval"])),
                probe=probe,
                ics=ics,
                activations=activations,
            )

    def tap(self, run_id: str, parameter: str) -> TapData:
        """The tapped gradient and weight-delta tensors of `parameter` in one run."""
        with _open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            taps = group.get("taps")
            if taps is None or parameter not in taps:
                tapped = list(taps) if taps is not None else []
                raise RecordError(
                    f"run {run_id!r} did not tap {parameter!r}; tapped: "
                    f"{', '.join(tapped) or 'nothing'}"
                )
            return TapData(**_read_table(taps[parameter]))


def open_record(path: str | os.PathLike) -> Record:
    """Read a record's header (config, data identity, runs and their status)."""
    path = Path(path)
    with _open_for_reading(path) as file:
        schema = int(file.attrs["schema_version"])
        runs = {}
        for run_id in json.loads(file.attrs["run_ids"]):
            runs[run_id] = _read_run_info(_run_group(file, run_id, path))
        return Record(
            path=path,
            schema_version=schema,
            created=str(file.attrs["created"]),
            versions=json.loads(file.attrs["versions"]),
            config=json.loads(file.attrs["config"]),
            data=json.loads(file.attrs["data"]),
            runs=runs,
        )


@contextmanager
def _open_for_reading(path: Path) -> Iterator[h5py.File]:
    if not path.exists():
        raise RecordError(f"{path} does not exist")
    if not h5py.is_hdf5(path):
        raise RecordError(f"{path} is not an HDF5 file (is it a landscape record?)")
    _check_not_truncated(path)
    try:
        file = _open_swmr_read(path)
    except OSError as exc:
        raise RecordError(f"{path} cannot be opened: it may be truncated or damaged ({exc})") \
            from exc
    with file:
        if file.attrs.get("format") != FORMAT_NAME:
            raise RecordError(f"{path} is an HDF5 file but not a landscape record")
        schema = int(file.attrs.get("schema_version", -1))
        if schema > SCHEMA_VERSION:
            raise RecordError(
                f"{path} has schema version {schema}, newer than this landscape understands "
                f"({SCHEMA_VERSION}); upgrade landscape to read it"
            )
        yield file


def _open_swmr_read(path: Path) -> h5py.File:
    """SWMR-read open that gives up quickly on metadata it cannot read.

    An SWMR reader retries a metadata read whose checksum fails (a live writer may be half way
    through an update) 100 times with growing pauses; on a damaged file that looks like a hang.
    h5py does not expose the setting, so it is set on the library h5py itself loaded.
    """
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    set_attempts = _hdf5_function("H5Pset_metadata_read_attempts")
    if set_attempts is not None:
        set_attempts(ctypes.c_int64(fapl.id), ctypes.c_uint(_METADATA_READ_ATTEMPTS))
    flags = h5f.ACC_RDONLY | h5f.ACC_SWMR_READ
    return h5py.File(h5f.open(os.fsencode(path), flags, fapl=fapl))


_METADATA_READ_ATTEMPTS = 5


@functools.lru_cache(maxsize=None)
def _hdf5_function(name: str):
    """A function of the HDF5 library that h5py loaded (None if it cannot be found)."""
    libs = Path(h5py.__file__).parent.parent / "h5py.libs"
    candidates = sorted(libs.glob("libhdf5-*.so*")) + sorted(libs.glob("libhdf5-*.dylib"))
    for candidate in candidates:
        try:
            return getattr(ctypes.CDLL(str(candidate)), name)  # the already-loaded library
        except (OSError, AttributeError):
            continue
    try:  # h5py built against a system HDF5: its symbols are in the process already
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_not_truncated(path: Path) -> None:
    """Refuse a file shorter than the end-of-file address its superblock records.

    SWMR-read mode (which a record whose writer died needs) tolerates a short file, as a
    writer may still be extending it, and then waits forever for the missing bytes. A writer
    extends the file to that address whenever it flushes, so a shorter file was cut.
    """
    with open(path, "rb") as f:
        head = f.read(48)
    # Superblock versions 2 and 3 (what libver="latest" writes), without a user block:
    # signature (8), version, offset size, length size, flags, base address (8),
    # extension address (8), end-of-file address (8), root object header address (8).
    if head[:8] != _HDF5_SIGNATURE or head[8] not in (2, 3) or head[9] != 8:
        return
    stored_eof = int.from_bytes(head[28:36], "little")
    if path.stat().st_size < stored_eof:
        raise RecordError(
            f"{path} cannot be opened: it is truncated ({path.stat().st_size:,} of "
            f"{stored_eof:,} bytes): it was cut short, or a write to it failed (full disk)")


def _run_group(file: h5py.File, run_id: str, path: Path) -> h5py.Group:
    runs = file.get("runs")
    if runs is None or run_id not in runs:
        raise RecordError(f"{path} has no run {run_id!r}")
    return runs[run_id]


def _read_eval(group: h5py.Group) -> dict[str, np.ndarray]:
    """The eval table; columns a version-1 record lacks (no validation split) are NaN."""
    table = _read_table(group)
    n = len(table["step"])
    for name, column in eval_columns().items():
        if name not in table:
            table[name] = np.full(n, np.nan, dtype=column.dtype)
    return table


def _read_run_info(group: h5py.Group) -> RunInfo:
    attrs = {k: _decode_attr(v) for k, v in group.attrs.items()}
    diverged = int(group["diverged_step"][()])
    stop_reason = (group["stop_reason"][()].decode() if "stop_reason" in group
                   else _derived_stop_reason(group))
    return RunInfo(
        run_id=attrs["run_id"],
        model=attrs["model"],
        lr=float(attrs["lr"]),
        status=group["status"][()].decode(),
        steps_done=int(group["steps_done"][()]),
        diverged_step=None if diverged < 0 else diverged,
        seconds=float(group["seconds"][()]),
        taps=tuple(json.loads(group.attrs["taps"])),
        probed="probe" in group,
        attrs=attrs,
        stop_reason=stop_reason or None,
    )


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_table(group: h5py.Group) -> dict[str, np.ndarray]:
    columns = list(group.attrs["columns"])
    # Columns are appended one after another; a reader that looks in between (or a writer that
    # died in between) can see them at different lengths. The shortest is the complete part.
    n = min(group[c].shape[0] for c in columns)
    return {c: group[c][:n] for c in columns}
