"""Loss surfaces (Li et al. 2018) around a run's weights: the loss against α along one
direction (1D), or contours of the loss over the plane of two (2D), one panel per run side by
side (BN vs no-BN), with the centre (the kept weights) marked."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from landscape.plot._style import literal_text, model_name, _finite
from landscape.report.spans import run_name
from landscape.report.surfaces import SurfacePanel

# Contour levels of a 2D surface: at this many quantiles of the losses of all its panels.
N_LEVELS = 21


def _title(panel: SurfacePanel, models: Sequence[str], seeds: Sequence[int] = ()) -> str:
    """'vgg_bn (BatchNorm), lr 0.1', and ', seed 1' where the panels have several seeds."""
    text = f"{model_name(panel.model, models)}, {run_name(panel.lr, panel.seed, seeds=seeds)}"
    return text + ("" if panel.complete else " (incomplete)")


def _axis_words(panel: SurfacePanel) -> tuple[str, str]:
    if panel.direction == "update":
        return "α along w[S+1] − w[S]", "β along w[S] − w[S−1]"
    return "α (random filter-normalized d₁)", "β (random filter-normalized d₂)"


def _caption(panels: Sequence[SurfacePanel]) -> str:
    p = panels[0]
    return (f"Loss surface at step {p.step}, BN in {p.bn} mode, {p.images} images, "
            f"{p.direction} directions\n× marks the kept weights (the centre)")


@literal_text
def plot_surface_lines(panels: Sequence[SurfacePanel], *,
                       colors: Mapping[str, str] | None = None) -> Figure:
    """1D surfaces: the loss against α, every run on the same axes, the centre marked."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    models = [p.model for p in panels]
    seeds = [p.seed for p in panels]
    for p in panels:
        color = (colors or {}).get(p.model)
        ax.plot(p.alpha, _finite(p.loss), marker=".", color=color, label=_title(p, models, seeds))
        centre = np.flatnonzero(p.alpha == 0)
        if len(centre):
            ax.plot(0.0, p.loss[centre[0]], marker="x", markersize=10, markeredgewidth=2,
                    color=color, linestyle="none")
    ax.set_xlabel(_axis_words(panels[0])[0])
    ax.set_ylabel("loss")
    values = np.concatenate([_finite(p.loss) for p in panels])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() / values.min() > 100:
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_caption(panels), fontsize=9)
    return fig


def contour_levels(panels: Sequence[SurfacePanel]) -> np.ndarray:
    """Levels shared by every panel (equal colors are equal losses), at quantiles of the
    losses of all panels pooled: a surface's high rim (a loss many times the centre's) would
    otherwise take most of the levels and leave its low basin one flat color."""
    values = np.concatenate([_finite(p.loss).ravel() for p in panels])
    values = values[np.isfinite(values)]
    if not values.size:
        return np.array([0.0, 1.0])
    levels = np.unique(np.quantile(values, np.linspace(0, 1, N_LEVELS)))
    return levels if len(levels) > 1 else np.array([levels[0], levels[0] + 1e-12])


@literal_text
def plot_surface_contours(panels: Sequence[SurfacePanel], *, filled: bool = True) -> Figure:
    """2D surfaces: a (filled) contour plot of the loss per run, side by side, on the same
    levels (`contour_levels`), contour lines on top, the centre marked ×."""
    n = len(panels)
    fig = Figure(figsize=(4.2 * n + 1.2, 4.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    models = [p.model for p in panels]
    seeds = [p.seed for p in panels]
    levels = contour_levels(panels)
    norm = BoundaryNorm(levels, ncolors=256)
    mappable = None
    for ax, p in zip(axes, panels):
        # loss[i, j] is at (α_i, β_j): α on the x axis, so the grid is transposed for contour.
        z = _finite(p.loss).T
        if filled:
            mappable = ax.contourf(p.alpha, p.alpha, z, levels=levels, norm=norm,
                                   cmap="viridis")
        lines = ax.contour(p.alpha, p.alpha, z, levels=levels[::2],
                           colors="white" if filled else "black", linewidths=0.6)
        ax.clabel(lines, lines.levels[::2], fontsize=6, fmt="%.3g")
        ax.plot(0, 0, marker="x", color="red", markersize=10, markeredgewidth=2)
        ax.set_aspect("equal")
        ax.set_title(_title(p, models, seeds), fontsize=9)
        xlabel, ylabel = _axis_words(p)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
    if mappable is not None:
        fig.colorbar(mappable, ax=list(axes), label="loss (levels at quantiles)", shrink=0.9,
                     format="%.3g")
    fig.suptitle(_caption(panels), fontsize=9)
    return fig


@literal_text
def plot_surface(panels: Sequence[SurfacePanel], *,
                 colors: Mapping[str, str] | None = None) -> Figure:
    """The figure of one surface name: lines for 1D, filled contours for 2D."""
    if panels[0].dims == 1:
        return plot_surface_lines(panels, colors=colors)
    return plot_surface_contours(panels)
