"""Figures of the course reports: the loss band's width per step, and per-layer histograms of
kept weights (data from landscape.report.practice)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from landscape.plot._style import literal_text, model_colors, model_name


@literal_text
def plot_band_width(widths: Mapping, *, ax: Axes | None = None,
                    colors: Mapping[str, str] | None = None,
                    title: str | None = None) -> Figure:
    """max − min of each model's training-batch loss across its runs (lrs, seeds), per step
    (the course's "band width"), on a log axis; into `ax` if given (a panel per level of a
    record's axes, `plot.facets`)."""
    if ax is None:
        fig = Figure(figsize=(7.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    models = list(widths)
    colors = colors or model_colors(models)
    for model, band in widths.items():
        # What the band spans (lrs, seeds, both), not one lr per run: seeds repeat lrs.
        span = band.span or f"lrs {', '.join(f'{lr:g}' for lr in sorted(set(band.lrs)))}"
        ax.plot(band.step, band.width, color=colors.get(model), linewidth=1.0,
                label=f"{model_name(model, models)}: {span}")
    positive = [w[np.isfinite(w) & (w > 0)] for w in (b.width for b in widths.values())]
    if any(len(p) for p in positive):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("max − min training-batch loss\nacross each model's runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "Width of the loss band (the course's loss landscape):\nmax − min over "
                 "each model's runs, its lrs and seeds together;\nthe verdict takes it per seed "
                 "(across its lrs), median over steps", fontsize=9)
    return fig


@literal_text
def plot_weight_histograms(histograms: Sequence, *, title: str | None = None,
                           max_layers: int = 12) -> Figure:
    """One panel per layer (the first `max_layers`), one step-histogram per run (log counts),
    the runs' Σ|w| and √Σw² in the legend."""
    layers = list(dict.fromkeys(h.layer for h in histograms))[:max_layers]
    runs = list(dict.fromkeys(h.run_id for h in histograms))
    colors = dict(zip(runs, model_colors(runs).values()))
    cols = min(3, max(1, len(layers)))
    rows = max(1, math.ceil(len(layers) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, layer in zip(axes, layers):
        for h in (h for h in histograms if h.layer == layer):
            ax.stairs(h.counts, h.edges, color=colors[h.run_id], linewidth=1.2,
                      label=f"{h.source}: {h.run_id} (step {h.step}; Σ|w| {h.l1:.3g}, "
                            f"‖w‖ {h.l2:.3g})")
        ax.set_yscale("log")
        ax.set_title(layer, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # weights' long tick labels stay apart
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    for ax in axes[len(layers):]:
        ax.set_axis_off()
    fig.suptitle(title or "Weights per layer (the last weights each run kept)", fontsize=9)
    return fig
