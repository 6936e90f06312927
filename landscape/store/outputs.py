"""The files commands write beside records (an HTML report, figures, tables, summary.txt, a new
record's name): refused in one line where writing would lose data, and written so that nothing
is lost when the write fails.

`check_output` refuses a name that is a record (any HDF5 file), one of the command's own
inputs (the same file by device and inode, whatever name it is given by), a file a writer
holds (`landscape.store.lock.holder`: a record being recorded, resumed or surfaced), a file a
writer keeps beside a record (`R.h5.lock`, `R.h5.ckpt`, ...), or no regular file at all (a
device, a FIFO: a write would block or replace it). Commands call it for every file they will
write before they compute anything.

`write_output` writes a new file beside the name (exclusive creation: never through a link
planted there) and renames it over the name once it is complete: a failure (full disk,
permission) leaves what stood at the name as it was, and a symbolic link at the name is
replaced, its target never written.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import h5py

from landscape.errors import ConfigError, RecordError
from landscape.store.lock import holder, lock_path
from landscape.store.schema import FORMAT_NAME
from landscape.store.side_files import create_new, remove_entry

# What writers keep beside a record R.h5 (lock, checkpoint, temporary copies, Ray's shards,
# a surface's checkpoint).
SIDE_SUFFIXES = (".lock", ".ckpt", ".ckpt.tmp", ".creating", ".resume-tmp", ".add-tmp",
                 ".shards", ".surface-ckpt")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _is_record(path: Path) -> bool:
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        with h5py.File(path, "r", locking=False) as file:
            return file.attrs.get("format") == FORMAT_NAME
    return False


def check_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
                 flag: str = "-o") -> None:
    """Refuse (ConfigError or RecordError, one line naming `flag` and `path`) an output that
    would replace data (see the module docstring); nothing is written."""
    path = Path(path)
    _check_place(path, inputs, flag)
    if _identity(path) is not None:
        with contextlib.suppress(OSError):
            if h5py.is_hdf5(path):
                kind = "a landscape record" if _is_record(path) else "an HDF5 file"
                raise ConfigError(f"{flag} {path} is {kind}; this command never replaces one: "
                                  f"give another file (or move it away first)")


def check_record_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
                        flag: str = "-o") -> None:
    """`check_output` for a new record: the same refusals, except that a record at `path` may
    be replaced (with --overwrite; `check_replaceable` says which files may), and a record
    being written is refused as the writer lock refuses it."""
    who = holder(path)
    if who is not None:
        raise RecordError(f"{path} is being written by {who}; wait for it to finish or stop "
                          f"it, then try again")
    _check_place(Path(path), inputs, flag)


def _check_place(path: Path, inputs: Iterable[str | os.PathLike], flag: str) -> None:
    """An input, a file a writer holds or keeps beside a record, or no regular file."""
    what = f"{flag} {path}"
    target = _identity(path)
    for source in inputs:
        if target is not None and _identity(Path(source)) == target:
            raise ConfigError(f"{what} is {source}, which this command reads; write to another "
                              f"file (nothing was written)")
    who = holder(path) if target is not None or lock_path(path).exists() else None
    if who is not None:
        raise RecordError(f"{what} is being written by {who}; give another file")
    for suffix in SIDE_SUFFIXES:
        owner = path.with_name(path.name[:-len(suffix)]) if path.name.endswith(suffix) else None
        if owner is not None and owner.name and (owner.exists() or target is not None):
            raise ConfigError(f"{what} is a file landscape keeps beside the record {owner}; "
                              f"give another file")
    if target is None:
        return
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{what} is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{what} is not a regular file (a device, FIFO or socket); give a "
                          f"file name")


def write_output(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(file)` with a new binary file beside `path`, then put it in `path`'s place
    (see the module docstring). A failure removes the new file and raises one line."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = create_new(tmp, "the temporary file")
    except RecordError as exc:  # a read-only or missing folder, a full disk
        reason = getattr(exc.__cause__, "strerror", None) or str(exc)
        raise ConfigError(f"cannot write {path}: {reason}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.replace(tmp, path)
    except OSError as exc:
        remove_entry(tmp)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        remove_entry(tmp)
        raise
    return path
