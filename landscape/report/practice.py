"""Numbers for two figures of the course reports: the width of the loss band across a model's
learning rates at every step (max − min of the training-batch loss), and per-layer histograms
of the weights a run kept (the reports' L1 vs L2 comparison)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from landscape.errors import RecordError
from landscape.report.course import ModelSeries
from landscape.report.runs import LoadedRun
from landscape.store import open_record


@dataclass(frozen=True, eq=False)
class BandWidth:
    """max − min of a model's training-batch loss across its runs, per step.

    step: int64 [S]; width: float64 [S] (NaN where fewer than two runs have a finite loss);
    lrs: the learning rates of the runs; span: what the runs span, lrs and seeds told apart
    (`ModelSeries.span`, e.g. '4 lrs x 3 seeds = 12 runs (...)').
    """

    model: str
    step: np.ndarray
    width: np.ndarray
    lrs: tuple[float, ...]
    span: str = ""


def band_widths(envelopes: Mapping[str, ModelSeries]) -> dict[str, BandWidth]:
    """The band width of every model with at least two runs (from `loss_envelopes`)."""
    out = {}
    for model, series in envelopes.items():
        if len(series.curves) < 2:
            continue
        env = series.envelope
        width = np.where(env.n_runs >= 2, env.high - env.low, np.nan)
        out[model] = BandWidth(model, env.step, width, series.lrs, series.span)
    return out


@dataclass(frozen=True, eq=False)
class WeightHistogram:
    """The histogram of one layer's weights as a run kept them at `step`.

    edges: float64 [B + 1] (shared by every run of the figure for that layer); counts: int64
    [B]; l1, l2: Σ|w| and √Σw² of the layer (the penalties' view of it).
    """

    run_id: str
    model: str
    source: str  # the record's file name (an L1 and an L2 record side by side)
    layer: str
    step: int
    edges: np.ndarray
    counts: np.ndarray
    l1: float
    l2: float


def _conv_and_linear_weights(state: Mapping[str, np.ndarray]) -> list[str]:
    return [k for k, v in state.items() if k.endswith(".weight") and np.ndim(v) in (2, 4)]


def weight_histograms(runs: Sequence[LoadedRun], *, bins: int = 60,
                      layers: Sequence[str] | None = None) -> list[WeightHistogram]:
    """For each run that kept weights, the histogram of each conv and linear weight (or of
    `layers`) at the last step it kept them; the bins of a layer span all runs' values."""
    kept = []
    for run in runs:
        record = open_record(run.source)
        if not len(record.weight_steps(run.info.run_id)):
            continue
        saved = record.weights(run.info.run_id)
        names = list(layers) if layers is not None else _conv_and_linear_weights(saved.state)
        missing = [n for n in names if n not in saved.state]
        if missing:
            raise RecordError(f"run {run.run_id!r} kept no weight {missing[0]!r}")
        kept.append((run, saved.step, {n: np.asarray(saved.state[n], np.float64).ravel()
                                       for n in names}))
    out = []
    for layer in dict.fromkeys(n for _, _, state in kept for n in state):
        values = [state[layer] for _, _, state in kept if layer in state]
        low = min(v.min() for v in values)
        high = max(v.max() for v in values)
        edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
        for run, step, state in kept:
            if layer in state:
                w = state[layer]
                counts, _ = np.histogram(w, bins=edges)
                out.append(WeightHistogram(run.run_id, run.model, run.source.name, layer, step,
                                           edges, counts,
                                           float(np.abs(w).sum()), float(np.sqrt((w * w).sum()))))
    return out
