"""The distribution of a layer's output values over training, drawn as the paper draws it
(Figures 2 and 7): per model, the histogram at a few recorded steps, stacked with an offset."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes

from matplotlib.figure import Figure

from landscape.plot._style import literal_text, model_name, _figure_and_axes
from landscape.report import ActivationHistogram


def _chosen_steps(n: int, k: int) -> np.ndarray:
    """Up to `k` indices evenly spread over 0..n-1, first and last included."""
    return np.unique(np.round(np.linspace(0, n - 1, min(k, n))).astype(int))


def _density(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / (total * np.diff(edges)) if total > 0 else np.zeros(len(counts))


def _draw_stack(ax: Axes, h: ActivationHistogram, n_steps: int, cmap: str) -> None:
    rows = _chosen_steps(len(h.step), n_steps)
    densities = [_density(h.counts[i], h.edges) for i in rows]
    offset = 0.6 * max(float(np.max(d)) for d in densities) or 1.0
    colors = matplotlib.colormaps[cmap](np.linspace(0.3, 1.0, len(rows)))
    x = np.repeat(h.edges, 2)[1:-1]  # a step outline
    for rank, (i, d, color) in enumerate(zip(rows, densities, colors)):
        base = (len(rows) - 1 - rank) * offset  # earliest at the top, drawn first (behind)
        y = base + np.repeat(d, 2)
        ax.fill_between(x, base, y, color=color, alpha=0.85, lw=0, zorder=rank)
        ax.plot(x, y, color="black", lw=0.5, zorder=rank)
        ax.text(h.edges[-1], base + 0.1 * offset, f"step {int(h.step[i])}", ha="right",
                va="bottom", fontsize=8, zorder=len(rows) + 1)
    ax.set_xlim(h.edges[0], h.edges[-1])
    ax.set_yticks([])
    ax.set_xlabel("activation value")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


@literal_text
def plot_activation_histograms(data: Sequence[ActivationHistogram], *, n_steps: int = 6,
                               axes: Sequence[Axes] | np.ndarray | None = None,
                               colors: Mapping[str, str] | None = None,
                               cmap: str = "Blues") -> Figure:
    """One panel per model: the density of all of one layer's output values on the training
    batch at `n_steps` evenly chosen recorded steps, stacked with an offset per step (the
    earliest at the top, light to dark over time), as in the paper's Figures 2 and 7. Each
    panel is one run, its title naming the run's lr and seed. The panels share the layer;
    values outside the fixed bins are counted in the edge bins. `colors` (model -> color)
    colors the panel titles."""
    if not data:
        raise ValueError("no run with recorded activation histograms")
    layers = {h.layer for h in data}
    if len(layers) != 1:
        raise ValueError(f"the panels must show one layer, got {sorted(layers)}")
    fig, panels = _figure_and_axes(axes, len(data), (4.0 * len(data), 5.0))
    models = [h.model for h in data]
    for ax, h in zip(panels, data):
        _draw_stack(ax, h, n_steps, cmap)
        # Each panel is one run, not a model's runs pooled: its title says which.
        ax.set_title(f"{model_name(h.model, models)}\none run: lr {h.lr:g}, seed {h.seed}",
                     color=(colors or {}).get(h.model, "black"), fontsize=10)
    low, high = data[0].edges[0], data[0].edges[-1]
    fig.suptitle(f"Distribution of {next(iter(layers))}'s output on the training batch\n"
                 f"one run per model (named above its panel); values outside [{low:g}, "
                 f"{high:g}] in the edge bins", fontsize=11)
    return fig
