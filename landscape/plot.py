"""Figures from the numbers of `landscape.report` (which gets them from `analyses`).

Every function takes data and, optionally, the Axes to draw into, and returns the Figure. None of
them saves, shows or touches pyplot's global state: figures are built as `matplotlib.figure.Figure`
objects (rendered by Agg or the PDF/SVG backends when saved), so this module is safe on machines
without a display and in long-running processes. Saving is the caller's business
(`fig.savefig(path)`; the `landscape plot` command does it).

Conventions in every figure: x is the training step (or epoch), each model has one color, a
diverged run is marked with an "x" at the step whose loss was non-finite (at the height of its
last finite value), an incomplete run with an open circle at its last recorded step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, Mapping, Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from landscape.errors import RecordError
from landscape.report import (
    ALL_PARAMETERS,
    ActivationBands,
    LoadedRun,
    ModelSeries,
    PaperData,
    RunCurve,
    RunICS,
    activation_data,
    full_batch,
    gradient_change_envelopes,
    group_by_model,
    ics_data,
    ics_layers,
    loss_envelopes,
    paper_data,
    trajectory_beta_envelopes,
    trajectory_source,
)

YScale = Literal["linear", "log", "auto"]

# "auto" y scale: log when the finite positive values span more than this factor.
AUTO_LOG_RANGE = 100.0
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_DIVERGED = dict(marker="x", markersize=10, markeredgewidth=2.2, linestyle="none")
_INCOMPLETE = dict(marker="o", markersize=8, markerfacecolor="none", markeredgewidth=1.8,
                   linestyle="none")


# ---------------------------------------------------------------------------------------------
# Helpers


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """One color per model, in the order given (matplotlib's tab10 cycle)."""
    palette = matplotlib.colormaps["tab10"].colors
    return {m: mcolors.to_hex(palette[i % len(palette)]) for i, m in enumerate(models)}


def _figure_and_axes(ax: Axes | Sequence[Axes] | np.ndarray | None, n: int,
                     figsize: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(1, n, squeeze=False)[0]
        return fig, list(axes)
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"this figure needs {n} Axes, got {len(axes)}")
    return axes[0].figure, axes


def _finite(values: np.ndarray) -> np.ndarray:
    """float64 copy with non-finite entries as NaN (drawn as gaps, never as huge polygons)."""
    out = np.asarray(values, dtype=np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def _set_yscale(ax: Axes, values: Sequence[np.ndarray], yscale: YScale) -> str:
    """Apply `yscale` ("auto": log if the positive finite values span > AUTO_LOG_RANGE)."""
    if yscale not in ("linear", "log", "auto"):
        raise ValueError(f"unknown yscale {yscale!r}; valid: linear, log, auto")
    if yscale == "auto":
        flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
        flat = flat[np.isfinite(flat) & (flat > 0)]
        yscale = "log" if flat.size and flat.max() / flat.min() > AUTO_LOG_RANGE else "linear"
    ax.set_yscale(yscale)
    return yscale


def _ylabel(ax: Axes, text: str, scale: str) -> None:
    ax.set_ylabel(text + (" (log scale)" if scale == "log" else ""))


# Suffixes of the normalization variants (landscape.models), longest match first.
_NORM_SUFFIXES = {
    "_noisy_bn": "noisy BatchNorm",
    "_bn": "BatchNorm",
    "_l1": "ℓ1 normalization",
    "_l2": "ℓ2 normalization",
    "_linf": "ℓ∞ normalization",
}


def model_name(model: str, models: Sequence[str] = ()) -> str:
    """The model's name for legends: 'vgg_bn (BatchNorm)', 'vgg_noisy_bn (noisy BatchNorm)',
    'vgg_l1 (ℓ1 normalization)', and 'vgg (no BatchNorm)' when a normalized variant of it is
    among `models`."""
    for suffix, what in _NORM_SUFFIXES.items():
        if model.endswith(suffix):
            return f"{model} ({what})"
    if any(f"{model}{suffix}" in models for suffix in _NORM_SUFFIXES):
        return f"{model} (no BatchNorm)"
    return model


def _lrs_text(lrs: Sequence[float]) -> str:
    n = len(lrs)
    if n <= 4:
        return f"{n} lr{'s' if n != 1 else ''}: {', '.join(f'{lr:g}' for lr in lrs)}"
    return f"{n} lrs: {min(lrs):g} to {max(lrs):g}"


def _model_label(series: ModelSeries, models: Sequence[str]) -> str:
    extra = []
    if series.n_diverged:
        extra.append(f"{series.n_diverged} diverged")
    if series.n_incomplete:
        extra.append(f"{series.n_incomplete} incomplete")
    runs = f"1 run (lr {series.lrs[0]:g}): no band" if _single_run(series) else \
        _lrs_text(series.lrs)
    return f"{model_name(series.model, models)}, {runs}" + \
        (f", {', '.join(extra)}" if extra else "")


def _single_run(series: ModelSeries) -> bool:
    """A model with one run: its "band" across learning rates is that run's line."""
    return len(series.curves) == 1


def _band_handle(series: ModelSeries, color: str, models: Sequence[str]):
    """Legend entry of a min-max band, or of a line for a model with a single run."""
    if _single_run(series):
        return Line2D([], [], color=color, linewidth=1.5, label=_model_label(series, models))
    return Patch(facecolor=mcolors.to_rgba(color, 0.25), edgecolor=color,
                 label=_model_label(series, models))


def _band_text(series: Mapping[str, ModelSeries]) -> str:
    """What is shaded, for a title: the min-max over each model's runs, and what a model with a
    single run shows instead."""
    single = [s for s in series.values() if _single_run(s)]
    if len(single) == len(series):
        return "one run per model: each line is that run (a band needs runs at several lrs)"
    text = "shaded: min to max over each model's runs (one per lr)"
    return text + ("; a model with one run is its line" if single else "")


def _mark_end(ax: Axes, x: float, y: float, color: str, diverged: bool) -> None:
    if diverged or not np.isfinite(y):
        # At the top of the panel: a diverged run has no value at its divergence step, and its
        # last finite one is often far off the scale of the other runs.
        ax.plot([x], [0.96], color=color, zorder=5, transform=ax.get_xaxis_transform(),
                clip_on=False, **(_DIVERGED if diverged else _INCOMPLETE))
    else:
        ax.plot([x], [y], color=color, zorder=5, **_INCOMPLETE)


def _mark_curve_ends(ax: Axes, curves: Sequence[RunCurve], color: str) -> tuple[bool, bool]:
    """Mark every diverged / incomplete run of `curves`; returns (any diverged, any incomplete)."""
    div = inc = False
    for curve in curves:
        point = curve.end_point()
        if point is None:
            continue
        diverged = curve.diverged_step is not None
        _mark_end(ax, point[0], point[1], color, diverged)
        div, inc = div or diverged, inc or not diverged
    return div, inc


def _end_handles(diverged: bool, incomplete: bool) -> list[Line2D]:
    handles = []
    if diverged:
        handles.append(Line2D([], [], color="0.2",
                              label="diverged: first non-finite loss at this step",
                              **_DIVERGED))
    if incomplete:
        handles.append(Line2D([], [], color="0.2", label="incomplete run: last recorded step",
                              **_INCOMPLETE))
    return handles


_MAX_MARKED_POINTS = 80  # beyond this, markers pile up into a solid smear


def _marker_for(n_points: int, wanted: bool, marker: str = "o") -> str | None:
    """Mark points when asked (and when there are few enough to see), or when a curve is too
    short to show as a line."""
    if n_points < 3 or (wanted and n_points <= _MAX_MARKED_POINTS):
        return marker
    return None


def _shaded(ax: Axes, step: np.ndarray, low: np.ndarray, high: np.ndarray, color: str,
            *, markers: bool = False) -> None:
    """Shade between low and high and draw both edges; a point with no finite neighbour (which
    a shaded polygon cannot show) gets a vertical bar from low to high."""
    low, high = _finite(low), _finite(high)
    ax.fill_between(step, low, high, color=color, alpha=0.25, linewidth=0)
    style = dict(color=color, linewidth=1.0, marker=_marker_for(len(step), markers),
                 markersize=3)
    ax.plot(step, low, **style)
    ax.plot(step, high, **style)
    ok = np.isfinite(low) & np.isfinite(high)
    neighbour = np.zeros_like(ok)
    neighbour[1:] |= ok[:-1]
    neighbour[:-1] |= ok[1:]
    isolated = ok & ~neighbour
    if isolated.any():
        ax.vlines(np.asarray(step)[isolated], low[isolated], high[isolated], color=color,
                  linewidth=4, alpha=0.4)


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


def _has_finite(values: Sequence[np.ndarray]) -> bool:
    return any(np.isfinite(np.asarray(v, dtype=np.float64)).any() for v in values)


def _readable_log_ticks(ax: Axes) -> None:
    """On a log axis spanning less than ~2 decades, label ticks as plain numbers (2.2, 2.4)
    rather than 2.2×10⁰; wider axes keep matplotlib's powers of ten."""
    if ax.get_yscale() != "log":
        return
    low, high = ax.get_ylim()
    if low > 0 and high / low < 100:
        fmt = FuncFormatter(lambda v, _: f"{v:.3g}")
        ax.yaxis.set_major_formatter(fmt)
        if high / low < 10:
            ax.yaxis.set_minor_formatter(fmt)
        else:
            # Over one to two decades a label at every minor tick (0.2, 0.3, ..., 0.9) would
            # overlap: label 2 and 5 times the powers of ten only.
            ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda v, _: f"{v:.3g}" if _mantissa(v) in (2, 5) else ""))


def _mantissa(value: float) -> int:
    """The leading digit of a positive number (2 for 0.2, 20, 2e-5)."""
    return int(round(value / 10 ** np.floor(np.log10(value) + 1e-9)))


def _legend(fig: Figure, ax: Axes, handles: list, *, own_figure: bool) -> None:
    """Below the panels when this module made the figure (nothing to hide), else in `ax`."""
    if own_figure:
        # As many columns (at most 4) as the figure's width holds: ~5 pt per character at
        # font size 9, plus the handle and padding.
        longest = max((len(h.get_label()) for h in handles), default=1)
        fit = int(fig.get_figwidth() * 72 // (5.0 * longest + 40))
        fig.legend(handles=handles, loc="outside lower center",
                   ncol=max(1, min(4, len(handles), fit)), fontsize=9)
    else:
        ax.legend(handles=handles, loc="best", fontsize=8)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4",
            wrap=True)


def _smooth_text(smooth: int | None) -> str:
    return "raw values (no smoothing)" if not smooth or smooth == 1 else \
        f"each run smoothed first (trailing mean over {smooth} steps)"


def _colors_for(models: Sequence[str], colors: Mapping[str, str] | None) -> Mapping[str, str]:
    if colors is None:
        return model_colors(models)
    missing = [m for m in models if m not in colors]
    if missing:
        raise ValueError(f"no color given for model(s) {', '.join(missing)}")
    return colors


# ---------------------------------------------------------------------------------------------
# (a) The course's loss landscape


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
    ax.set_title("Loss landscape (course version): training-batch loss across learning rates\n"
                 f"{_band_text(envelopes)}; {_smooth_text(smooth)}", fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig


# ---------------------------------------------------------------------------------------------
# (b) The paper's three panels at one learning rate


def plot_paper(data: PaperData, *, axes: Sequence[Axes] | np.ndarray | None = None,
               colors: Mapping[str, str] | None = None,
               yscale: YScale = "auto") -> Figure:
    """The paper's Figure-4-style panels at one learning rate (`report.paper_data`):
    (1) loss band min–max over η (log y), (2) gradient-predictiveness band min–max over η,
    (3) effective β per probed step. `yscale` applies to panels 2 and 3."""
    if not data.bands:
        raise ValueError(f"no probed step at lr {data.lr:g}")
    fig, (ax_loss, ax_pred, ax_beta) = _figure_and_axes(axes, 3, (16, 5.2))
    colors = _colors_for(list(data.bands), colors)
    div = inc = False
    pred_values, beta_values = [], []
    handles = []
    for model, bands in data.bands.items():
        color, run = colors[model], data.runs[model]
        _shaded(ax_loss, bands.step, bands.loss_low, bands.loss_high, color, markers=True)
        _shaded(ax_pred, bands.step, bands.grad_diff_low, bands.grad_diff_high, color,
                markers=True)
        ax_beta.plot(bands.step, _finite(bands.beta), color=color,
                     marker=_marker_for(len(bands.step), True), markersize=4)
        pred_values += [bands.grad_diff_low, bands.grad_diff_high]
        beta_values.append(bands.beta)
        label = model_name(model, list(data.bands))
        if run.diverged_step is not None or run.incomplete:
            for ax, ys in ((ax_loss, bands.loss_high), (ax_pred, bands.grad_diff_high),
                           (ax_beta, bands.beta)):
                curve = RunCurve(run.run_id, model, run.lr, run.info.status, run.diverged_step,
                                 run.incomplete, bands.step, np.asarray(ys, dtype=np.float64))
                d, i = _mark_curve_ends(ax, [curve], color)
                div, inc = div or d, inc or i
            label += (f" (diverged at step {run.diverged_step})" if run.diverged_step is not None
                      else f" (incomplete, {run.info.status})")
        handles.append(Patch(facecolor=mcolors.to_rgba(color, 0.25), edgecolor=color,
                             label=label))
    ax_loss.set_yscale("log")
    pred_scale = _set_yscale(ax_pred, pred_values, yscale)
    beta_scale = _set_yscale(ax_beta, beta_values, yscale)
    loss_values = [v for b in data.bands.values() for v in (b.loss_low, b.loss_high)]
    for ax, values in ((ax_loss, loss_values), (ax_pred, pred_values), (ax_beta, beta_values)):
        if not _has_finite(values):
            _empty(ax, "no finite value at any probed step")
        _readable_log_ticks(ax)

    ax_loss.set_title("(1) loss landscape: L(w_t − η g_t; B_t)\nshaded: min to max over η",
                      fontsize=10)
    _ylabel(ax_loss, "training-batch loss", "log")
    ax_pred.set_title("(2) gradient predictiveness: ‖∇L(w_t) − ∇L(w_t − η g_t)‖₂\n"
                      "shaded: min to max over η", fontsize=10)
    _ylabel(ax_pred, "ℓ2 distance between the two gradients", pred_scale)
    ax_beta.set_title("(3) effective β-smoothness:\n"
                      "max over η of ‖∇L(w_t) − ∇L(w_t − η g_t)‖₂ / ‖η g_t‖₂", fontsize=10)
    _ylabel(ax_beta, "β (gradient change per unit distance)", beta_scale)
    xlabel = "training step t" + _probe_spacing(data)
    for ax in (ax_loss, ax_pred, ax_beta):
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    _legend(fig, ax_loss, handles + _end_handles(div, inc), own_figure=axes is None)
    fig.suptitle(f"Paper's measurement (Santurkar et al. 2018): probe along the gradient, "
                 f"lr = {data.lr:g}, {data.eta_description()}\n"
                 "at each probed step t the batch B_t is fixed and the weights are moved to "
                 "w_t − η g_t (an evaluation, not a training step)", fontsize=11)
    return fig


def _probe_spacing(data: PaperData) -> str:
    return _spacing_text([b.step for b in data.bands.values()], "probed")


# ---------------------------------------------------------------------------------------------
# (c) The course's trajectory quantities


def _trajectory_note(full_batch: bool) -> str:
    batches = "on the same (full) batch" if full_batch else "on different batches"
    return f"course quantity: consecutive training steps {batches}"


def _source_text(series: Mapping[str, ModelSeries]) -> str:
    source = next(iter(series.values())).source
    return "all parameters" if source == ALL_PARAMETERS else f"parameter {source}"


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
    _ylabel(ax, r"gradient change $\|g_{t+1} - g_t\|_2$", scale)
    ax.set_title(f"Gradient change between consecutive steps, {_source_text(series)}\n"
                 f"({_trajectory_note(full_batch)}, not the paper's gradient "
                 "predictiveness)\n"
                 f"{_band_text(series)}; {_smooth_text(smooth)}", fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig


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
    _ylabel(ax, r"trajectory $\beta$ = $\|g_{t+1} - g_t\|_2 \,/\, \|w_{t+1} - w_t\|_2$", scale)
    ax.set_title(f"Trajectory β: max over each model's runs (one per lr), {_source_text(series)}\n"
                 f"({_trajectory_note(full_batch)}, not the paper's effective β)\n"
                 f"{_smooth_text(smooth)}", fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig


# ---------------------------------------------------------------------------------------------
# (d) Training curves of every run


def _run_style(index: int, n: int, color: str) -> dict:
    """Same hue per model; lightness and line style tell the learning rates apart."""
    rgb = np.asarray(mcolors.to_rgb(color))
    # A model's only run keeps the model's color (as in the other figures); with several,
    # darker for the smallest lr, lighter for the largest.
    mix = 0.0 if n == 1 else -0.35 + 0.7 * index / (n - 1)
    rgb = rgb * (1 + mix) if mix < 0 else rgb + (1 - rgb) * mix
    return dict(color=mcolors.to_hex(np.clip(rgb, 0, 1)),
                linestyle=_LINESTYLES[index % len(_LINESTYLES)])


def _run_label(run: LoadedRun, models: Sequence[str]) -> str:
    label = f"{model_name(run.model, models)}, lr {run.lr:g}"
    if run.diverged_step is not None:
        return label + f" (diverged at step {run.diverged_step})"
    if run.incomplete:
        return label + f" (incomplete: {run.info.status})"
    return label


def plot_training_curves(runs: Sequence[LoadedRun], *,
                         axes: Sequence[Axes] | np.ndarray | None = None,
                         colors: Mapping[str, str] | None = None,
                         yscale: YScale = "auto") -> Figure:
    """Per run: training-batch loss per step, and accuracy per epoch on the training batches
    and on held-out data (three panels). A panel whose accuracy is NaN for every run (a task
    without accuracy, such as the deep linear network's regression) shows the corresponding loss
    instead: the mean training-batch loss since the previous evaluation, and the held-out loss;
    its title and y label say so."""
    by_model = group_by_model(runs)
    if not by_model:
        raise ValueError("no run to plot")
    fig, (ax_loss, ax_train, ax_test) = _figure_and_axes(axes, 3, (16, 5.6))
    colors = _colors_for(list(by_model), colors)
    handles, losses = [], []
    div = inc = False
    all_runs = [r for rs in by_model.values() for r in rs]
    any_eval = any(len(r.data.eval.step) for r in all_runs)
    # Accuracy where any run has one; else (regression) the loss of the same evaluation.
    train_acc = _has_finite([r.data.eval.train_acc for r in all_runs])
    test_acc = _has_finite([r.data.eval.test_acc for r in all_runs])
    eval_values: dict[Axes, list] = {ax_train: [], ax_test: []}
    for model, model_runs in by_model.items():
        for index, run in enumerate(model_runs):
            style = _run_style(index, len(model_runs), colors[model])
            steps, ev = run.data.steps, run.data.eval
            loss = _finite(steps.loss)
            ax_loss.plot(steps.step, loss, linewidth=1.1,
                         marker="o" if len(steps.step) < 3 else None, markersize=4, **style)
            losses.append(loss)
            curve = RunCurve(run.run_id, model, run.lr, run.info.status, run.diverged_step,
                             run.incomplete, steps.step, loss)
            d, i = _mark_curve_ends(ax_loss, [curve], style["color"])
            div, inc = div or d, inc or i
            if len(ev.step):
                marker = _MARKERS[index % len(_MARKERS)]
                for ax, values in ((ax_train, ev.train_acc if train_acc else ev.train_loss),
                                   (ax_test, ev.test_acc if test_acc else ev.test_loss)):
                    values = _finite(values)
                    ax.plot(ev.epoch, values, marker=marker, markersize=5, **style)
                    eval_values[ax].append(values)
            handles.append(Line2D([], [], linewidth=1.5, label=_run_label(run, list(by_model)),
                                  marker=_MARKERS[index % len(_MARKERS)], markersize=5, **style))
    scale = _set_yscale(ax_loss, losses, yscale)
    ax_loss.set_title("Training-batch loss of every run, per step", fontsize=10)
    ax_loss.set_xlabel("training step")
    _ylabel(ax_loss, "training-batch loss L(w_t; B_t)", scale)
    if train_acc:
        ax_train.set_title("Training accuracy per epoch\n(on the epoch's training batches, "
                           "train mode, as trained)", fontsize=10)
        ax_train.set_ylabel("training accuracy (fraction correct)")
    else:
        ax_train.set_title("Training loss per evaluation (the task has no accuracy)\n"
                           "mean training-batch loss since the previous evaluation",
                           fontsize=10)
        _ylabel(ax_train, "mean training-batch loss",
                _set_yscale(ax_train, eval_values[ax_train], yscale))
    if test_acc:
        ax_test.set_title("Held-out accuracy per epoch\n(held-out images, eval mode)",
                          fontsize=10)
        ax_test.set_ylabel("held-out accuracy (fraction correct)")
    else:
        ax_test.set_title("Held-out loss per evaluation (the task has no accuracy)\n"
                          "loss on held-out data, eval mode", fontsize=10)
        _ylabel(ax_test, "held-out loss", _set_yscale(ax_test, eval_values[ax_test], yscale))
    xlabel = "epoch " + _eval_schedule(all_runs)
    for ax in (ax_train, ax_test):
        ax.set_xlabel(xlabel)
        if any_eval:
            ax.set_xlim(left=0)
        else:
            _empty(ax, "no evaluation recorded\n(every run stopped before its first evaluation)")
        _readable_log_ticks(ax)
    for ax in (ax_loss, ax_train, ax_test):
        ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax_loss)
    _legend(fig, ax_loss, handles + _end_handles(div, inc), own_figure=axes is None)
    return fig


def _eval_schedule(runs: Sequence[LoadedRun]) -> str:
    """When the runs were evaluated, from their records' `eval_every`, for an axis label."""
    every = {run.record.config.get("eval_every") for run in runs}
    if every == {None}:
        return "(evaluated at each epoch's end and at the last step)"
    if len(every) == 1:
        return f"(evaluated every {every.pop()} steps and at the last step)"
    return "(at each evaluation; the records evaluate on different schedules)"


# ---------------------------------------------------------------------------------------------
# (e) Internal covariate shift and (f) activation distributions


def _figure_and_grid(axes: Sequence[Axes] | np.ndarray | None, rows: int, cols: int,
                     figsize: tuple[float, float]) -> tuple[Figure, list[list[Axes]]]:
    """A rows × cols grid of Axes: new, or `axes` given as a [rows, cols] array or a flat
    sequence in row-major order."""
    if axes is None:
        fig = Figure(figsize=figsize, layout="constrained")
        grid = fig.subplots(rows, cols, squeeze=False)
        return fig, [list(row) for row in grid]
    flat = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) != rows * cols or not all(isinstance(a, Axes) for a in flat):
        raise ValueError(f"this figure needs {rows} x {cols} = {rows * cols} Axes, "
                         f"got {len(flat)}")
    return flat[0].figure, [flat[r * cols:(r + 1) * cols] for r in range(rows)]


def _curve_label(curve: RunCurve, models: Sequence[str], *, with_lr: bool) -> str:
    label = model_name(curve.model, models) + (f", lr {curve.lr:g}" if with_lr else "")
    if curve.diverged_step is not None:
        return label + f" (diverged at step {curve.diverged_step})"
    if curve.incomplete:
        return label + f" (incomplete: {curve.status})"
    return label


def _lr_text(lrs: Sequence[float]) -> str:
    """', lr 0.001' when every run has the same lr (the legend then leaves it out)."""
    distinct = sorted(set(lrs))
    return f", lr {distinct[0]:g}" if len(distinct) == 1 else ""


def _spacing_text(steps: Sequence[np.ndarray], what: str) -> str:
    """' (probed every 5 steps)', ' (probed every step)', or ' (probed steps)' if irregular."""
    gaps = {int(g) for s in steps for g in np.diff(s)}
    if len(gaps) != 1:
        return f" ({what} steps)"
    gap = gaps.pop()
    return f" ({what} every step)" if gap == 1 else f" ({what} every {gap} steps)"


def _plain_numbers(ax: Axes) -> None:
    """No offset (cosines near 1 read 0.99998, not 1e-5 + 9.9999e-1)."""
    formatter = ax.yaxis.get_major_formatter()
    if hasattr(formatter, "set_useOffset"):
        formatter.set_useOffset(False)


_MIN_COSINE_SPAN = 1e-5


def plot_ics(data: Sequence[RunICS], *, axes: Sequence[Axes] | np.ndarray | None = None,
             colors: Mapping[str, str] | None = None, yscale: YScale = "auto") -> Figure:
    """The paper's internal covariate shift (Definition 2.1; `report.ics_data`): one column
    per measured layer, ‖G − G'‖₂ in the top row and cos∠(G, G') in the bottom row, one line
    per run (one color per model; shade and line style tell a model's lrs apart). `axes`:
    2 × L Axes (L layers, row-major). `yscale` applies to the distance row; cosines are linear."""
    if not data:
        raise ValueError("no run with internal covariate shift to plot")
    layers = ics_layers(data)
    n = len(layers)
    fig, (top, bottom) = _figure_and_grid(axes, 2, n, (max(9.0, 4.6 * n + 1.0), 8.8))
    models = list(dict.fromkeys(d.model for d in data))
    colors = _colors_for(models, colors)
    handles: list = []
    div = inc = False
    distances: dict[str, list] = {layer: [] for layer in layers}
    cosines: dict[str, list] = {layer: [] for layer in layers}
    steps = []
    for model in models:
        runs = [d for d in data if d.model == model]
        for index, ics in enumerate(runs):
            style = _run_style(index, len(runs), colors[model])
            marker = _MARKERS[index % len(_MARKERS)]
            for col, layer in enumerate(layers):
                if layer not in ics.layers:
                    continue
                for ax, curve in ((top[col], ics.distance[layer]),
                                  (bottom[col], ics.cosine[layer])):
                    values = _finite(curve.values)
                    if ax is bottom[col]:
                        # float32 rounding can put a cosine a hair above 1
                        values = np.clip(values, -1.0, 1.0)
                    ax.plot(curve.step, values, marker=_marker_for(len(curve.step), True, marker),
                            markersize=4, linewidth=1.3, **style)
                    d, i = _mark_curve_ends(ax, [curve], style["color"])
                    div, inc = div or d, inc or i
                distances[layer].append(ics.distance[layer].values)
                cosines[layer].append(ics.cosine[layer].values)
                steps.append(ics.distance[layer].step)
            first = next(iter(ics.distance.values()))
            handles.append(Line2D([], [], marker=marker, markersize=5, linewidth=1.5,
                                  label=_curve_label(first, models, with_lr=len(runs) > 1),
                                  **style))
    xlabel = "training step t" + _spacing_text(steps, "measured")
    # One scale for the whole distance row, so that the layers compare at a glance.
    scale = _set_yscale(top[0], [v for vs in distances.values() for v in vs], yscale)
    for col, layer in enumerate(layers):
        ax_d, ax_c = top[col], bottom[col]
        ax_d.set_yscale(scale)
        ax_d.set_title(f"layer {layer}", fontsize=10)
        _ylabel(ax_d, "‖G − G′‖₂ (0: no shift)", scale)
        ax_c.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
        ax_c.set_ylabel("cos∠(G, G′) (1: same direction)")
        # Show at least [1 − 1e-5, 1]: cosines are recorded in float32 (steps of ~6e-8 near 1),
        # and a narrower axis would magnify rounding into structure.
        low, high = ax_c.get_ylim()
        ax_c.set_ylim(min(low, 1 - _MIN_COSINE_SPAN), max(high, 1 + _MIN_COSINE_SPAN / 20))
        _plain_numbers(ax_c)
        for ax, values in ((ax_d, distances[layer]), (ax_c, cosines[layer])):
            ax.set_xlabel(xlabel)
            ax.grid(True, alpha=0.3)
            if not _has_finite(values):
                _empty(ax, "no finite value at any measured step")
        _readable_log_ticks(ax_d)
    _legend(fig, top[0], handles + _end_handles(div, inc), own_figure=axes is None)
    fig.suptitle("Internal covariate shift (paper's Definition 2.1)"
                 f"{_lr_text([d.lr for d in data])}\n"
                 "G, G′: gradient of layer i before vs after the preceding layers' update of "
                 "step t,\nsame batch B_t (layer i and the layers after it still at w_t)",
                 fontsize=11)
    return fig


def plot_activations(bands: Mapping[str, Sequence[ActivationBands]], *,
                     axes: Sequence[Axes] | np.ndarray | None = None,
                     colors: Mapping[str, str] | None = None) -> Figure:
    """How a layer's output distribution moves during training (the paper's Figures 2 and 7;
    `report.activation_data`): one column per run, two rows per layer: the distribution across
    channels of the per-channel mean (upper row) and of the per-channel standard deviation
    sqrt(var) (lower row) at each recorded step: a shaded percentile band, the median line, and
    a few single channels as thin lines. Panels of a row share their y range, so runs compare
    directly. `axes`: (2 × layers) × runs Axes, row-major."""
    if not bands or not any(bands.values()):
        raise ValueError("no run with recorded activations to plot")
    layers = [layer for layer, items in bands.items() if items]
    runs: dict[str, ActivationBands] = {}  # run id -> a representative (columns, in order)
    for layer in layers:
        for b in bands[layer]:
            runs.setdefault(b.run_id, b)
    run_ids = list(runs)
    models = list(dict.fromkeys(b.model for b in runs.values()))
    colors = _colors_for(models, colors)
    lrs_per_model = {m: {b.lr for b in runs.values() if b.model == m} for m in models}
    n_rows, n_cols = 2 * len(layers), len(run_ids)
    fig, grid = _figure_and_grid(axes, n_rows, n_cols,
                                 (max(10.0, 4.3 * n_cols + 1.2), 2.7 * n_rows + 2.6))
    div = inc = False
    percentiles: set = set()
    channels: set = set()
    steps = []
    for li, layer in enumerate(layers):
        by_run = {b.run_id: b for b in bands[layer]}
        for col, run_id in enumerate(run_ids):
            ax_m, ax_s = grid[2 * li][col], grid[2 * li + 1][col]
            b = by_run.get(run_id)
            if b is None:
                for ax in (ax_m, ax_s):
                    _empty(ax, f"{layer} not recorded in this run")
                continue
            color = colors[b.model]
            percentiles.add(b.percentiles)
            channels.add(b.channels)
            steps.append(b.step)
            for ax, low, median, high, traces in (
                    (ax_m, b.mean_low, b.mean_median, b.mean_high, b.mean_traces),
                    (ax_s, b.std_low, b.std_median, b.std_high, b.std_traces)):
                ax.fill_between(b.step, _finite(low), _finite(high), color=color, alpha=0.25,
                                linewidth=0)
                if traces.shape[1]:
                    ax.plot(b.step, _finite(traces), color=color, linewidth=0.7, alpha=0.75,
                            linestyle="--")
                ax.plot(b.step, _finite(median), color=color, linewidth=1.8,
                        marker="o" if len(b.step) < 3 else None, markersize=4)
                d, i = _mark_curve_ends(ax, [replace(b.curve, values=_finite(median))], color)
                div, inc = div or d, inc or i
            ax_m.set_title(_curve_label(b.curve, models,
                                        with_lr=len(lrs_per_model[b.model]) > 1), fontsize=10)
    xlabel = "training step t" + _spacing_text(steps, "recorded")
    for li, layer in enumerate(layers):
        n_channels = {b.n_channels for b in bands[layer]}
        name = f"{layer} ({n_channels.pop()} channels)" if len(n_channels) == 1 else layer
        # Standard deviations of models with and without normalization can differ by orders of
        # magnitude (1 after BN, 0.01 without): on one linear axis the small ones would lie
        # flat on zero, so the std row goes log (relative changes) when they span > 10x.
        stds = [v for b in bands[layer] for v in (b.std_low, b.std_high, b.std_traces)]
        std_scale = "log" if _span(stds) > _ACTIVATION_LOG_RANGE else "linear"
        for row, what in ((2 * li, "channel mean"), (2 * li + 1, "channel std √var")):
            axes_row = grid[row]
            if row % 2:
                for ax in axes_row:
                    ax.set_yscale(std_scale)
            _share_ylim(axes_row)
            axes_row[0].set_ylabel(f"{name}\n{what}" + (" (log scale)" if row % 2 and
                                                        std_scale == "log" else ""),
                                   fontsize=9)
            for ax in axes_row:
                _readable_log_ticks(ax)
                ax.set_xlabel(xlabel, fontsize=9)
                ax.grid(True, alpha=0.3)
    low_q, high_q = sorted(percentiles)[0] if len(percentiles) == 1 else (None, None)
    band = (f"{low_q:g}th to {high_q:g}th percentile" if low_q is not None
            else "percentile band")
    chans = sorted(channels)[-1] if channels else ()
    handles: list = [Patch(facecolor="0.75", edgecolor="none",
                           label=f"shaded: {band} over the layer's channels"),
                     Line2D([], [], color="0.25", linewidth=1.8, label="thick line: median over "
                            "channels")]
    if chans:
        handles.append(Line2D([], [], color="0.25", linewidth=0.7, linestyle="--",
                              label=f"thin dashed: single channels ({_channels_text(chans)})"))
    _legend(fig, grid[0][0], handles + _end_handles(div, inc), own_figure=axes is None)
    plain = [m for m in models if not any(m.endswith(suffix) for suffix in _NORM_SUFFIXES)]
    identity = ""
    if plain and any(".norm" in layer for layer in layers):
        identity = (f"\n{', '.join(plain)} {'has' if len(plain) == 1 else 'have'} no "
                    "normalization: a norm layer is an identity there (its output is the "
                    "preceding layer's)")
    fig.suptitle("Activation distributions during training (as in the paper's Figures 2 and 7)"
                 f"{_lr_text([b.lr for b in runs.values()])}\n"
                 "per channel c of the layer's output on the step's training batch: its mean "
                 "and standard deviation\nover the batch (and positions); panels of a row share "
                 "their y range" + identity, fontsize=11)
    return fig


_ACTIVATION_LOG_RANGE = 10.0


def _span(values: Sequence[np.ndarray]) -> float:
    """max / min of the finite positive values (1 if there are none)."""
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
    flat = flat[np.isfinite(flat) & (flat > 0)]
    return float(flat.max() / flat.min()) if flat.size else 1.0


def _channels_text(channels: Sequence[int]) -> str:
    if len(channels) == 1:
        return f"channel {channels[0]}"
    return "channels " + ", ".join(str(c) for c in channels)


def _share_ylim(axes: Sequence[Axes]) -> None:
    """One y range for every panel of a row (the union of their automatic ranges)."""
    limits = [ax.get_ylim() for ax in axes if ax.lines or ax.collections]
    if limits:
        low, high = min(lo for lo, _ in limits), max(hi for _, hi in limits)
        for ax in axes:
            ax.set_ylim(low, high)


# ---------------------------------------------------------------------------------------------
# Everything the runs allow


def all_figures(runs: Sequence[LoadedRun], *, smooth: int | None = None) -> dict[str, Figure]:
    """Every figure the runs allow, by file stem: "loss_landscape", "paper_lr<lr>" (one per
    probed learning rate), "gradient_change", "trajectory_beta", "training_curves", "ics" (if
    a run measured internal covariate shift), "activations" (if a run recorded activations).
    `smooth` (moving-average window) applies to the loss landscape and trajectory figures.
    Runs without a single recorded step are left out."""
    runs = [r for r in runs if r.last_step is not None]
    if not runs:
        raise RecordError("nothing to plot: no run has a recorded step")
    by_model = group_by_model(runs)
    colors = model_colors(list(by_model))
    figures: dict[str, Figure] = {}
    figures["loss_landscape"] = plot_loss_landscape(loss_envelopes(by_model, smooth=smooth),
                                                    colors=colors)
    for data in paper_data(by_model):
        figures[f"paper_lr{data.lr:g}"] = plot_paper(data, colors=colors)
    parameter = trajectory_source(runs)
    whole = full_batch(runs)
    change = gradient_change_envelopes(by_model, parameter=parameter, smooth=smooth)
    if change:
        figures["gradient_change"] = plot_gradient_change(change, colors=colors,
                                                          full_batch=whole)
    beta = trajectory_beta_envelopes(by_model, parameter=parameter, smooth=smooth)
    if beta:
        figures["trajectory_beta"] = plot_trajectory_beta(beta, colors=colors,
                                                          full_batch=whole)
    figures["training_curves"] = plot_training_curves(runs, colors=colors)
    ics = ics_data(by_model)
    if ics:
        figures["ics"] = plot_ics(ics, colors=colors)
    activations = activation_data(by_model)
    if activations:
        figures["activations"] = plot_activations(activations, colors=colors)
    return figures
