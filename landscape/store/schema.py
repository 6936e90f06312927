"""The record's layout as data: format constants, run statuses, stop reasons, table columns and
table names (documented in docs/schema.md).

No h5py here: the training loop and the recorders use these names without opening a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

# Version 2 added eval/val_loss, eval/val_acc and the run's stop_reason; version 3 the probe's
# distance column (the probe can move along the update, not only the gradient); version 4 the
# runs' `factors` and `config` attributes (the levels of the record's axes a run was trained at,
# and its full effective configuration); version 5 the steps' `applied_grad_norm` column (the
# gradient the optimizer applied, where a loop clipped it after the instrument measured g_t) and
# the Hessian table's `warm_start` column (Lanczos started from the previous probed step's Ritz
# vectors). Older records are read with NaN/derived values for them, and gain them when resumed.
SCHEMA_VERSION = 5
FORMAT_NAME = "landscape-record"
# A record made by landscape.Recorder (a user's own loop) says so in its header's config
# ("source"): its configuration is the loop's, not a RecordConfig that could rebuild its runs.
RECORDER_SOURCE = "recorder"


def from_user_loop(config) -> bool:
    """Whether a record's (or a run's) stored configuration is a user loop's (Recorder)."""
    return isinstance(config, dict) and config.get("source") == RECORDER_SOURCE
CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: few index entries, cheap appends


class RunStatus:
    """A run's status, stored as an S16 scalar. Plain strings (not an Enum) so that what is
    written and compared is exactly the text in the file."""

    PENDING = "pending"  # created, not started
    RUNNING = "running"  # started (or resumed) and not finished
    COMPLETE = "complete"  # finished: every planned step, or stopped early
    DIVERGED = "diverged"  # finished: the training loss became non-finite
    INTERRUPTED = "interrupted"  # stopped by the user; resumable


class StopReason:
    """Why a finished run stopped, stored as an S16 scalar next to its status."""

    PLANNED = "planned"  # it ran every step it was planned to
    EARLY_STOP = "early_stop"  # the validation loss stopped improving
    DIVERGED = "diverged"  # the training loss became non-finite
    NONE = ""  # not finished (also when interrupted)


RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.COMPLETE, RunStatus.DIVERGED,
                RunStatus.INTERRUPTED)
STOP_REASONS = (StopReason.NONE, StopReason.PLANNED, StopReason.EARLY_STOP, StopReason.DIVERGED)
FINISHED_STATUSES = (RunStatus.COMPLETE, RunStatus.DIVERGED)


def v3_run_config(record_config: Mapping[str, Any], model: str, lr: float) -> dict[str, Any]:
    """The effective configuration of a run of a record before version 4 (which had no axes):
    the record's, with the run's own model and learning rate."""
    return {**record_config, "models": [model], "lrs": [lr]}


def v1_stop_reason(status: str) -> str:
    """The stop reason of a version-1 run (which had none): it stopped as planned or diverged,
    as version 1 had no early stopping."""
    return {RunStatus.COMPLETE: StopReason.PLANNED,
            RunStatus.DIVERGED: StopReason.DIVERGED}.get(status, StopReason.NONE)


class TableKind:
    """The tables of a run. Steps, eval, probe and ics are one table each; activations and taps
    are a group holding one table per layer or parameter."""

    STEPS = "steps"
    EVAL = "eval"
    PROBE = "probe"
    ICS = "ics"
    WEIGHTS = "weights"  # one column per entry of the model's state_dict
    ACTIVATIONS = "activations"  # key: the layer
    TAPS = "taps"  # key: the parameter
    HESSIAN = "hessian"  # top eigenvalues and trace of the Hessian
    HESSIAN_DENSITY = "hessian_density"  # its spectral density at chosen steps
    SPARSITY = "sparsity"  # DessiLBI runs: Γ's non-zero fraction and residue per layer
    GAMMA = "gamma"  # DessiLBI runs, key: the parameter; Γ at the last planned step


_SINGLE_TABLES = (TableKind.STEPS, TableKind.EVAL, TableKind.PROBE, TableKind.ICS,
                  TableKind.WEIGHTS, TableKind.HESSIAN, TableKind.HESSIAN_DENSITY,
                  TableKind.SPARSITY)
_KEYED_TABLES = (TableKind.ACTIVATIONS, TableKind.TAPS, TableKind.GAMMA)


def table_path(kind: str, key: str | None = None) -> str:
    """A table's path inside its run group, as `RunWriter.table` and the recorders take it:
    "steps", "eval", "probe" and "ics" (a single table's path is its kind), or
    "activations/<layer>" and "taps/<parameter>"."""
    if kind in _SINGLE_TABLES:
        if key is not None:
            raise ValueError(f"table kind {kind!r} takes no key (got {key!r})")
        return kind
    if kind in _KEYED_TABLES:
        if key is None:
            raise ValueError(f"table kind {kind!r} needs a key (a layer or parameter name)")
        return f"{kind}/{key}"
    raise ValueError(f"unknown table kind {kind!r}; known: "
                     f"{', '.join(_SINGLE_TABLES + _KEYED_TABLES)}")


@dataclass(frozen=True)
class Column:
    """One array of a table: its dtype and the shape of one row."""

    dtype: str
    row_shape: tuple[int, ...] = ()


def step_columns() -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "loss": Column("float32"),
        "grad_norm": Column("float32"),
        "update_norm": Column("float32"),
        "grad_change": Column("float32"),
        "lr": Column("float64"),
        # Version 5: the norm of the gradient the optimizer stepped with (p.grad when its step
        # ran): grad_norm unless the loop changed the gradient after measuring it (clipping).
        "applied_grad_norm": Column("float32"),
    }


def eval_columns() -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "epoch": Column("float64"),
        "train_loss": Column("float32"),
        "train_acc": Column("float32"),
        "test_loss": Column("float32"),
        "test_acc": Column("float32"),
        "val_loss": Column("float32"),  # NaN without a validation split
        "val_acc": Column("float32"),
    }


def probe_columns(n_eta: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "eta": Column("float64", (n_eta,)),
        "loss": Column("float32", (n_eta,)),
        "grad_diff": Column("float32", (n_eta,)),
        "distance": Column("float64", (n_eta,)),
        "grad_norm": Column("float32"),
        "beta": Column("float32"),
    }


def gradient_probe_distance(eta, grad_norm):
    """‖w_η − w_t‖ = η‖g_t‖ of a probe along the gradient (records before version 3)."""
    return np.asarray(eta, dtype=np.float64) * np.asarray(grad_norm, dtype=np.float64)[:, None]


def hessian_columns(k: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "eigenvalues": Column("float64", (k,)),  # largest first
        "residual": Column("float64", (k,)),  # Lanczos residual bound of each
        "converged": Column("bool"),
        "warm_start": Column("bool"),  # Lanczos started from the previous probe's Ritz vectors
        "trace": Column("float64"),
        "trace_se": Column("float64"),
        "hvps": Column("int64"),  # Hessian-vector products taken
        "lr": Column("float64"),
    }


def hessian_density_columns(n_nodes: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "nodes": Column("float64", (n_nodes,)),  # NaN where Lanczos stopped early
        "weights": Column("float64", (n_nodes,)),  # sum to 1 (0 with a NaN node)
        "hvps": Column("int64"),
    }


def ics_columns(n_layers: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "distance": Column("float32", (n_layers,)),
        "cosine": Column("float32", (n_layers,)),
    }


# The fixed bins of the activation histograms (the paper's Figures 2 and 7). A BatchNorm output
# is about N(β, γ²) per channel, with β ≈ 0 and γ ≈ 1 near the start, so [-6, 6] holds all but a
# vanishing fraction of it at a 0.2 resolution. A layer without BatchNorm (or a noisy one) may
# leave the range: those values are counted in the first/last bin (clamped), not dropped.
ACTIVATION_HIST_BINS = 60
ACTIVATION_HIST_RANGE = (-6.0, 6.0)


def activation_hist_edges() -> np.ndarray:
    """The B + 1 edges, float64, of the activation histograms' fixed bins."""
    low, high = ACTIVATION_HIST_RANGE
    return np.linspace(low, high, ACTIVATION_HIST_BINS + 1)


def activation_columns(channels: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "mean": Column("float32", (channels,)),
        "var": Column("float32", (channels,)),
        "hist": Column("int64", (ACTIVATION_HIST_BINS,)),
    }


def tap_columns(shape: Sequence[int], dtype: str) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "grad": Column(dtype, tuple(shape)),
        "weight_delta": Column(dtype, tuple(shape)),
    }


def sparsity_columns(n_layers: int) -> dict[str, Column]:
    return {
        "step": Column("int64"),
        "nonzero_fraction": Column("float32", (n_layers,)),
        "residue": Column("float32", (n_layers,)),
    }


def gamma_columns(shape: Sequence[int]) -> dict[str, Column]:
    return {"step": Column("int64"), "gamma": Column("float32", tuple(shape))}


def weight_columns(entries: Mapping[str, tuple[tuple[int, ...], str]]) -> dict[str, Column]:
    """The weights table: the step whose start the weights are from (the number of steps done
    for the weights after the last step), and one column per state_dict entry, named as
    `state_dict` names it (entry -> (shape, dtype))."""
    return {"step": Column("int64"),
            **{name: Column(dtype, tuple(shape)) for name, (shape, dtype) in entries.items()}}


# Loss surfaces around a run's kept weights (`landscape surface`): one group per surface under
# runs/<id>/surfaces/<name>/, holding the options as attributes and fixed-shape grids that are
# filled as points are computed (`done` marks them), so an interrupted surface resumes.
SURFACES = "surfaces"
SURFACE_ATTRS = ("step", "dims", "low", "high", "points", "seed", "direction", "bn_params",
                 "bn", "batch", "images")


def surface_path(name: str) -> str:
    """A surface's path inside its run group."""
    if not name or "/" in name:
        raise ValueError(f"invalid surface name {name!r}")
    return f"{SURFACES}/{name}"


def surface_columns(dims: int, points: int) -> dict[str, Column]:
    """The arrays of a surface of `points` per axis in `dims` (1 or 2) dimensions: the grid
    coordinates α (the same on every axis), and per grid point the loss, the accuracy (NaN
    without one) and whether it is computed."""
    grid = (points,) * dims
    return {"alpha": Column("float64", (points,)), "loss": Column("float64", grid),
            "accuracy": Column("float64", grid), "done": Column("bool", grid)}


@dataclass(frozen=True)
class RunLayout:
    """What one run will hold: its identity (attributes) and the shapes of what it records."""

    run_id: str
    attrs: Mapping[str, Any]
    taps: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # parameter -> shape
    tap_dtype: str = "float32"
    n_eta: int = 0  # step lengths per probe; 0: the run is not probed
    ics_layers: tuple[str, ...] = ()  # layers whose internal covariate shift is measured
    activations: Mapping[str, int] = field(default_factory=dict)  # layer -> output channels
    # DessiLBI runs: the parameters coupled to a sparse Γ -> their shapes (in optimizer order).
    sparse_layers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # state_dict entry -> (shape, dtype) when the run keeps weights; empty: it does not
    weights: Mapping[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    hessian_k: int = 0  # eigenvalues per Hessian probe; 0: no Hessian probe
    hessian_density_nodes: int = 0  # quadrature nodes per density; 0: no density
