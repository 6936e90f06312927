"""How records are laid out in HDF5 beyond their schema: the file-format version they are
written in, their chunks, the filter that compresses their large arrays, and the copy that
rewrites an older record in this format (docs/schema.md, "File format").
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from landscape.store.schema import CHUNK_BYTES

# HDF5 1.10's file format, the oldest that SWMR writing needs. Both bounds are 1.10 so that the
# library refuses to write any newer object version: with libver "latest", HDF5 2.0 writes the
# boolean datatype (an enum), among others, in a version that the tools of HDF5 1.10, still what
# Linux releases ship (Debian 12: hdf5-tools 1.10.8), cannot read (h5dump stops, h5ls prints
# *ERROR*).
WRITE_LIBVER = ("v110", "v110")

# The filter of the large arrays (kept weights, taps, DessiLBI's Γ, loss surfaces), chosen with
# benchmarks/record_compression.py (benchmarks/README.md has the table): gzip level 1 after the
# byte shuffle stores trained float32 weights in ~82% of their bytes at ~24 MB/s of one CPU
# core; level 4 saves 1% more for 1.3x the time, level 9 another 1% for 7x. lzf is faster but
# is h5py's own filter: HDF5's tools (h5dump) and other languages cannot read it.
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


# At most this many rows per chunk. An uncompressed chunk takes its whole size in the file at
# its first row: at 4096 rows a run's probe table took 0.85 MB for 16 kB of values, most of a
# small record (a 24-run demo record: 20 MB of empty rows). At 512 a 1,000-step table is two
# chunks; a 15,000-step one 30, still few index entries.
MAX_CHUNK_ROWS = 512


def chunk_rows(dtype: Any, row_shape: tuple[int, ...]) -> int:
    """Rows per chunk of a resizable table column: about CHUNK_BYTES, at most MAX_CHUNK_ROWS."""
    row_bytes = np.dtype(dtype).itemsize * int(np.prod(row_shape, dtype=np.int64))
    return int(max(1, min(MAX_CHUNK_ROWS, CHUNK_BYTES // max(row_bytes, 1))))


def copy_in_format(source: h5py.Group, target: h5py.Group) -> None:
    """Copy every attribute, group and dataset under `source` into `target` (a group of a file
    written in WRITE_LIBVER).

    A dataset is copied as it is stored (HDF5's object copy: chunks and filters unchanged)
    unless it holds an object version the 1.10 format cannot take (an older record's boolean
    datatype, or its layout of a compressed grid): that one is created again, with the same
    shape, chunks and filters, and its values are copied.
    """
    for key, value in source.attrs.items():
        target.attrs[key] = value
    for name, obj in source.items():
        if isinstance(obj, h5py.Group):
            copy_in_format(obj, target.create_group(name))
            continue
        try:
            source.copy(obj, target, name=name)
        except RuntimeError as exc:  # "... message version out of bounds"
            if "out of bounds" not in str(exc):
                raise
            if name in target:
                del target[name]
            _recreate(obj, target, name)


def _recreate(dataset: h5py.Dataset, target: h5py.Group, name: str) -> None:
    copy = target.create_dataset(
        name, shape=dataset.shape, maxshape=dataset.maxshape, chunks=dataset.chunks,
        dtype=dataset.dtype, compression=dataset.compression,
        compression_opts=dataset.compression_opts, shuffle=dataset.shuffle,
        fillvalue=dataset.fillvalue)
    if dataset.ndim == 0 or not dataset.chunks:
        copy[()] = dataset[()]
    else:  # a chunk's rows at a time: the dataset may be larger than memory
        rows = dataset.chunks[0]
        for start in range(0, dataset.shape[0], rows):
            copy[start:start + rows] = dataset[start:start + rows]
    for key, value in dataset.attrs.items():
        copy.attrs[key] = value
