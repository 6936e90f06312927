"""Writing records: `RecordWriter` creates a record with every run's tables, hands out each
run's writer (`landscape.store.tables`) and surfaces (`landscape.store.surface_write`), and
reopens a record to resume it or to add to it (upgrading an older schema on the way:
`landscape.store.upgrade`). A run's groups and empty tables are made by `landscape.store.create`.

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
from landscape.store._format import WRITE_LIBVER
from landscape.store._hdf5 import check_replaceable, write_error_reason
from landscape.store.copies import copy_record, create_file
from landscape.store.create import create_run
from landscape.store.failed_writes import repair_end_of_file
from landscape.store.schema import FORMAT_NAME, SCHEMA_VERSION, RunLayout
from landscape.store.surface_write import SurfaceWriter, open_surface
from landscape.store.tables import RunWriter
from landscape.store.upgrade import upgrade


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


def compact(path: str | os.PathLike) -> bool:
    """Rewrite the record at `path` into a fresh file that replaces it: the same groups,
    attributes and chunks, without the space its writer left behind. Appending rows to a
    compressed chunk (taps, kept weights) writes the grown chunk elsewhere at every flush, and
    the file keeps the old copies as dead space: a demo record was 170 of its 189 MB dead.
    Call it when the writer has closed the record, under its writer lock. Returns False (and
    leaves the record as it was, which is valid) when the disk has no room for the copy."""
    path = Path(path)
    tmp = path.with_name(path.name + ".compact-tmp")
    try:
        copy_record(path, tmp, "to compact it", prepare=lambda copy: None)
    except RecordError:  # no room for the copy (or a write that failed): keep it as it is
        return False
    os.replace(tmp, path)
    return True


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
                create_run(runs_group, layout)
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
        copy_record(path, tmp, "to resume it", prepare=upgrade)
        os.replace(tmp, path)
        return cls(h5py.File(path, "r+", libver=WRITE_LIBVER))

    @classmethod
    def add_runs(cls, path: str | os.PathLike, runs: Sequence[RunLayout], *,
                 config: Mapping[str, Any], data: Mapping[str, Any],
                 versions: Mapping[str, str]) -> "RecordWriter":
        """Add `runs` to the record at `path` (a run each `landscape.Recorder` adds in turn) and
        open it for writing them, with the record's header replaced by `config`, `data` and
        `versions`. As for `reopen`, the record is first copied (and upgraded) into a fresh
        file that replaces it atomically once the runs exist: a kill while adding leaves the
        record as it was."""
        path = Path(path)
        tmp = path.with_name(path.name + ".resume-tmp")

        def prepare(file: h5py.File) -> None:
            upgrade(file)
            present = json.loads(file.attrs["run_ids"])
            for layout in runs:
                create_run(file["runs"], layout)
            file.attrs["run_ids"] = json.dumps([*present, *(r.run_id for r in runs)])
            file.attrs["config"] = json.dumps(config)
            file.attrs["data"] = json.dumps(data)
            file.attrs["versions"] = json.dumps(dict(versions))

        copy_record(path, tmp, "to add a run to it", prepare=prepare)
        os.replace(tmp, path)
        writer = cls(h5py.File(path, "r+", libver=WRITE_LIBVER))
        writer.start_appending()
        return writer

    @classmethod
    def beside(cls, path: str | os.PathLike, *, extra_bytes: int = 0) -> "RecordWriter":
        """A copy of the record at `path` (`RECORD.h5.add-tmp`), open for writing, for adding
        to the record without endangering what is in it (a surface): `commit()` replaces the
        record with it atomically, `discard()` (or a failed write) removes it. Refused before
        anything is written when the disk (or the file-size limit) has no room for the copy
        and `extra_bytes` more."""
        path = Path(path)
        tmp = path.with_name(path.name + ".add-tmp")
        copy_record(path, tmp, "to add to it", prepare=upgrade, extra_bytes=extra_bytes)
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
                alpha: np.ndarray) -> SurfaceWriter:
        """The surface `name` of run `run_id`: created (NaN, nothing done) with `attrs` (the
        options, `SURFACE_ATTRS`) and coordinates `alpha`, or the existing one when it was
        made with the same options (RecordError naming the differences otherwise). Call before
        `start_appending`: groups can only be created outside SWMR mode."""
        return open_surface(self._file["runs"][run_id], run_id, name, attrs, alpha)

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

