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
from landscape.store.schema import (RUN_STATUSES, TableKind, eval_columns,
                                    gradient_probe_distance, probe_columns, step_columns,
                                    v1_stop_reason, v3_run_config)


def load_run(group: h5py.Group, info: RunInfo) -> RunData:
    """Every per-step, evaluation and probe array of the run in `group` (`info`: its state)."""
    probe = (probe_data(read_table(group[TableKind.PROBE], probe_columns(0)))
             if TableKind.PROBE in group else None)
    ics = None
    if TableKind.ICS in group:
        columns = read_table(group[TableKind.ICS])
        ics = ICSData(layers=layer_names(group[TableKind.ICS], columns), **columns)
    tables = group.get(TableKind.ACTIVATIONS, {})
    # HDF5 lists a group's members alphabetically; keep the order they were asked in.
    order = layer_names(tables) if "layers" in getattr(tables, "attrs", {}) else list(tables)
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


def layer_names(group: h5py.Group, columns: Mapping[str, np.ndarray] | None = None
                ) -> tuple[str, ...]:
    """A table's `layers` attribute: the names of the layers (or parameters) its columns are
    per, one per column of each 2-D column (ValueError otherwise: a damaged record)."""
    layers = json.loads(group.attrs["layers"])
    if not isinstance(layers, list) or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"its table {group.name.rsplit('/', 1)[-1]!r} has no list of layers")
    for name, column in (columns or {}).items():
        if column.ndim == 2 and column.shape[1] != len(layers):
            raise ValueError(f"its table {group.name.rsplit('/', 1)[-1]!r} has {len(layers)} "
                             f"layers and a column {name!r} of {column.shape[1]}")
    return tuple(layers)


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
    table = read_table(group, step_columns())
    if "applied_grad_norm" not in table:
        table["applied_grad_norm"] = np.full(len(table["step"]), np.nan, dtype=np.float32)
    return StepData(**table)


def read_eval(group: h5py.Group) -> dict[str, np.ndarray]:
    """The eval table; columns a version-1 record lacks (no validation split) are NaN."""
    table = read_table(group, eval_columns())
    n = len(table["step"])
    for name, column in eval_columns().items():
        if name not in table:
            table[name] = np.full(n, np.nan, dtype=column.dtype)
    return table


def read_run_info(group: h5py.Group, record_config: Mapping[str, Any]) -> RunInfo:
    """A run's identity and state; ValueError naming what is wrong where the file holds
    something no landscape writer writes (a damaged or crafted record: `open_record` names the
    record and the run)."""
    attrs = {k: decode_attr(v) for k, v in group.attrs.items()}
    # Version 4 added the levels and the effective configuration; older runs had neither axes
    # nor a configuration of their own (read as measured: the record's).
    diverged = _whole(group, "diverged_step")
    status = read_string(group["status"])
    if status not in RUN_STATUSES:
        raise ValueError(f"its status {status!r} is none of {', '.join(RUN_STATUSES)}")
    # Version 1 had no stop_reason; a record is upgraded only when resumed.
    stop_reason = (read_string(group["stop_reason"]) if "stop_reason" in group
                   else v1_stop_reason(status))
    model, lr = _text(attrs, "model"), attrs.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (lr > 0 and lr < np.inf):
        raise ValueError(f"its learning rate {lr!r} is not a positive number")
    if not isinstance(attrs.get("seed", 0), int) or isinstance(attrs.get("seed"), bool):
        raise ValueError(f"its seed {attrs.get('seed')!r} is not a whole number")
    taps = json.loads(group.attrs["taps"])
    if not isinstance(taps, list) or not all(isinstance(t, str) for t in taps):
        raise ValueError("its 'taps' attribute is not a list of parameter names")
    config = attrs.get("config") or v3_run_config(record_config, model, float(lr))
    if not isinstance(config, dict):
        raise ValueError("its 'config' attribute is not a JSON object")
    return RunInfo(
        run_id=_text(attrs, "run_id"),
        model=model,
        lr=float(lr),
        status=status,
        steps_done=max(_whole(group, "steps_done"), 0),
        diverged_step=None if diverged < 0 else diverged,
        seconds=float(group["seconds"][()]),
        taps=tuple(taps),
        probed=TableKind.PROBE in group,
        attrs=attrs,
        stop_reason=stop_reason or None,
        factors=read_factors(attrs.get("factors", {})),
        config=config,
    )


def read_factors(value: Any) -> dict[str, Any]:
    """A run's levels: a JSON object of setting -> value (a number, text, true/false, null, or a
    list of those, read as a tuple as the configuration holds it)."""
    if not isinstance(value, dict):
        raise ValueError(f"its 'factors' attribute is not a JSON object of levels: {value!r:.60}")
    out = {}
    for name, level in value.items():
        if isinstance(level, list) and all(_scalar(v) for v in level):
            level = tuple(level)
        elif not _scalar(level):
            raise ValueError(f"its level of {name!r} is not a setting's value: {level!r:.60}")
        out[name] = level
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _text(attrs: Mapping[str, Any], name: str) -> str:
    value = attrs[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"its {name!r} attribute {value!r:.60} is not a name")
    return value


def _whole(group: h5py.Group, name: str) -> int:
    value = group[name][()]
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"its {name!r} {value!r:.60} is not a whole number")
    return int(value)
