"""Reading records: `open_record` reads a record's header and its runs' state; `Record.load`
and `Record.tap` read a run's arrays into small frozen dataclasses.

Each access opens the file anew in SWMR-read mode (see `_hdf5`), so a record can be read
while it is being written, and after its writer died.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from landscape.errors import RecordError
from landscape.store._hdf5 import (decode_attr, open_for_reading, read_string, read_table,
                                   read_table_column, json_attr, schema_version)
from landscape.store.schema import (
    SURFACES,
    gradient_probe_distance,
    FINISHED_STATUSES,
    RunStatus,
    TableKind,
    eval_columns,
    v1_stop_reason,
    v3_run_config,
)


@dataclass(frozen=True)
class RunInfo:
    """A run's identity and state, without its arrays."""

    run_id: str
    model: str
    lr: float
    status: str  # a RunStatus value
    steps_done: int
    diverged_step: int | None
    seconds: float
    taps: tuple[str, ...]
    probed: bool
    attrs: Mapping[str, Any]
    # Why the run stopped once finished: "planned" (every planned step), "early_stop" (the
    # validation loss stopped improving) or "diverged"; None while it has not finished.
    stop_reason: str | None = None
    # The levels of the record's axes this run was trained at (axis -> value, in the axes'
    # order; empty without axes) and its full effective configuration (the flat dict of
    # RecordConfig.to_dict: the record's, with the run's model, lr and levels).
    factors: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Finished as planned (a diverged run is finished too, but not complete)."""
        return self.status == RunStatus.COMPLETE

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class StepData:
    step: np.ndarray  # int64 [T]
    loss: np.ndarray  # float32 [T], training-batch loss L(w_t; B_t)
    grad_norm: np.ndarray  # ‖g_t‖ over all parameters
    update_norm: np.ndarray  # ‖w_{t+1} − w_t‖
    grad_change: np.ndarray  # ‖g_t − g_{t−1}‖ (NaN at the first step)
    lr: np.ndarray  # float64 [T], learning rate of step t


@dataclass(frozen=True)
class EvalData:
    step: np.ndarray  # steps completed when evaluated
    epoch: np.ndarray  # fractional epochs completed
    train_loss: np.ndarray  # mean training-batch loss since the previous evaluation
    train_acc: np.ndarray  # accuracy on those training batches (train mode, as trained)
    test_loss: np.ndarray  # held-out cross-entropy (eval mode; no smoothing, no penalty)
    test_acc: np.ndarray
    val_loss: np.ndarray  # the same on the validation split (NaN without one)
    val_acc: np.ndarray


@dataclass(frozen=True)
class ProbeData:
    step: np.ndarray  # int64 [P]
    eta: np.ndarray  # float64 [P, K], step lengths (along −g_t; c·lr_t along the update)
    loss: np.ndarray  # [P, K], L(w; B_t) at the probed points w
    grad_diff: np.ndarray  # [P, K], ‖∇L(w_t; B_t) − ∇L(w; B_t)‖
    grad_norm: np.ndarray  # [P], ‖g_t‖ (same parameters as grad_diff)
    beta: np.ndarray  # [P], max_k grad_diff / distance
    distance: np.ndarray  # float64 [P, K], ‖w − w_t‖ (η‖g_t‖ along the gradient, c‖d_t‖ along
    #                       the update)


@dataclass(frozen=True)
class ICSData:
    step: np.ndarray  # int64 [P]
    layers: tuple[str, ...]  # the L layers measured
    distance: np.ndarray  # [P, L], ‖G − G'‖₂ (Definition 2.1)
    cosine: np.ndarray  # [P, L], cos∠(G, G')


@dataclass(frozen=True)
class ActivationData:
    step: np.ndarray  # int64 [S]
    mean: np.ndarray  # [S, C], per-channel mean of the layer's output on the training batch
    var: np.ndarray  # [S, C], per-channel variance (biased)
    # int64 [S, B]: counts of all the layer's output values on the batch in fixed bins (values
    # outside the range in the edge bins); float64 [B + 1] their edges. None in older records.
    hist: np.ndarray | None = None
    hist_edges: np.ndarray | None = None


def _activation_data(group: h5py.Group) -> ActivationData:
    columns = read_table(group)
    edges = group.attrs.get("hist_edges")
    if "hist" in columns and edges is not None:
        columns["hist_edges"] = np.asarray(edges, dtype=np.float64)
    else:  # written before the histograms
        columns.pop("hist", None)
    return ActivationData(**columns)


@dataclass(frozen=True)
class HessianData:
    step: np.ndarray  # int64 [H]
    eigenvalues: np.ndarray  # float64 [H, k], the k largest eigenvalues of ∇²L(w_t; B_t)
    residual: np.ndarray  # float64 [H, k], their Lanczos residual bounds
    converged: np.ndarray  # bool [H], every one within the relative tolerance
    trace: np.ndarray  # float64 [H], Hutchinson's estimate of tr ∇²L(w_t; B_t)
    trace_se: np.ndarray  # float64 [H], its standard error
    hvps: np.ndarray  # int64 [H], Hessian-vector products taken
    lr: np.ndarray  # float64 [H], the step's learning rate

    @property
    def lambda_max(self) -> np.ndarray:
        return self.eigenvalues[:, 0]


@dataclass(frozen=True)
class HessianDensityData:
    step: np.ndarray  # int64 [D]
    nodes: np.ndarray  # float64 [D, N], quadrature nodes (NaN: none)
    weights: np.ndarray  # float64 [D, N], their weights (sum 1 per row)
    hvps: np.ndarray  # int64 [D]


@dataclass(frozen=True)
class SparsityData:
    """DessiLBI's path (landscape.probes.sparsity)."""

    step: np.ndarray  # int64 [S]
    layers: tuple[str, ...]  # the L parameters coupled to a Γ
    nonzero_fraction: np.ndarray  # [S, L], fraction of Γ's groups (filters / elements) ≠ 0
    residue: np.ndarray  # [S, L], ‖W − Γ‖²/(2μ)


@dataclass(frozen=True)
class TapData:
    step: np.ndarray  # int64 [T']
    grad: np.ndarray  # [T', *shape], g_t of the parameter
    weight_delta: np.ndarray  # [T', *shape], w_{t+1} − w_t of the parameter


@dataclass(frozen=True)
class RunData:
    info: RunInfo
    steps: StepData
    eval: EvalData
    probe: ProbeData | None
    ics: ICSData | None
    activations: Mapping[str, ActivationData]
    hessian: HessianData | None = None  # None: not measured (or a record from before)
    hessian_density: HessianDensityData | None = None


@dataclass(frozen=True)
class Record:
    """A record's header; arrays are read on demand with `load` and `tap`."""

    path: Path
    schema_version: int
    created: str
    versions: Mapping[str, str]
    config: Mapping[str, Any]
    data: Mapping[str, Any]
    runs: Mapping[str, RunInfo]

    def load(self, run_id: str) -> RunData:
        """Every per-step, evaluation and probe array of one run."""
        with open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            probe = (_probe_data(read_table(group[TableKind.PROBE]))
                     if TableKind.PROBE in group else None)
            ics = None
            if TableKind.ICS in group:
                layers = tuple(json.loads(group[TableKind.ICS].attrs["layers"]))
                ics = ICSData(layers=layers, **read_table(group[TableKind.ICS]))
            tables = group.get(TableKind.ACTIVATIONS, {})
            # HDF5 lists a group's members alphabetically; keep the order they were asked in.
            order = json.loads(tables.attrs["layers"]) if "layers" in getattr(
                tables, "attrs", {}) else list(tables)
            activations = {layer: _activation_data(tables[layer]) for layer in order}
            hessian = (HessianData(**read_table(group[TableKind.HESSIAN]))
                       if TableKind.HESSIAN in group else None)
            density = (HessianDensityData(**read_table(group[TableKind.HESSIAN_DENSITY]))
                       if TableKind.HESSIAN_DENSITY in group else None)
            return RunData(
                info=self.runs[run_id],
                steps=StepData(**read_table(group[TableKind.STEPS])),
                eval=EvalData(**_read_eval(group[TableKind.EVAL])),
                probe=probe,
                ics=ics,
                activations=activations,
                hessian=hessian,
                hessian_density=density,
            )

    def sparsity(self, run_id: str) -> SparsityData | None:
        """The DessiLBI path of one run; None for a run of another optimizer."""
        with open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            if TableKind.SPARSITY not in group:
                return None
            table = group[TableKind.SPARSITY]
            return SparsityData(layers=tuple(json.loads(table.attrs["layers"])),
                                **read_table(table))

    def gamma(self, run_id: str) -> dict[str, np.ndarray]:
        """Γ of each coupled parameter at the run's last planned step (float32, the weight's
        shape); empty for a run of another optimizer or one that stopped before that step."""
        with open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            out = {}
            for param, table in group.get(TableKind.GAMMA, {}).items():
                rows = read_table(table)
                if len(rows["step"]):
                    out[param] = rows["gamma"][-1]
            return out

    def weight_steps(self, run_id: str) -> np.ndarray:
        """The steps at which run `run_id` kept its weights (int64, ascending; empty if none)."""
        with open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            if TableKind.WEIGHTS not in group:
                return np.zeros(0, dtype=np.int64)
            return read_table_column(group[TableKind.WEIGHTS], "step")

    def weights(self, run_id: str, step: int | None = None) -> SavedWeights:
        """The weights run `run_id` kept at `step` (None: the last ones it kept)."""
        with open_for_reading(self.path) as file:
            table = _weights_table(file, self.path, run_id)
            steps = read_table_column(table, "step")
            if not len(steps):
                raise RecordError(f"run {run_id!r} of {self.path} has not kept any weights yet")
            if step is None:
                row = len(steps) - 1
            else:
                found = np.flatnonzero(steps == step)
                if not len(found):
                    raise RecordError(
                        f"run {run_id!r} kept no weights at step {step}; it kept them at steps "
                        f"{', '.join(map(str, steps[:20]))}{' ...' if len(steps) > 20 else ''}")
                row = int(found[-1])
            names = [c for c in table.attrs["columns"] if c != "step"]
            return SavedWeights(int(steps[row]), {n: table[n][row] for n in names})

    def surfaces(self, run_id: str) -> dict[str, SurfaceData]:
        """Every loss surface computed around run `run_id`'s kept weights (`landscape
        surface`), by name (empty if none)."""
        with open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path).get(SURFACES, {})
            return {name: SurfaceData(
                name=name, run_id=run_id,
                options={k: decode_attr(v) for k, v in surface.attrs.items()},
                **{column: surface[column][()] for column in ("alpha", "loss", "accuracy",
                                                               "done")})
                for name, surface in group.items()}

    def to_pandas(self, table: str = TableKind.STEPS):
        """One long pandas DataFrame of `table` ("steps", "eval", "probe", "ics", "hessian",
        "hessian_density", "sparsity") over every run: run_id, model, lr, seed, step and every
        column of the table (see `landscape.store.frames`; needs pandas)."""
        from landscape.store.frames import record_frame  # pandas is optional

        return record_frame(self, table)

    def tap(self, run_id: str, parameter: str) -> TapData:
        """The tapped gradient and weight-delta tensors of `parameter` in one run."""
        with open_for_reading(self.path) as file:
            group = _run_group(file, run_id, self.path)
            taps = group.get(TableKind.TAPS)
            if taps is None or parameter not in taps:
                tapped = list(taps) if taps is not None else []
                raise RecordError(
                    f"run {run_id!r} did not tap {parameter!r}; tapped: "
                    f"{', '.join(tapped) or 'nothing'}"
                )
            return TapData(**read_table(taps[parameter]))


@dataclass(frozen=True)
class SavedWeights:
    """A model's state_dict as kept in a record: at the start of `step` (before its update), or
    after the last step when `step` is the run's number of steps done."""

    step: int
    state: Mapping[str, np.ndarray]  # state_dict entry -> array


@dataclass(frozen=True)
class SurfaceData:
    """A loss surface around the weights a run kept at `options["step"]`: the loss (and
    accuracy) at w + α·d₁ (+ β·d₂) for α, β on the grid `alpha` (docs/schema.md)."""

    name: str
    run_id: str
    options: Mapping[str, Any]  # step, dims, low, high, points, seed, direction, bn_params, bn,
    #                             batch, images (docs/schema.md)
    alpha: np.ndarray  # float64 [P], the coordinates along every axis
    loss: np.ndarray  # float64 [P] or [P, P] (first axis: α along d₁); NaN where not done
    accuracy: np.ndarray  # the same shape; NaN without an accuracy (regression) or not done
    done: np.ndarray  # bool, the same shape

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    @property
    def centre(self) -> tuple[int, ...] | None:
        """The grid index of the kept weights themselves (α = 0 on every axis), if on the
        grid."""
        zero = np.flatnonzero(self.alpha == 0)
        return (int(zero[0]),) * self.loss.ndim if len(zero) else None


def _weights_table(file: h5py.File, path: Path, run_id: str) -> h5py.Group:
    group = _run_group(file, run_id, path)
    if TableKind.WEIGHTS not in group:
        raise RecordError(f"run {run_id!r} of {path} kept no weights; record it with "
                          f"--save-weights-every N or --save-weights-at STEPS,end")
    return group[TableKind.WEIGHTS]


def _probe_data(table: dict[str, np.ndarray]) -> ProbeData:
    if "distance" not in table:  # before version 3: a probe along the gradient
        table["distance"] = gradient_probe_distance(table["eta"], table["grad_norm"])
    return ProbeData(**table)


def open_record(path: str | os.PathLike) -> Record:
    """Read a record's header (config, data identity, runs and their status)."""
    path = Path(path)
    with open_for_reading(path) as file:
        schema = schema_version(file, path)
        header = {name: json_attr(file, path, name, kind) for name, kind in
                  (("run_ids", list), ("versions", dict), ("config", dict), ("data", dict))}
        runs = {}
        for run_id in header["run_ids"]:
            try:
                runs[run_id] = _read_run_info(_run_group(file, str(run_id), path),
                                              header["config"])
            except (KeyError, ValueError, TypeError) as exc:  # a part missing or unreadable
                raise RecordError(f"{path} is damaged: run {run_id!r} cannot be read "
                                  f"({type(exc).__name__}: {exc})") from None
        return Record(
            path=path,
            schema_version=schema,
            created=str(decode_attr(file.attrs.get("created", "?"))),
            versions=header["versions"],
            config=header["config"],
            data=header["data"],
            runs=runs,
        )


def _run_group(file: h5py.File, run_id: str, path: Path) -> h5py.Group:
    runs = file.get("runs")
    if runs is None or run_id not in runs:
        raise RecordError(f"{path} has no run {run_id!r}")
    return runs[run_id]


def _read_eval(group: h5py.Group) -> dict[str, np.ndarray]:
    """The eval table; columns a version-1 record lacks (no validation split) are NaN."""
    table = read_table(group)
    n = len(table["step"])
    for name, column in eval_columns().items():
        if name not in table:
            table[name] = np.full(n, np.nan, dtype=column.dtype)
    return table


def _read_run_info(group: h5py.Group, record_config: Mapping[str, Any]) -> RunInfo:
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
