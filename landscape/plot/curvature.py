"""The Hessian probe's figures: λ_max along training beside the 2/η stability threshold and the
paper's β, with the trace; and the spectral density at chosen steps, BN vs no BN."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analyses.spectrum import broadened_density
from landscape.plot._style import literal_text
from landscape.plot._style import (_MARKERS, _colors_for, _figure_and_grid, _finite, _legend,
                                   _set_yscale, _ylabel, model_name)
from landscape.report import ModelDensity, RunHessian


@literal_text
def plot_hessian_course(data: Sequence[RunHessian], *,
                        axes: Sequence[Axes] | np.ndarray | None = None,
                        colors: Mapping[str, str] | None = None) -> Figure:
    """Per learning rate (one row each): left, λ_max of ∇²L(w_t; B_t) per run (solid), the
    paper's effective β of the same run (dotted, where probed) and the gradient-descent
    stability threshold 2/η (black dashed, across the whole axis) on one axis; right, the trace
    with its standard error (shaded). Seeds of a model share its color and differ in marker
    (the legend names them); a panel notes when a trace estimate is negative (an indefinite
    Hessian, or a Hutchinson estimate whose error exceeds it)."""
    if not data:
        raise ValueError("no run with a Hessian probe")
    models = list(dict.fromkeys(h.model for h in data))
    colors = _colors_for(models, colors)
    lrs = sorted({h.lr for h in data})
    seeds = sorted({h.seed for h in data})
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(seeds)}
    own = axes is None
    fig, grid = _figure_and_grid(axes, len(lrs), 2, (11.0, 3.8 * len(lrs) + 0.8))
    for (ax_l, ax_t), lr in zip(grid, lrs):
        runs = [h for h in data if h.lr == lr]
        values = []
        for h in runs:
            style = dict(color=colors[h.model], marker=markers[h.seed], markersize=4)
            ax_l.plot(h.step, _finite(h.lambda_max), lw=1.6, alpha=0.85, **style)
            values.append(h.lambda_max)
            if len(h.beta):
                ax_l.plot(h.beta_step, _finite(h.beta), lw=1.0, ls=":", alpha=0.8,
                          **{**style, "markerfacecolor": "none"})
                values.append(h.beta)
            trace, se = _finite(h.trace), _finite(h.trace_se)
            ax_t.plot(h.step, trace, lw=1.6, alpha=0.85, **style)
            ax_t.fill_between(h.step, trace - se, trace + se, color=style["color"], alpha=0.2,
                              lw=0)
        values.append(runs[0].stability_threshold)
        scale = _set_yscale(ax_l, values, "auto")
        _stability_line(ax_l, runs[0])
        _ylabel(ax_l, "curvature (lambda_max, beta, 2/lr)", scale)
        ax_l.set_title(f"lr {lr:g}: lambda_max, beta and 2/lr")
        ax_t.set_title(f"lr {lr:g}: trace of the Hessian (+- 1 s.e.)")
        ax_t.set_ylabel("trace of the Hessian (Hutchinson)")
        ax_t.axhline(0.0, color="0.6", lw=0.6)
        _negative_trace_note(ax_t, runs)
        for ax in (ax_l, ax_t):
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    _legend(fig, grid[-1][0], _course_handles(models, colors, markers), own_figure=own)
    if own:
        fig.suptitle("Curvature of the training objective on the step's batch, BN vs no BN\n"
                     f"one line per run ({_seeds_text(seeds)} per model and lr"
                     f"{', told apart by marker' if len(seeds) > 1 else ''})", fontsize=11)
    return fig


def _seeds_text(seeds: Sequence[int]) -> str:
    """'seed 0' or 'seeds 0, 1, 2'."""
    seeds = sorted(set(seeds))
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}"


def _stability_line(ax: Axes, run: RunHessian) -> None:
    """2/η_t from the left to the right edge of the axis (a constant lr: one horizontal line;
    a schedule: its value at each probed step, held to the edges)."""
    threshold = np.asarray(run.stability_threshold, dtype=np.float64)
    if not len(threshold):
        return
    if np.allclose(threshold, threshold[0]):
        ax.axhline(threshold[0], color="black", ls="--", lw=1.2)
        return
    left, right = ax.get_xlim()
    x = np.concatenate([[left], run.step, [right]])
    y = np.concatenate([[threshold[0]], threshold, [threshold[-1]]])
    ax.plot(x, y, color="black", ls="--", lw=1.2, drawstyle="steps-post")
    ax.set_xlim(left, right)


def _negative_trace_note(ax: Axes, runs: Sequence[RunHessian]) -> None:
    """A note in the panel where some trace estimate is below 0."""
    negative = [(h, int(np.sum(np.asarray(h.trace) < 0))) for h in runs]
    negative = [(h, n) for h, n in negative if n]
    if not negative:
        return
    which = "; ".join(f"{h.model} seed {h.seed} ({n} step{'s' if n > 1 else ''})"
                      for h, n in negative)
    ax.text(0.02, 0.97, f"trace < 0: {which}\nthe Hessian is indefinite there, or the "
            "estimate's error exceeds it", transform=ax.transAxes, fontsize=7.5, color="0.2",
            va="top", bbox=dict(boxstyle="round", facecolor="white", alpha=0.85,
                                edgecolor="0.7"))


def _course_handles(models: Sequence[str], colors: Mapping[str, str],
                    markers: Mapping[int, str]) -> list:
    handles = [Line2D([], [], color=colors[m], lw=1.6, label=model_name(m, models))
               for m in models]
    if len(markers) > 1:  # a single seed needs no marker key
        handles += [Line2D([], [], color="0.3", lw=0, marker=mk, markersize=5,
                           label=f"seed {seed}") for seed, mk in markers.items()]
    handles += [Line2D([], [], color="0.3", lw=1.6, label="lambda_max (Lanczos)"),
                Line2D([], [], color="0.3", lw=1.0, ls=":", label="paper's beta (probe)"),
                Line2D([], [], color="black", lw=1.2, ls="--", label="2/lr (GD stability)")]
    return handles


@literal_text
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
        seeds = [s for d in data for s in d.seeds]
        pooled = " pooled" if max(len(d.seeds) for d in data) > 1 else ""
        fig.suptitle(f"Hessian spectral density on the step's batch (SLQ)\none line per "
                     f"model and lr: {_seeds_text(seeds)}{pooled}; Gaussian width "
                     f"{sigma_fraction:g} x range", fontsize=11)
    return fig
