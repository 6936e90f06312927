"""The course's figures: (a) the loss landscape, a shaded min–max of the training-batch loss
across each model's runs (its learning rates and seeds; labels say which); (c) the trajectory quantities between consecutive steps,
gradient change and trajectory β."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from landscape.plot._style import literal_text
from landscape.plot._style import (
    YScale,
    _colors_for,
    _end_handles,
    _figure_and_axes,
    _finite,
    _mark_curve_ends,
    _readable_log_ticks,
    _set_yscale,
    _shaded,
    _ylabel,
    model_name,
)
from landscape.report import ALL_PARAMETERS, ModelSeries


def _model_label(series: ModelSeries, models: Sequence[str]) -> str:
    extra = []
    if series.n_diverged:
        extra.append(f"{series.n_diverged} diverged")
    if series.n_incomplete:
        extra.append(f"{series.n_incomplete} incomplete")
    # What the band spans (lrs, seeds or both), never seeds counted as lrs.
    runs = f"{series.span}: no band" if _single_run(series) else series.span
    return f"{model_name(series.model, models)}, {runs}" + \
        (f", {', '.join(extra)}" if extra else "")


def _single_run(series: ModelSeries) -> bool:
    """A model with one run: its "band" across runs is that run's line."""
    return len(series.curves) == 1


def _band_handle(series: ModelSeries, color: str, models: Sequence[str]):
    """Legend entry of a min-max band, or of a line for a model with a single run."""
    if _single_run(series):
        return Line2D([], [], color=color, linewidth=1.5, label=_model_label(series, models))
    return Patch(facecolor=mcolors.to_rgba(color, 0.25), edgecolor=color,
                 label=_model_label(series, models))


def _runs_per(series: Mapping[str, ModelSeries]) -> str:
    """'one per lr', 'one per seed' or 'one per lr and seed': what a model's runs are."""
    spans = {s.spanned for s in series.values() if not _single_run(s)}
    if spans == {"seeds"}:
        return "one per seed"
    if spans == {"lrs"}:
        return "one per lr"
    return "one per lr and seed"


def _band_text(series: Mapping[str, ModelSeries]) -> str:
    """What is shaded, for a title: the min-max over each model's runs (over its lrs, its seeds
    or both: the legend says which), and what a model with a single run shows instead."""
    single = [s for s in series.values() if _single_run(s)]
    if len(single) == len(series):
        return "one run per model: each line is that run (a band needs several runs)"
    text = f"shaded: min to max over each model's runs ({_runs_per(series)})"
    return text + ("; a model with one run is its line" if single else "")


def _draw_bands(ax: Axes, series: Mapping[str, ModelSeries], colors: Mapping[str, str]
                ) -> tuple[list, list, bool, bool]:
    """Every model's band, its legend handle and its end marks; returns (handles, the values
    drawn, whether a run diverged, whether a run is incomplete)."""
    handles, values = [], []
    div = inc = False
    for model, s in series.items():
        _draw_band(ax, s, colors[model])
        values += [s.envelope.low, s.envelope.high]
        d, i = _mark_curve_ends(ax, s.curves, colors[model])
        div, inc = div or d, inc or i
        handles.append(_band_handle(s, colors[model], list(series)))
    return handles, values, div, inc


def _draw_band(ax: Axes, series: ModelSeries, color: str) -> None:
    """A model's min-max band across its runs, or the line of its only run."""
    env = series.envelope
    if _single_run(series):
        ax.plot(env.step, _finite(env.high), color=color, linewidth=1.3,
                marker="o" if len(env.step) < 3 else None, markersize=4)
    else:
        _shaded(ax, env.step, env.low, env.high, color)


def _smooth_text(smooth: int | None) -> str:
    return "raw values (no smoothing)" if not smooth or smooth == 1 else \
        f"each run smoothed first (trailing mean over {smooth} steps)"


@literal_text
def plot_loss_landscape(envelopes: Mapping[str, ModelSeries], *, ax: Axes | None = None,
                        colors: Mapping[str, str] | None = None,
                        yscale: YScale = "auto") -> Figure:
    """Shaded min–max of the training-batch loss across each model's learning rates, per step
    (`report.loss_envelopes`), all models in one panel."""
    if not envelopes:
        raise ValueError("no model with a recorded training loss to plot")
    fig, (ax,) = _figure_and_axes(ax, 1, (9, 5.5))
    handles, values, div, inc = _draw_bands(ax, envelopes, _colors_for(list(envelopes), colors))
    scale = _set_yscale(ax, values, yscale)
    smooth = next(iter(envelopes.values())).smooth
    ax.set_xlabel("training step")
    _ylabel(ax, "training-batch loss L(w_t; B_t)", scale)
    ax.set_title("Loss landscape (course version): training-batch loss across each model's runs\n"
                 f"{_band_text(envelopes)}; {_smooth_text(smooth)}", fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig


# What the verdict does instead of a figure's max or band, said in the figures that differ.
VERDICT_AGGREGATES = ("the verdict (summary.txt) compares the median over all steps, per seed, "
                      "not this")


def _trajectory_note(full_batch: bool) -> str:
    batches = "on the same (full) batch" if full_batch else "on different batches"
    return f"course quantity: consecutive training steps {batches}"


def _source_text(series: Mapping[str, ModelSeries]) -> str:
    source = next(iter(series.values())).source
    return "all parameters" if source == ALL_PARAMETERS else f"parameter {source}"


@literal_text
def plot_gradient_change(series: Mapping[str, ModelSeries], *, ax: Axes | None = None,
                         colors: Mapping[str, str] | None = None,
                         yscale: YScale = "auto", full_batch: bool = False) -> Figure:
    """Shaded min–max across learning rates of ‖g_{t+1} − g_t‖₂ per model
    (`report.gradient_change_envelopes`). `full_batch`: the runs trained on the whole data set
    at every step (`report.full_batch`), so consecutive steps share their batch; the title
    says which."""
    if not series:
        raise ValueError("no model with two consecutive recorded steps to plot")
    fig, (ax,) = _figure_and_axes(ax, 1, (9, 5.5))
    handles, values, div, inc = _draw_bands(ax, series, _colors_for(list(series), colors))
    scale = _set_yscale(ax, values, yscale)
    smooth = next(iter(series.values())).smooth
    ax.set_xlabel("training step t")
    _ylabel(ax, r"gradient change $\|g_{t+1} - g_t\|_2$", scale, math=True)
    ax.set_title(f"Gradient change between consecutive steps, {_source_text(series)}\n"
                 f"({_trajectory_note(full_batch)}, not the paper's gradient "
                 "predictiveness)\n"
                 f"{_band_text(series)}; {_smooth_text(smooth)}\n{VERDICT_AGGREGATES}",
                 fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig


@literal_text
def plot_trajectory_beta(series: Mapping[str, ModelSeries], *, ax: Axes | None = None,
                         colors: Mapping[str, str] | None = None,
                         yscale: YScale = "auto", full_batch: bool = False) -> Figure:
    """Max across learning rates of ‖g_{t+1} − g_t‖₂ / ‖w_{t+1} − w_t‖₂ per model
    (`report.trajectory_beta_envelopes`, the envelope's high edge). `full_batch` as in
    `plot_gradient_change`."""
    if not series:
        raise ValueError("no model with two consecutive recorded steps to plot")
    fig, (ax,) = _figure_and_axes(ax, 1, (9, 5.5))
    colors = _colors_for(list(series), colors)
    handles, values = [], []
    div = inc = False
    for model, s in series.items():
        env, color = s.envelope, colors[model]
        high = _finite(env.high)
        ax.plot(env.step, high, color=color, linewidth=1.3,
                marker="o" if len(env.step) < 3 else None, markersize=4)
        values.append(high)
        # Divergence markers sit on each run's own curve, which is at or below the max.
        d, i = _mark_curve_ends(ax, s.curves, color)
        div, inc = div or d, inc or i
        handles.append(Line2D([], [], color=color, linewidth=1.3,
                              label=_model_label(s, list(series))))
    scale = _set_yscale(ax, values, yscale)
    smooth = next(iter(series.values())).smooth
    ax.set_xlabel("training step t")
    _ylabel(ax, r"trajectory $\beta$ = $\|g_{t+1} - g_t\|_2 \,/\, \|w_{t+1} - w_t\|_2$", scale,
            math=True)
    ax.set_title(f"Trajectory β: the max over each model's runs ({_runs_per(series)}) at "
                 f"every step, {_source_text(series)}\n"
                 f"({_trajectory_note(full_batch)}, not the paper's effective β)\n"
                 f"{_smooth_text(smooth)}; {VERDICT_AGGREGATES}", fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig
