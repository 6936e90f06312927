"""Reading a run's parts from an open record file into `landscape.store.run_data`'s
dataclasses: its state (`read_run_info`), its arrays (`load_run`), and the tables of older
schema versions read as the current one (missing columns NaN or derived)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from landscape.errors import RecordError
from landscape.store._hdf5 import decode_attr, read_string, read_table
from landscape.store.run_data import (ActivationData, EvalData, HessianData, HessianDensityData,
                                      ICSData, ProbeData, RunData, RunInfo, StepData)
from landscape.store.schema import (TableKind, eval_columns, gradient_probe_distance,
                                    v1_stop_reason, v3_run_config)


def load_run(group: h5py.Group, info: RunInfo) -> RunData:
    """Every per-step, evaluation and probe array of the run in `group` (`info`: its state)."""
    probe = (probe_data(read_table(group[TableKind.PROBE]))
             if TableKind.PROBE in group else None)
    ics = None
    if TableKind.ICS in group:
        layers = tuple(json.loads(group[TableKind.ICS].attrs["layers"]))
        ics = ICSData(layers=layers, **read_table(group[TableKind.ICS]))
    tables = group.get(TableKind.ACTIVATIONS, {})
    # HDF5 lists a group's members alphabetically; keep the order they were asked in.
    order = json.loads(tables.attrs["layers"]) if "layers" in getattr(
        tables, "attrs", {}) else list(tables)
    activations = {layer: activation_data(tables[layer]) for layer in order}
    hessian = (hessian_data(read_table(group[TableKind.HESSIAN]))
               if TableKind.HESSIAN in group else None)
    density = (HessianDensityData(**read_table(group[TableKind.HESSIAN_DENSITY]))
               if TableKind.HESSIAN_DENSITY in group else None)
    return RunData(
        info=info,
        steps=read_steps(group[TableKind.STEPS]),
        eval=EvalData(**read_eval(group[TableKind.EVAL])),
        probe=probe,
        ics=ics,
        activations=activations,
        hessian=hessian,
        hessian_density=density,
    )


def activation_data(group: h5py.Group) -> ActivationData:
    columns = read_table(group)
    edges = group.attrs.get("hist_edges")
    if "hist" in columns and edges is not None:
        columns["hist_edges"] = np.asarray(edges, dtype=np.float64)
    else:  # written before the histograms
        columns.pop("hist", None)
    return ActivationData(**columns)


def weights_table(file: h5py.File, path: Path, run_id: str) -> h5py.Group:
    group = run_group(file, run_id, path)
    if TableKind.WEIGHTS not in group:
        raise RecordError(f"run {run_id!r} of {path} kept no weights; record it with "
                          f"--save-weights-every N or --save-weights-at STEPS,end")
    return group[TableKind.WEIGHTS]


def hessian_data(table: dict[str, np.ndarray]) -> HessianData:
    if "warm_start" not in table:  # before version 5: every Lanczos run started at random
        table["warm_start"] = np.zeros(len(table["step"]), dtype=bool)
    return HessianData(**table)


def probe_data(table: dict[str, np.ndarray]) -> ProbeData:
    if "distance" not in table:  # before version 3: a probe along the gradient
        table["distance"] = gradient_probe_distance(table["eta"], table["grad_norm"])
    return ProbeData(**table)


def run_group(file: h5py.File, run_id: str, path: Path) -> h5py.Group:
    runs = file.get("runs")
    if runs is None or run_id not in runs:
        raise RecordError(f"{path} has no run {run_id!r}")
    return runs[run_id]


def read_steps(group: h5py.Group) -> StepData:
    """The steps table; applied_grad_norm, which records before version 5 lack, is NaN."""
    table = read_table(group)
    if "applied_grad_norm" not in table:
        table["applied_grad_norm"] = np.full(len(table["step"]), np.nan, dtype=np.float32)
    return StepData(**table)


def read_eval(group: h5py.Group) -> dict[str, np.ndarray]:
    """The eval table; columns a version-1 record lacks (no validation split) are NaN."""
    table = read_table(group)
    n = len(table["step"])
    for name, column in eval_columns().items():
        if name not in table:
            table[name] = np.full(n, np.nan, dtype=column.dtype)
    return table


def read_run_info(group: h5py.Group, record_config: Mapping[str, Any]) -> RunInfo:
    attrs = {k: decode_attr(v) for k, v in group.attrs.items()}
    # Version 4 added the levels and the effective configuration; older runs had neither axes
    # nor a configuration of their own (read as measured: the record's).
    diverged = int(group["diverged_step"][()])
    status = read_string(group["status"])
    # Version 1 had no stop_reason; a record is upgraded only when resumed.
    stop_reason = (read_string(group["stop_reason"]) if "stop_reason" in group
                   else v1_stop_reason(status))
    return RunInfo(
        run_id=attrs["run_id"],
        model=attrs["model"],
        lr=float(attrs["lr"]),
        status=status,
        steps_done=int(group["steps_done"][()]),
        diverged_step=None if diverged < 0 else diverged,
        seconds=float(group["seconds"][()]),
        taps=tuple(json.loads(group.attrs["taps"])),
        probed=TableKind.PROBE in group,
        attrs=attrs,
        stop_reason=stop_reason or None,
        factors=attrs.get("factors", {}),
        config=attrs.get("config") or v3_run_config(record_config, attrs["model"],
                                                     float(attrs["lr"])),
    )
