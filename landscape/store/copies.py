"""Copies of a record that a writer makes next to it, and new record files: made without
following a symbolic link planted at their names (landscape.store.side_files), with room
checked first, and removed when a write to them fails, so that the record itself is never
touched by a failed copy."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import h5py

from landscape.errors import RecordError, RecordWriteError
from landscape.store.side_files import remove_entry, room_for
from landscape.store._format import WRITE_LIBVER, copy_in_format
from landscape.store._hdf5 import open_for_reading, write_error_reason


def create_file(path: Path) -> h5py.File:
    """A new HDF5 file at `path`, made with exclusive creation after removing what stood there
    (an overwritten record, a stale temporary copy): never written through a symbolic link
    planted at the name (see landscape.store.side_files)."""
    remove_entry(path)
    try:
        return h5py.File(path, "x", libver=WRITE_LIBVER)
    except OSError as exc:
        raise RecordError(f"cannot create {path}: {exc}") from exc


# Beyond the copy itself: HDF5's metadata and the chunks a first write allocates.
_COPY_MARGIN = 16 << 20


def copy_record(path: Path, tmp: Path, why: str, *, prepare: Callable[[h5py.File], None],
                extra_bytes: int = 0) -> None:
    """Copy the record at `path`, group by group, into a new file `tmp`, then `prepare(copy)`
    (the schema upgrade): a clean file even when the record's writer was killed (which only
    SWMR-read mode opens). A failure (no room, checked first; a write that fails anyway)
    removes `tmp`, leaves `path` as it was, and raises one line."""
    with open_for_reading(path) as source:
        need = path.stat().st_size + extra_bytes + _COPY_MARGIN
        room = room_for(tmp)
        if room < need:
            raise RecordError(
                f"not enough room to copy {path} {why}: {need / 2**20:,.0f} MiB needed, "
                f"{room / 2**20:,.0f} MiB can be written there (free space, file-size limit); "
                f"{path} is unchanged: make room and try again")
        copy = create_file(tmp)
        try:
            # Rewritten in this version's file format (an older record may hold objects
            # HDF5 1.10 cannot read).
            copy_in_format(source, copy)
            prepare(copy)
            copy.close()
        except (OSError, RuntimeError) as exc:  # disk full, file size limit
            with contextlib.suppress(OSError, RuntimeError):
                copy.close()
            tmp.unlink(missing_ok=True)
            raise RecordWriteError(
                f"cannot copy {path} {why}: {write_error_reason(exc)}; {path} is unchanged "
                f"and the partial copy {tmp.name} was removed: make room and try again") from exc
