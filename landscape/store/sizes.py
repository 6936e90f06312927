"""How much of a record's file each kind of table takes (`landscape info`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py

from landscape.store._hdf5 import open_for_reading


@dataclass(frozen=True)
class PartSize:
    """One kind of table, summed over the runs: the bytes it takes in the file (compressed,
    with its chunks' unused rows) and the bytes of its values."""

    stored: int
    data: int


def storage_sizes(path: str | os.PathLike) -> dict[str, PartSize]:
    """Table kind ("steps", "weights", "taps", "surfaces", ...; "state" for the runs' status
    scalars) -> its size, in the order the kinds first appear in the file."""
    sizes: dict[str, list[int]] = {}

    def visit(name: str, obj) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        # <run_id>/<kind>/...; a run's own scalars sit directly in its group
        parts = name.split("/")
        kind = parts[1] if len(parts) > 2 else "state"
        size = sizes.setdefault(kind, [0, 0])
        size[0] += obj.id.get_storage_size()
        size[1] += obj.size * obj.dtype.itemsize

    with open_for_reading(Path(path)) as file:
        if "runs" in file:
            file["runs"].visititems(visit)
    return {kind: PartSize(stored, data) for kind, (stored, data) in sizes.items()}
