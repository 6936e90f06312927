"""Bringing a record written with an older schema to the current one, as it is reopened for
writing (`RecordWriter.reopen` and `RecordWriter.beside` run `upgrade` on their copy)."""

from __future__ import annotations

import json

import h5py
import numpy as np

from landscape.store._hdf5 import decode_attr, read_string
from landscape.store.create import create_column
from landscape.store.schema import (
    SCHEMA_VERSION,
    Column,
    TableKind,
    activation_columns,
    activation_hist_edges,
    eval_columns,
    gradient_probe_distance,
    hessian_columns,
    step_columns,
    v1_stop_reason,
    v3_run_config,
)


def upgrade(file: h5py.File) -> None:
    """Bring a record written with an older schema to the current one (before SWMR mode: the
    only moment datasets can be added). Version 1 lacks eval/val_loss, eval/val_acc (NaN: it
    had no validation split) and stop_reason (derived from the status); versions 1 and 2 lack
    probe/distance (η‖g_t‖: they probed along the gradient); versions before 5 lack
    steps/applied_grad_norm (NaN: not measured) and hessian/warm_start (False: they started
    Lanczos at random)."""
    if int(file.attrs["schema_version"]) >= SCHEMA_VERSION:
        return
    for group in file["runs"].values():
        if "stop_reason" not in group:
            group.create_dataset("stop_reason",
                                 data=np.bytes_(v1_stop_reason(read_string(group["status"]))),
                                 dtype="S16")
        _add_missing_columns(group[TableKind.EVAL], eval_columns())
        _add_missing_columns(group[TableKind.STEPS], step_columns())
        if TableKind.PROBE in group and "distance" not in group[TableKind.PROBE]:
            _add_probe_distance(group[TableKind.PROBE])
        if TableKind.HESSIAN in group and "warm_start" not in group[TableKind.HESSIAN]:
            _add_random_starts(group[TableKind.HESSIAN])
        for activations in group.get(TableKind.ACTIVATIONS, {}).values():
            if "hist" not in activations:
                _add_unrecorded_histograms(activations)
        if "config" not in group.attrs:  # before version 4: no axes, the record's options
            group.attrs["factors"] = json.dumps({})
            group.attrs["config"] = json.dumps(v3_run_config(
                json.loads(file.attrs["config"]), decode_attr(group.attrs["model"]),
                float(group.attrs["lr"])))
    file.attrs["schema_version"] = SCHEMA_VERSION


def _add_missing_columns(table: h5py.Group, columns: dict[str, Column]) -> None:
    """Columns an older version lacks, NaN in its rows: version 1's eval/val_loss and
    eval/val_acc (it had no validation split), version 5's steps/applied_grad_norm (not
    measured then)."""
    names = list(table.attrs["columns"])
    n = len(table[names[0]])
    for name, column in columns.items():
        if name not in names:
            create_column(table, name, column)
            table[name].resize(n, axis=0)
            table[name][:] = np.nan
            names.append(name)
    table.attrs["columns"] = names


def _add_unrecorded_histograms(table: h5py.Group) -> None:
    """Records before version 3 kept no activation histograms: their rows get counts of −1
    ("not recorded"), which readers leave out, so that a resumed run can append real ones."""
    n = len(table["step"])
    create_column(table, "hist", activation_columns(1)["hist"])
    table["hist"].resize(n, axis=0)
    table["hist"][:] = -1
    table.attrs["hist_edges"] = activation_hist_edges()
    table.attrs["columns"] = [*table.attrs["columns"], "hist"]


def _add_random_starts(table: h5py.Group) -> None:
    """Hessian rows before version 5 started Lanczos from a random vector."""
    n = len(table["step"])
    create_column(table, "warm_start", hessian_columns(1)["warm_start"])
    table["warm_start"].resize(n, axis=0)
    table["warm_start"][:] = False
    columns = list(table.attrs["columns"])
    columns.insert(columns.index("converged") + 1, "warm_start")
    table.attrs["columns"] = columns


def _add_probe_distance(table: h5py.Group) -> None:
    eta = table["eta"][()]
    create_column(table, "distance", Column("float64", (eta.shape[1],)))
    table["distance"].resize(len(eta), axis=0)
    table["distance"][:] = gradient_probe_distance(eta, table["grad_norm"][()])
    columns = list(table.attrs["columns"])
    columns.insert(columns.index("grad_diff") + 1, "distance")
    table.attrs["columns"] = columns
