"""Shards: the one-run files the workers of a distributed sweep write, and how a finished one
is copied into the record (see docs/schema.md, "Shards").

A worker never writes the record: each run writes its own shard, a record of that one run in
the same format (and with the same crash-safe SWMR writing), in the folder `RECORD.h5.shards/`
next to the record. The driver created the record with every run's empty tables; when a run
finishes, its rows are appended to those tables (data only, which SWMR mode allows) and its
state is set, so that the record stays one self-contained file, identical run for run to one
written by a single process. The shard is then deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py

from landscape.errors import RecordError
from landscape.store._hdf5 import open_for_reading, read_string, read_table
from landscape.store.copies import create_file
from landscape.store.read import open_record
from landscape.store.run_data import RunInfo
from landscape.store.tables import RunWriter, Table
from landscape.store.write import RecordWriter


def shard_folder(record_path: str | os.PathLike) -> Path:
    record_path = Path(record_path)
    return record_path.with_name(record_path.name + ".shards")


def shard_path(record_path: str | os.PathLike, run_id: str) -> Path:
    return shard_folder(record_path) / f"{run_id}.h5"


def _table_groups(run: h5py.Group) -> dict[str, h5py.Group]:
    """Every table of a run (a group with a "columns" attribute), by the path
    `RunWriter.table` takes: "steps", "taps/<parameter>", ... Found by walking the run rather
    than by listing the kinds, so that a table kind added later is copied too."""
    tables = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Group) and "columns" in obj.attrs:
            tables[name] = obj

    run.visititems(visit)
    return tables


def copy_shard_into(writer: RecordWriter, shard: str | os.PathLike, run_id: str) -> None:
    """Append every row of run `run_id` in `shard` to the same (empty) run of the record
    open in `writer`, then set the run's state as the shard has it, and flush. The state is
    written last: a record whose driver died half way shows the run unfinished, and resuming
    empties its tables before copying again."""
    target = writer.run(run_id)
    with open_for_reading(Path(shard)) as file:
        run = file["runs"][run_id]
        for path, group in _table_groups(run).items():
            table = target.table(path)
            rows = read_table(group)
            table.append(**{c: rows[c] for c in table.columns})
        diverged = int(run["diverged_step"][()])
        target.set_state(read_string(run["status"]), steps_done=int(run["steps_done"][()]),
                         diverged_step=None if diverged < 0 else diverged,
                         seconds=float(run["seconds"][()]),
                         stop_reason=read_string(run["stop_reason"]))
    writer.flush()


def empty_run(writer: RecordWriter, run_id: str) -> None:
    """Drop every row of run `run_id` (before SWMR mode: HDF5 cannot shrink a dataset in it),
    so that its shard can be copied in again."""
    run = writer._file["runs"][run_id]  # the store's own writer: its file is ours to reach
    for group in _table_groups(run).values():
        Table(group).truncate(0)


def shards_in_progress(record_path: str | os.PathLike) -> dict[str, RunInfo | None]:
    """The runs whose shards sit next to the record (being written by a Ray sweep, or left by
    one that stopped): run id -> its state in the shard (None while the shard cannot be read,
    e.g. in the instant it is created)."""
    folder = shard_folder(record_path)
    runs: dict[str, RunInfo | None] = {}
    for shard in sorted(folder.glob("*.h5")) if folder.is_dir() else ():
        try:
            runs.update(open_record(shard).runs)
        except RecordError:
            runs[shard.stem] = None
    return runs


def run_into_shard(writer: RecordWriter, run_id: str, shard: str | os.PathLike,
                   next_step: int) -> None:
    """Write run `run_id` of the record open in `writer` (outside SWMR mode) as a shard, its
    rows kept up to `next_step` (a checkpoint's): how a run the local executor had in progress
    continues as a Ray task. The shard takes its name once it is complete."""
    shard = Path(shard)
    building = shard.with_name(shard.name + ".creating")
    source = writer._file  # the store's own writer: its file is ours to reach
    with create_file(building) as file:
        for key, value in source.attrs.items():
            file.attrs[key] = value
        file.attrs["run_ids"] = json.dumps([run_id])
        runs = file.create_group("runs")
        source.copy(source["runs"][run_id], runs, name=run_id)
        RunWriter(runs[run_id]).truncate(next_step)
    os.replace(building, shard)
