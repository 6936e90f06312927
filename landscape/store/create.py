"""Creating a run's part of a new record: its group, identity, state scalars and empty tables
(every array resizable along its row axis, so that the layout is fixed before the file switches
to SWMR mode and only data is written after; see `landscape.store.write`)."""

from __future__ import annotations

import json
from typing import Mapping

import h5py
import numpy as np

from landscape.store._format import COMPRESSION, chunk_rows
from landscape.store.schema import (
    Column,
    RunLayout,
    RunStatus,
    StopReason,
    TableKind,
    activation_columns,
    activation_hist_edges,
    eval_columns,
    gamma_columns,
    hessian_columns,
    hessian_density_columns,
    ics_columns,
    probe_columns,
    sparsity_columns,
    step_columns,
    tap_columns,
    weight_columns,
)


def create_table(parent: h5py.Group, name: str, columns: Mapping[str, Column],
                 compress: bool = False, rows_per_chunk: int | None = None) -> None:
    """An empty table `name` in `parent`: one resizable column each (see `create_column`)."""
    group = parent.create_group(name)
    group.attrs["columns"] = list(columns)
    for col_name, col in columns.items():
        create_column(group, col_name, col, compress, rows_per_chunk)


def create_column(group: h5py.Group, name: str, col: Column, compress: bool = False,
                  rows_per_chunk: int | None = None) -> None:
    """A resizable column; `compress`: a table of large arrays (kept weights, taps, Γ), stored
    compressed (`_format.COMPRESSION`); `rows_per_chunk` (default: ~1 MiB of rows)."""
    rows = rows_per_chunk or chunk_rows(col.dtype, col.row_shape)
    group.create_dataset(
        name,
        shape=(0, *col.row_shape),
        maxshape=(None, *col.row_shape),
        chunks=(rows, *col.row_shape),
        dtype=col.dtype,
        **(COMPRESSION if compress else {}),
    )


def create_run(runs_group: h5py.Group, layout: RunLayout) -> None:
    """One run's group: its identity, its state scalars and its empty tables. The order of
    creation is part of the file's bytes; keep it."""
    if "/" in layout.run_id or not layout.run_id:
        raise ValueError(f"invalid run id {layout.run_id!r}")
    group = runs_group.create_group(layout.run_id)
    group.attrs["run_id"] = layout.run_id
    for key, value in layout.attrs.items():
        group.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value
    group.attrs["taps"] = json.dumps(list(layout.taps))
    group.create_dataset("status", data=np.bytes_(RunStatus.PENDING), dtype="S16")
    group.create_dataset("steps_done", data=0, dtype="int64")
    # -1 while the run has not diverged; the reader turns it into None.
    group.create_dataset("diverged_step", data=-1, dtype="int64")
    group.create_dataset("seconds", data=0.0, dtype="float64")
    group.create_dataset("stop_reason", data=np.bytes_(StopReason.NONE), dtype="S16")
    create_table(group, TableKind.STEPS, step_columns())
    create_table(group, TableKind.EVAL, eval_columns())
    if layout.n_eta:
        create_table(group, TableKind.PROBE, probe_columns(layout.n_eta))
    if layout.ics_layers:
        create_table(group, TableKind.ICS, ics_columns(len(layout.ics_layers)))
        group[TableKind.ICS].attrs["layers"] = json.dumps(list(layout.ics_layers))
    if layout.taps:
        taps = group.create_group(TableKind.TAPS)
        for param, shape in layout.taps.items():
            create_table(taps, param, tap_columns(shape, layout.tap_dtype), compress=True)
    if layout.activations:
        activations = group.create_group(TableKind.ACTIVATIONS)
        activations.attrs["layers"] = json.dumps(list(layout.activations))  # as asked for
        for layer, channels in layout.activations.items():
            create_table(activations, layer, activation_columns(channels))
            activations[layer].attrs["hist_edges"] = activation_hist_edges()
    if layout.sparse_layers:
        create_table(group, TableKind.SPARSITY, sparsity_columns(len(layout.sparse_layers)))
        group[TableKind.SPARSITY].attrs["layers"] = json.dumps(list(layout.sparse_layers))
        gammas = group.create_group(TableKind.GAMMA)
        for param, shape in layout.sparse_layers.items():
            create_table(gammas, param, gamma_columns(shape), compress=True)
    if layout.weights:
        # One kept state per chunk: it is written once and read whole (a chunk of ~1 MiB of a
        # small tensor's rows would be allocated, and rewritten, for one row).
        create_table(group, TableKind.WEIGHTS, weight_columns(layout.weights), compress=True,
                     rows_per_chunk=1)
    if layout.hessian_k:
        create_table(group, TableKind.HESSIAN, hessian_columns(layout.hessian_k))
    if layout.hessian_density_nodes:
        create_table(group, TableKind.HESSIAN_DENSITY,
                     hessian_density_columns(layout.hessian_density_nodes))
