"""The Hessian probe's figures: λ_max along training beside the 2/η stability threshold and the
paper's β, with the trace; and the spectral density at chosen steps, BN vs no BN."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analyses.spectrum import broadened_density
from landscape.plot._style import (_colors_for, _figure_and_grid, _finite, _legend,
                                   _set_yscale, _ylabel, model_name)
from landscape.report import ModelDensity, RunHessian


def plot_hessian_course(data: Sequence[RunHessian], *,
                        axes: Sequence[Axes] | np.ndarray | None = None,
                        colors: Mapping[str, str] | None = None) -> Figure:
    """Per learning rate (one row each): left, λ_max of ∇²L(w_t; B_t) per run (solid), the
    paper's effective β of the same run (dotted, where probed) and the gradient-descent
    stability threshold 2/η (black dashed) on one axis; right, the trace with its standard
    error (shaded). Seeds of a model share its color."""
    if not data:
        raise ValueError("no run with a Hessian probe")
    models = list(dict.fromkeys(h.model for h in data))
    colors = _colors_for(models, colors)
    lrs = sorted({h.lr for h in data})
    own = axes is None
    fig, grid = _figure_and_grid(axes, len(lrs), 2, (11.0, 3.8 * len(lrs) + 0.8))
    for (ax_l, ax_t), lr in zip(grid, lrs):
        runs = [h for h in data if h.lr == lr]
        values = []
        for h in runs:
            color = colors[h.model]
            ax_l.plot(h.step, _finite(h.lambda_max), color=color, lw=1.6, alpha=0.85)
            values.append(h.lambda_max)
            if len(h.beta):
                ax_l.plot(h.beta_step, _finite(h.beta), color=color, lw=1.0, ls=":",
                          alpha=0.8)
                values.append(h.beta)
            trace, se = _finite(h.trace), _finite(h.trace_se)
            ax_t.plot(h.step, trace, color=color, lw=1.6, alpha=0.85)
            ax_t.fill_between(h.step, trace - se, trace + se, color=color, alpha=0.2, lw=0)
        first = runs[0]
        ax_l.plot(first.step, first.stability_threshold, color="black", ls="--", lw=1.2)
        values.append(first.stability_threshold)
        scale = _set_yscale(ax_l, values, "auto")
        _ylabel(ax_l, "curvature", scale)
        ax_l.set_title(f"lr {lr:g}: lambda_max, beta and 2/lr")
        ax_t.set_title(f"lr {lr:g}: trace of the Hessian (+- 1 s.e.)")
        ax_t.axhline(0.0, color="0.6", lw=0.6)
        for ax in (ax_l, ax_t):
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[m], lw=1.6, label=model_name(m, models))
               for m in models]
    handles += [Line2D([], [], color="0.3", lw=1.6, label="lambda_max (Lanczos)"),
                Line2D([], [], color="0.3", lw=1.0, ls=":", label="paper's beta (probe)"),
                Line2D([], [], color="black", lw=1.2, ls="--", label="2/lr (GD stability)")]
    _legend(fig, grid[-1][0], handles, own_figure=own)
    if own:
        seeds = len({h.seed for h in data})
        fig.suptitle("Curvature of the training objective on the step's batch, BN vs no BN "
                     f"({seeds} seed{'s' if seeds > 1 else ''} per model)")
    return fig


def plot_hessian_density(data: Sequence[ModelDensity], *, n_steps: int = 4,
                         axes: Sequence[Axes] | np.ndarray | None = None,
                         colors: Mapping[str, str] | None = None,
                         sigma_fraction: float = 0.01) -> Figure:
    """One row per learning rate, one panel per step (up to `n_steps` of the steps every model
    recorded, first and last included): each model's spectral density (stochastic Lanczos
    quadrature, the seeds pooled) broadened by a Gaussian of width `sigma_fraction` × the
    panel's eigenvalue range, on a log scale."""
    if not data:
        raise ValueError("no run with a recorded Hessian density")
    models = list(dict.fromkeys(d.model for d in data))
    colors = _colors_for(models, colors)
    lrs = sorted({d.lr for d in data})
    common = sorted(set.intersection(*(set(d.step.tolist()) for d in data)))
    if not common:  # models recorded different steps: the first model's, where others have them
        common = sorted(set(data[0].step.tolist()))
        data = [d for d in data if set(common) <= set(d.step.tolist())]
    chosen = [common[i] for i in np.unique(np.round(np.linspace(
        0, len(common) - 1, min(n_steps, len(common)))).astype(int))]
    own = axes is None
    fig, grid = _figure_and_grid(axes, len(lrs), len(chosen),
                                 (max(4.2 * len(chosen), 7.0), 3.6 * len(lrs) + 1.0))
    for row, lr in zip(grid, lrs):
        for ax, step in zip(row, chosen):
            rows = [(d, int(np.flatnonzero(d.step == step)[0])) for d in data if d.lr == lr]
            nodes = np.concatenate([d.nodes[i] for d, i in rows])
            low, high = np.nanmin(nodes), np.nanmax(nodes)
            sigma = sigma_fraction * max(high - low, 1e-12)
            x = np.linspace(low - 5 * sigma, high + 5 * sigma, 1000)
            for d, i in rows:
                density = broadened_density(d.nodes[i], d.weights[i], x, sigma)
                ax.plot(x, np.maximum(density, 1e-12), color=colors[d.model], lw=1.4)
            ax.set_yscale("log")
            ax.set_ylim(1e-6, None)
            ax.set_title(f"lr {lr:g}, step {step}", fontsize=10)
            ax.set_xlabel("eigenvalue")
            ax.grid(alpha=0.3)
        row[0].set_ylabel("density (log scale)")
    handles = [Line2D([], [], color=colors[m], lw=1.4, label=model_name(m, models))
               for m in models]
    _legend(fig, grid[-1][0], handles, own_figure=own)
    if own:
        seeds = max(len(d.seeds) for d in data)
        fig.suptitle(f"Hessian spectral density on the step's batch (SLQ, {seeds} "
                     f"seed{'s' if seeds > 1 else ''} pooled; Gaussian width "
                     f"{sigma_fraction:g} x range)")
    return fig
