"""The record's layout as data: format constants, run statuses, stop reasons, table columns and
table names (documented in docs/schema.md).

No h5py here: the training loop and the recorders use these names without opening a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

# Version 2 added eval/val_loss, eval/val_acc and the run's stop_reason; version 3 the probe's
# distance column (the probe can move along the update, not only the gradient). Older records
# are read with NaN/derived values for them, and gain them when resumed.
SCHEMA_VERSION = 3
FORMAT_NAME = "landscape-record"
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


_SINGLE_TABLES = (TableKind.STEPS, TableKind.EVAL, TableKind.PROBE, TableKind.ICS,
                  TableKind.WEIGHTS)
_KEYED_TABLES = (TableKind.ACTIVATIONS, TableKind.TAPS)


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


def weight_columns(entries: Mapping[str, tuple[tuple[int, ...], str]]) -> dict[str, Column]:
    """The weights table: the step whose start the weights are from (the number of steps done
    for the weights after the last step), and one column per state_dict entry, named as
    `state_dict` names it (entry -> (shape, dtype))."""
    return {"step": Column("int64"),
            **{name: Column(dtype, tuple(shape)) for name, (shape, dtype) in entries.items()}}


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
    # state_dict entry -> (shape, dtype) when the run keeps weights; empty: it does not
    weights: Mapping[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
