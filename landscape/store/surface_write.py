"""A loss surface's grid in a record: created (or found again, made with the same options) by
`open_surface`, then filled point by point through `SurfaceWriter` (see `RecordWriter.surface`)."""

from __future__ import annotations

from typing import Any, Mapping

import h5py
import numpy as np

from landscape.errors import RecordError
from landscape.store._format import COMPRESSION
from landscape.store._hdf5 import decode_attr
from landscape.store.schema import SURFACE_ATTRS, SURFACES, surface_columns, surface_path


class SurfaceWriter:
    """Fills one loss surface's grid, point by point (see `RecordWriter.surface`)."""

    def __init__(self, group: h5py.Group) -> None:
        self._group = group
        self._loss, self._accuracy, self._done = group["loss"], group["accuracy"], group["done"]

    @property
    def done(self) -> np.ndarray:
        """bool grid: the points already computed."""
        return self._done[()]

    def grids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The loss, accuracy and done grids as they are now."""
        return self._loss[()], self._accuracy[()], self._done[()]

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


def open_surface(group: h5py.Group, run_id: str, name: str, attrs: Mapping[str, Any],
                 alpha: np.ndarray) -> SurfaceWriter:
    """The surface `name` in run group `group` (of run `run_id`), as `RecordWriter.surface`
    describes it."""
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
