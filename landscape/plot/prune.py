"""Figures of pruning (landscape.kept.prune): held-out accuracy against the share of a layer's
groups zeroed, and a conv layer's filters with Γ's support marked."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from landscape.plot._style import literal_text

SUPPORT_COLOR = "#d62728"  # the frame of a filter in Γ's support


@literal_text
def plot_prune(results: Sequence, *, title: str | None = None) -> Figure:
    """One line per PruneResult: held-out accuracy (%) against the percentage of the layer's
    groups zeroed, weakest first (by Γ for DessiLBI runs, by |W| otherwise)."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, result in enumerate(results):
        x = [r.percent for r in result.rows]
        y = [100 * r.accuracy for r in result.rows]
        support = (f", Γ support {result.support}/{result.groups}" if result.support >= 0
                   else "")
        ax.plot(x, y, marker="os^Dv"[i % 5], label=f"{result.run_id} (by "
                f"{'Γ' if result.criterion == 'gamma' else '|W|'}{support})")
    layers = sorted({r.layer for r in results})
    kinds = sorted({r.group_kind for r in results})
    ax.set_xlabel(f"{' / '.join(kinds)} of {', '.join(layers)} zeroed (%)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    data = results[0].data if results else ""
    ax.set_title(title or f"Pruning the weakest groups ({data})", fontsize=9)
    return fig


@literal_text
def plot_filters(weight: np.ndarray, support: np.ndarray | None, *, layer: str,
                 title: str | None = None, max_filters: int = 64) -> Figure:
    """A conv layer's filters as small gray images (the mean over input channels, each filter
    scaled to its own range), a red frame around those in Γ's support."""
    weight = np.asarray(weight, dtype=np.float64)[:max_filters]
    n = len(weight)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        image = weight[i].mean(axis=0)
        low, high = image.min(), image.max()
        ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1)
        selected = support is not None and bool(support[i])
        for spine in ax.spines.values():
            spine.set_edgecolor(SUPPORT_COLOR if selected else "#bbbbbb")
            spine.set_linewidth(3.0 if selected else 0.8)
        ax.set_title(str(i), fontsize=7, color=SUPPORT_COLOR if selected else "black")
    if support is None:
        marked = "no Γ (not a DessiLBI run)"
    else:
        marked = f"red frame: in Γ's support ({int(np.sum(support[:n]))} of {n})"
    fig.suptitle(title or f"{layer} filters; {marked}", fontsize=9)
    return fig
