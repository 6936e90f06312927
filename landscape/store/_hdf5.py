"""Low-level HDF5: opening records for reading (and the workarounds that needs), reading a
table's columns, decoding attributes and explaining write errors.

Readers open records in SWMR-read mode, the only mode in which HDF5 opens a file whose writer
died. That mode tolerates a short file and retries unreadable metadata, which on a damaged
file looks like a hang; the checks here turn both into a `RecordError`.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np
from h5py import h5f, h5p

from landscape.errors import RecordError
from landscape.store.lock import writer_lock
from landscape.store.schema import FORMAT_NAME, SCHEMA_VERSION


@contextmanager
def open_for_reading(path: Path) -> Iterator[h5py.File]:
    """A record opened in SWMR-read mode, after checking it is a record this version reads."""
    if not path.exists():
        raise RecordError(f"{path} does not exist")
    if not h5py.is_hdf5(path):
        raise RecordError(f"{path} is not an HDF5 file (is it a landscape record?)")
    check_not_truncated(path)
    try:
        try:
            file = open_swmr_read(path)
        except OSError as exc:
            if not left_open(exc):
                raise
            file = open_left_open(path)
    except OSError as exc:
        raise RecordError(f"{path} cannot be opened: it may be truncated or damaged ({exc})") \
            from exc
    with file:
        if file.attrs.get("format") != FORMAT_NAME:
            raise RecordError(f"{path} is an HDF5 file but not a landscape record")
        schema = schema_version(file, path)
        if schema > SCHEMA_VERSION:
            raise RecordError(
                f"{path} has schema version {schema}, newer than this landscape understands "
                f"({SCHEMA_VERSION}); upgrade landscape to read it"
            )
        yield file


def schema_version(file: h5py.File, path: Path) -> int:
    """The record's schema version, or a RecordError naming the file when it is no number."""
    value = file.attrs.get("schema_version")
    if value is None:
        raise RecordError(f"{path} is damaged: it says it is a landscape record but has no "
                          f"schema version")
    try:
        if isinstance(value, (bytes, str)) or int(value) != value:
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise RecordError(f"{path} is damaged: its schema version {decode_attr(value)!r} is not "
                          f"a whole number") from None


def json_attr(file: h5py.File, path: Path, name: str, kind: type) -> Any:
    """A JSON attribute of the record's header (a list or an object), or a RecordError naming
    the file and the attribute: a file written by another program, or damaged."""
    if name not in file.attrs:
        raise RecordError(f"{path} is damaged or not a landscape record: it has no {name!r} "
                          f"attribute")
    value = file.attrs[name]
    try:
        parsed = json.loads(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError:
        # ValueErrors; RecursionError: a crafted value nested deeper than Python recurses
        raise RecordError(f"{path} is damaged: its {name!r} attribute is not valid JSON") \
            from None
    if not isinstance(parsed, kind):
        raise RecordError(f"{path} is damaged: its {name!r} attribute is not a JSON "
                          f"{'list' if kind is list else 'object'}")
    return parsed


def check_replaceable(path: Path) -> None:
    """Refuse to replace (`--overwrite`) a file that is neither empty nor a landscape record:
    a text file or another program's HDF5 file given as the output by mistake."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    if h5py.is_hdf5(path):
        try:
            check_not_truncated(path)  # a cut file would make the SWMR open wait
            with _open_under_lock(path) as file:
                if file.attrs.get("format") == FORMAT_NAME:
                    return
        except (OSError, RecordError):
            pass  # unreadable: not known to be a record
    raise RecordError(f"{path} is not a landscape record, and --overwrite replaces only records "
                      f"(or empty files); move or delete it yourself if it may go")


def _open_under_lock(path: Path) -> h5py.File:
    """open_swmr_read for a caller that holds the record's writer lock: a record its dead
    writer left open for writing (see `open_left_open`) is a record, its flags cleared."""
    try:
        return open_swmr_read(path)
    except OSError as exc:
        if not left_open(exc):
            raise
    clear_status_flags(path)
    return open_swmr_read(path)


def open_swmr_read(path: Path) -> h5py.File:
    """SWMR-read open that gives up quickly on metadata it cannot read.

    An SWMR reader retries a metadata read whose checksum fails (a live writer may be half way
    through an update) 100 times with growing pauses; on a damaged file that looks like a hang.
    h5py does not expose the setting, so it is set on the library h5py itself loaded.
    """
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    set_attempts = hdf5_function("H5Pset_metadata_read_attempts")
    if set_attempts is not None:
        set_attempts(ctypes.c_int64(fapl.id), ctypes.c_uint(METADATA_READ_ATTEMPTS))
    flags = h5f.ACC_RDONLY | h5f.ACC_SWMR_READ
    return h5py.File(h5f.open(os.fsencode(path), flags, fapl=fapl))


METADATA_READ_ATTEMPTS = 5

# What HDF5 says when the superblock's status flags (superblock version 3, libver="latest")
# mark a file open for writing outside SWMR mode: a writer is creating or reopening it, or one
# died doing so (its SWMR phase leaves flags an SWMR reader accepts). In SWMR-read mode it is
# the second message.
_LEFT_OPEN = ("file is already open for write", "file is not already open for SWMR writing")


def left_open(exc: OSError) -> bool:
    return any(text in str(exc) for text in _LEFT_OPEN)


def open_left_open(path: Path) -> h5py.File:
    """Open a record whose status flags say a writer has it open (see `_LEFT_OPEN`).

    When no process holds the record's writer lock, that writer is dead (the kernel frees its
    lock however it ends): its flags are cleared, as the HDF5 documentation recommends for a
    process that did not shut down cleanly (`h5clear --status`), and the record opens with
    every row up to its writer's last flush. A live writer's record is left alone."""
    try:
        with writer_lock(path):  # held while the flags are cleared: clearing is a write
            clear_status_flags(path)
    except RecordError as exc:
        if "is being written by" in str(exc):
            raise  # a live writer reopening it: it says whom to wait for
        raise RecordError(f"{path} was left open by a writer that died, and its flags cannot "
                          f"be cleared here ({exc}); clear them with `h5clear --status {path}`"
                          f" where the file can be written") from None
    return open_swmr_read(path)


def clear_status_flags(path: Path) -> None:
    """What `h5clear --status` does: open the file for writing with HDF5's file-access
    property `clear_status_flags` set (the tool's own way; h5py does not expose it), and close
    it, which writes a superblock without the flags."""
    set_property = hdf5_function("H5Pset")
    if set_property is None:
        raise OSError("the HDF5 library's H5Pset was not found; "
                      f"run `h5clear --status {path}`")
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    clear = ctypes.c_bool(True)  # hbool_t: C's bool
    if set_property(ctypes.c_int64(fapl.id), b"clear_status_flags", ctypes.byref(clear)) < 0:
        raise OSError(f"HDF5 refused to clear the status flags; run `h5clear --status {path}`")
    h5f.open(os.fsencode(path), h5f.ACC_RDWR, fapl=fapl).close()


@functools.lru_cache(maxsize=None)
def hdf5_function(name: str):
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


def check_not_truncated(path: Path) -> None:
    """Refuse a file shorter than the end-of-file address its superblock records.

    SWMR-read mode (which a record whose writer died needs) tolerates a short file, as a
    writer may still be extending it, and then waits forever for the missing bytes. A writer
    extends the file to that address whenever it flushes, so a shorter file was cut.
    """
    with open(path, "rb") as f:
        head = f.read(48)
    # Superblock versions 2 and 3 (what libver v110 and later write), without a user block:
    # signature (8), version, offset size, length size, flags, base address (8),
    # extension address (8), end-of-file address (8), root object header address (8).
    if head[:8] != _HDF5_SIGNATURE or head[8] not in (2, 3) or head[9] != 8:
        return
    stored_eof = int.from_bytes(head[28:36], "little")
    if path.stat().st_size < stored_eof:
        raise RecordError(
            f"{path} cannot be opened: it is truncated ({path.stat().st_size:,} of "
            f"{stored_eof:,} bytes): it was cut short, or a write to it failed (full disk)")


def read_table(group: h5py.Group, expected: Mapping[str, Any] | None = None
               ) -> dict[str, np.ndarray]:
    """Every column of the table in `group`, cut to the rows all of them hold. ValueError
    (a damaged record) for a column that is no numbers, a step column that is no whole
    numbers, a column whose row has other dimensions than `expected` says (name -> Column),
    or one that declares more rows than its file could hold."""
    columns = _column_names(group)
    # Columns are appended one after another; a reader that looks in between (or a writer that
    # died in between) can see them at different lengths. The shortest is the complete part.
    n = min(group[c].shape[0] for c in columns) if columns else 0
    out = {c: _read_column(group, c, n) for c in columns}
    for name, column in (expected or {}).items():
        if name in out and out[name].ndim != 1 + len(column.row_shape):
            raise ValueError(f"its table {_name(group)!r} has a column {name!r} of shape "
                             f"{out[name].shape}, not rows of {column.row_shape or 'one value'}")
    return out


def read_table_column(group: h5py.Group, column: str) -> np.ndarray:
    """One column of the table in `group`, cut to the rows every column holds (as
    `read_table`), without reading the others."""
    n = min(group[c].shape[0] for c in _column_names(group))
    return _read_column(group, column, n)


# DEFLATE's largest compression ratio: no record's column holds more than this times the bytes
# it takes in the file (plus a chunk being filled).
_MAX_RATIO = 1032


def _column_names(group: h5py.Group) -> list[str]:
    names = group.attrs["columns"]
    if isinstance(names, (str, bytes)) or not all(isinstance(c, str) for c in names):
        raise ValueError(f"its table {_name(group)!r} has no list of columns")
    return list(names)


def _read_column(group: h5py.Group, name: str, n: int) -> np.ndarray:
    dataset = group[name]
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim < 1:
        raise ValueError(f"its table {_name(group)!r} has a column {name!r} that is no array")
    if dataset.dtype.kind not in "biuf":
        raise ValueError(f"its table {_name(group)!r} has a column {name!r} of "
                         f"{dataset.dtype} values, not numbers")
    if name == "step" and dataset.dtype.kind not in "iu":
        raise ValueError(f"its table {_name(group)!r} has steps that are not whole numbers")
    row = int(np.prod(dataset.shape[1:], dtype=np.int64)) * dataset.dtype.itemsize
    chunk = int(np.prod(dataset.chunks, dtype=np.int64)) * dataset.dtype.itemsize \
        if dataset.chunks else 0
    if n * row > _MAX_RATIO * dataset.id.get_storage_size() + chunk + (1 << 20):
        raise ValueError(f"its table {_name(group)!r} declares {n:,} rows of {name!r} in "
                         f"{dataset.id.get_storage_size():,} bytes of the file")
    return dataset[:n]


def _name(group: h5py.Group) -> str:
    return group.name.rsplit("/", 1)[-1]


def read_string(dataset: h5py.Dataset) -> str:
    """A scalar S16 dataset (a run's status or stop reason) as text (ValueError for anything
    else: a damaged record)."""
    value = dataset[()]
    if not isinstance(value, bytes):
        raise ValueError(f"its {dataset.name.rsplit('/', 1)[-1]!r} {value!r:.60} is not text")
    return value.decode()


def decode_attr(value: Any) -> Any:
    """An attribute as Python: bytes as text, JSON lists and objects parsed, numpy scalars
    as Python scalars."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_error_reason(exc: BaseException) -> str:
    """The operating system's reason in an HDF5 write error ('File too large', 'No space left
    on device'), or the error's first line."""
    match = re.search(r"error message = '([^']*)'", str(exc))
    return match.group(1) if match else str(exc).splitlines()[0]
