"""Which HDF5 filter the record's large arrays (kept weights, taps, surfaces) are written with.

The arrays of a real record (default: a 20-step toy record of vgg_light and vgg_light_bn, two
seeds, lr 0.05, weights kept every 5 steps and after the last, the default tap, trained here on
the embedded CIFAR-10 subset) are written again the way the recorder writes them (resizable
columns in the record's chunks, one row appended at a time and a flush after each row: the worst
case, as the recorder flushes every 10 s), once per filter (none, lzf, gzip levels 1 to 9, with
and without the byte shuffle) and chunk layout of the weights (CHUNKS). For each, the table
shows the bytes the arrays take in the file and the file's size, the write time (append and
flush) and the time to read one kept state back (what `landscape surface` and `prune` do).
Timings are the best of --repeats; the CPU time of the writing process is the steadier figure
on a shared machine.

Usage (from the repository root):
    .venv/bin/python benchmarks/record_compression.py
    .venv/bin/python benchmarks/record_compression.py --record runs/demo-course.h5
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from landscape.store._format import WRITE_LIBVER, chunk_rows

FILTERS = {
    "none": {},
    "lzf": {"compression": "lzf"},
    "lzf+shuffle": {"compression": "lzf", "shuffle": True},
    "gzip1": {"compression": "gzip", "compression_opts": 1},
    **{f"gzip{level}+shuffle": {"compression": "gzip", "compression_opts": level,
                                "shuffle": True} for level in (1, 4, 9)},
}
# Chunks of the weights columns: ~1 MiB as every other table ("table": thousands of rows of a
# small tensor per chunk, rewritten whole at every append) or one kept state per chunk ("row").
# Taps and surfaces keep their chunks either way.
CHUNKS = ("table", "row")


def toy_record(folder: Path) -> Path:
    import landscape  # trains: imported only when no record is given

    path = folder / "toy.h5"
    config = landscape.RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.05,),
                                    seeds=(0, 1), max_steps=20, subset=512, device="cpu",
                                    save_weights_every=5, save_final_weights=True)
    landscape.record(config, path)
    return path


def large_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every column of the weights and taps tables and every surface grid, by path."""
    arrays = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset) and any(f"/{kind}/" in f"/{name}" for kind in
                                                 ("weights", "taps", "surfaces")):
            arrays[name] = obj[()]

    with h5py.File(path, "r", swmr=True) as file:
        file.visititems(visit)
    return arrays


def write(path: Path, arrays: dict[str, np.ndarray], filters: dict, chunks: str
          ) -> tuple[float, float]:
    """Seconds (wall, and CPU of this process) to write every array row by row, as the
    recorder appends (a flush per row)."""
    start, cpu = time.perf_counter(), time.process_time()

    def rows_per_chunk(name: str, a: np.ndarray) -> int:
        if chunks == "row" and "/weights/" in f"/{name}":
            return 1
        return chunk_rows(a.dtype, a.shape[1:])

    with h5py.File(path, "w", libver=WRITE_LIBVER) as file:
        datasets = {name: file.create_dataset(
            name, shape=(0, *a.shape[1:]), maxshape=(None, *a.shape[1:]), dtype=a.dtype,
            chunks=(rows_per_chunk(name, a), *a.shape[1:]), **filters)
            for name, a in arrays.items() if a.ndim}
        file.swmr_mode = True
        rows = max(len(a) for a in arrays.values())
        for row in range(rows):
            for name, dataset in datasets.items():
                if row < len(arrays[name]):
                    dataset.resize(row + 1, axis=0)
                    dataset[row] = arrays[name][row]
            file.flush()
    return time.perf_counter() - start, time.process_time() - cpu


def stored_bytes(path: Path) -> int:
    """The bytes the arrays take in the file (without the space HDF5 left unused when a
    compressed chunk, rewritten at an append, grew)."""
    total = 0

    def visit(name: str, obj) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += obj.id.get_storage_size()

    with h5py.File(path, "r") as file:
        file.visititems(visit)
    return total


def read_one_state(path: Path, names: list[str]) -> float:
    start = time.perf_counter()
    with h5py.File(path, "r", swmr=True) as file:
        for name in names:
            file[name][-1]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="a record to take the arrays from")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = args.record or toy_record(folder)
        arrays = large_arrays(source)
        data = sum(a.nbytes for a in arrays.values())
        weights = [n for n in arrays if "/weights/" in f"/{n}" and not n.endswith("/step")]
        print(f"{source}: {len(arrays)} arrays, {data / 1e6:.1f} MB of data "
              f"(file {source.stat().st_size / 1e6:.1f} MB)")
        print(f"{'filter':14s} {'chunks':6s} {'arrays MB':>10s} {'file MB':>8s} "
              f"{'data/arrays':>11s} {'write s':>8s} {'CPU s':>6s} {'MB/s CPU':>8s} "
              f"{'read state ms':>14s}")
        for (label, filters), chunks in itertools.product(FILTERS.items(), CHUNKS):
            out = folder / f"{label}-{chunks}.h5"
            times = [write(out, arrays, filters, chunks) for _ in range(args.repeats)]
            seconds, cpu = min(t[0] for t in times), min(t[1] for t in times)
            read = min(read_one_state(out, weights) for _ in range(args.repeats))
            size = stored_bytes(out)
            print(f"{label:14s} {chunks:6s} {size / 1e6:10.2f} {out.stat().st_size / 1e6:8.2f} "
                  f"{data / size:11.2f} "
                  f"{seconds:8.2f} {cpu:6.2f} {data / 1e6 / cpu:8.1f} {read * 1e3:14.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
