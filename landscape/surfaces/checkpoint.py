"""The points of a loss surface being computed, kept beside the record as they are computed.

`landscape surface` writes into a copy of the record that replaces it when the surface stops
(`RecordWriter.beside`), so that a failed write never touches the record; a process killed
outright (SIGKILL, a lost machine) leaves only that copy, which the next run replaces. So, as
`landscape record` checkpoints its runs, the surface's grid is saved every flush interval (the
record's `--flush-seconds`) to `RECORD.h5.surface-ckpt`, and the same command continues from
it: a kill loses at most the points of one interval. The file is made new and renamed into
place (never written through a link planted at its name), read without pickle, and used only
when its run, name, options and coordinates are the surface's; it is removed once the surface
is in the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from landscape.store.side_files import create_new, remove_entry

SUFFIX = ".surface-ckpt"


def checkpoint_path(record: Path) -> Path:
    return Path(record).with_name(Path(record).name + SUFFIX)


def _identity(run_id: str, name: str, attrs: Mapping[str, Any]) -> str:
    return json.dumps([run_id, name, dict(attrs)], sort_keys=True, default=str)


def save_points(record: Path, run_id: str, name: str, attrs: Mapping[str, Any],
                alpha: np.ndarray, loss: np.ndarray, accuracy: np.ndarray,
                done: np.ndarray) -> None:
    """Keep the surface's grid so far (atomically: a kill while saving leaves the last one)."""
    path = checkpoint_path(record)
    tmp = path.with_name(path.name + ".tmp")
    fd = create_new(tmp, "the surface checkpoint")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, identity=np.array(_identity(run_id, name, attrs)), alpha=alpha,
                     loss=loss, accuracy=accuracy, done=done)
        os.replace(tmp, path)
    except BaseException:
        remove_entry(tmp)
        raise


def load_points(record: Path, run_id: str, name: str, attrs: Mapping[str, Any],
                alpha: np.ndarray, shape: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(loss, accuracy, done) grids a killed `landscape surface` kept for this very surface,
    or None (no checkpoint, another surface's, or one that cannot be read: it only saves
    time, so it is then ignored and replaced)."""
    path = checkpoint_path(record)
    if path.is_symlink() or not path.is_file():
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, zipfile.BadZipFile):
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["identity"]) != _identity(run_id, name, attrs) or \
                    not np.array_equal(saved["alpha"], alpha):
                return None
            loss, accuracy, done = (saved[k] for k in ("loss", "accuracy", "done"))
            if loss.shape == accuracy.shape == done.shape == shape and done.dtype == bool \
                    and loss.dtype.kind == accuracy.dtype.kind == "f":
                return loss, accuracy, done
    return None


def remove_points(record: Path) -> None:
    remove_entry(checkpoint_path(record))


class PointKeeper:
    """Saves the grid of a surface being filled at most every `seconds` (see the module
    docstring): call it with each chunk of points once they are in the record's copy."""

    def __init__(self, record: Path, run_id: str, name: str, attrs: Mapping[str, Any],
                 alpha: np.ndarray, grids: tuple[np.ndarray, np.ndarray, np.ndarray],
                 seconds: float) -> None:
        self._where = (record, run_id, name, attrs, alpha)
        self._loss, self._accuracy, self._done = (np.array(g) for g in grids)
        self._seconds = seconds
        self._saved = time.monotonic()

    def __call__(self, index: tuple[np.ndarray, ...], loss: np.ndarray,
                 accuracy: np.ndarray) -> None:
        self._loss[index], self._accuracy[index], self._done[index] = loss, accuracy, True
        if time.monotonic() - self._saved >= self._seconds:
            save_points(*self._where, self._loss, self._accuracy, self._done)
            self._saved = time.monotonic()


def restore_points(surface: Any, record: Path, run_id: str, name: str,
                   attrs: Mapping[str, Any], alpha: np.ndarray) -> int:
    """Write into `surface` (a landscape.store.SurfaceWriter) the points a killed run of the
    same surface kept and the record lacks; how many."""
    loss, accuracy, done = surface.grids()
    saved = load_points(record, run_id, name, attrs, alpha, done.shape)
    if saved is None:
        return 0
    missing = np.nonzero(saved[2] & ~done)
    if len(missing[0]):
        surface.write(missing, saved[0][missing], saved[1][missing])
    return len(missing[0])
