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
    LoadedRun,
    ModelSeries,
    PaperData,
    RunCurve,
    gradient_change_envelopes,
    group_by_model,
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


def model_name(model: str, models: Sequence[str] = ()) -> str:
    """The model's name for legends: 'vgg_bn (BatchNorm)', and 'vgg (no BatchNorm)' when its
    BN variant is among `models`."""
    if model.endswith("_bn"):
        return f"{model} (BatchNorm)"
    if f"{model}_bn" in models:
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
    return f"{model_name(series.model, models)}, {_lrs_text(series.lrs)}" + \
        (f", {', '.join(extra)}" if extra else "")


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


def _shaded(ax: Axes, step: np.ndarray, low: np.ndarray, high: np.ndarray, color: str,
            *, markers: bool = False) -> None:
    """Shade between low and high and draw both edges; a point with no finite neighbour (which
    a shaded polygon cannot show) gets a vertical bar from low to high."""
    low, high = _finite(low), _finite(high)
    ax.fill_between(step, low, high, color=color, alpha=0.25, linewidth=0)
    style = dict(color=color, linewidth=1.0, marker="o" if markers or len(step) < 3 else None,
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
        ax.yaxis.set_minor_formatter(fmt)


def _legend(fig: Figure, ax: Axes, handles: list, *, own_figure: bool) -> None:
    """Below the panels when this module made the figure (nothing to hide), else in `ax`."""
    if own_figure:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)),
                   fontsize=9)
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
    colors = _colors_for(list(envelopes), colors)
    handles: list = []
    div = inc = False
    values = []
    for model, series in envelopes.items():
        env, color = series.envelope, colors[model]
        _shaded(ax, env.step, env.low, env.high, color)
        values += [env.low, env.high]
        d, i = _mark_curve_ends(ax, series.curves, color)
        div, inc = div or d, inc or i
        handles.append(Patch(facecolor=mcolors.to_rgba(color, 0.25), edgecolor=color,
                             label=_model_label(series, list(envelopes))))
    scale = _set_yscale(ax, values, yscale)
    smooth = next(iter(envelopes.values())).smooth
    ax.set_xlabel("training step")
    _ylabel(ax, "training-batch loss L(w_t; B_t)", scale)
    ax.set_title("Loss landscape (course version): training-batch loss across learning rates\n"
                 f"shaded: min to max over each model's runs (one per lr); "
                 f"{_smooth_text(smooth)}", fontsize=10)
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
        ax_beta.plot(bands.step, _finite(bands.beta), color=color, marker="o", markersize=4)
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
    steps = [b.step for b in data.bands.values()]
    gaps = {int(g) for s in steps for g in np.diff(s)}
    return f" (probed every {gaps.pop()} steps)" if len(gaps) == 1 else " (probed steps)"


# ---------------------------------------------------------------------------------------------
# (c) The course's trajectory quantities


_TRAJECTORY_NOTE = "course quantity: consecutive training steps on different batches"


def _source_text(series: Mapping[str, ModelSeries]) -> str:
    source = next(iter(series.values())).source
    return "all parameters" if source == ALL_PARAMETERS else f"parameter {source}"


def plot_gradient_change(series: Mapping[str, ModelSeries], *, ax: Axes | None = None,
                         colors: Mapping[str, str] | None = None,
                         yscale: YScale = "auto") -> Figure:
    """Shaded min–max across learning rates of ‖g_{t+1} − g_t‖₂ per model
    (`report.gradient_change_envelopes`)."""
    if not series:
        raise ValueError("no model with two consecutive recorded steps to plot")
    fig, (ax,) = _figure_and_axes(ax, 1, (9, 5.5))
    colors = _colors_for(list(series), colors)
    handles, values = [], []
    div = inc = False
    for model, s in series.items():
        env, color = s.envelope, colors[model]
        _shaded(ax, env.step, env.low, env.high, color)
        values += [env.low, env.high]
        d, i = _mark_curve_ends(ax, s.curves, color)
        div, inc = div or d, inc or i
        handles.append(Patch(facecolor=mcolors.to_rgba(color, 0.25), edgecolor=color,
                             label=_model_label(s, list(series))))
    scale = _set_yscale(ax, values, yscale)
    smooth = next(iter(series.values())).smooth
    ax.set_xlabel("training step t")
    _ylabel(ax, r"gradient change $\|g_{t+1} - g_t\|_2$", scale)
    ax.set_title(f"Gradient change between consecutive steps, {_source_text(series)}\n"
                 f"({_TRAJECTORY_NOTE}, not the paper's gradient predictiveness)\n"
                 f"shaded: min to max over each model's runs (one per lr); {_smooth_text(smooth)}",
                 fontsize=10)
    ax.legend(handles=handles + _end_handles(div, inc), loc="best", fontsize=9)
    ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax)
    return fig


def plot_trajectory_beta(series: Mapping[str, ModelSeries], *, ax: Axes | None = None,
                         colors: Mapping[str, str] | None = None,
                         yscale: YScale = "auto") -> Figure:
    """Max across learning rates of ‖g_{t+1} − g_t‖₂ / ‖w_{t+1} − w_t‖₂ per model
    (`report.trajectory_beta_envelopes`, the envelope's high edge)."""
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
                 f"({_TRAJECTORY_NOTE}, not the paper's effective β)\n"
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
    t = 0.0 if n == 1 else index / (n - 1)  # 0 (smallest lr) .. 1 (largest lr)
    mix = -0.35 + 0.7 * t  # darker for small lr, lighter for large lr
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
    and on held-out data (three panels)."""
    by_model = group_by_model(runs)
    if not by_model:
        raise ValueError("no run to plot")
    fig, (ax_loss, ax_train, ax_test) = _figure_and_axes(axes, 3, (16, 5.6))
    colors = _colors_for(list(by_model), colors)
    handles, losses = [], []
    div = inc = False
    any_eval = False
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
                any_eval = True
                marker = _MARKERS[index % len(_MARKERS)]
                ax_train.plot(ev.epoch, ev.train_acc, marker=marker, markersize=5, **style)
                ax_test.plot(ev.epoch, ev.test_acc, marker=marker, markersize=5, **style)
            handles.append(Line2D([], [], linewidth=1.5, label=_run_label(run, list(by_model)),
                                  marker=_MARKERS[index % len(_MARKERS)], markersize=5, **style))
    scale = _set_yscale(ax_loss, losses, yscale)
    ax_loss.set_title("Training-batch loss of every run, per step", fontsize=10)
    ax_loss.set_xlabel("training step")
    _ylabel(ax_loss, "training-batch loss L(w_t; B_t)", scale)
    ax_train.set_title("Training accuracy per epoch\n(on the epoch's training batches, "
                       "train mode, as trained)", fontsize=10)
    ax_test.set_title("Held-out accuracy per epoch\n(held-out images, eval mode)", fontsize=10)
    for ax, what in ((ax_train, "training accuracy"), (ax_test, "held-out accuracy")):
        ax.set_xlabel("epoch (evaluated at each epoch's end and at the last step)")
        ax.set_ylabel(f"{what} (fraction correct)")
        if any_eval:
            ax.set_xlim(left=0)
        else:
            _empty(ax, "no evaluation recorded\n(every run stopped before its first evaluation)")
    for ax in (ax_loss, ax_train, ax_test):
        ax.grid(True, alpha=0.3)
    _readable_log_ticks(ax_loss)
    _legend(fig, ax_loss, handles + _end_handles(div, inc), own_figure=axes is None)
    return fig


# ---------------------------------------------------------------------------------------------
# Everything the runs allow


def all_figures(runs: Sequence[LoadedRun], *, smooth: int | None = None) -> dict[str, Figure]:
    """Every figure the runs allow, by file stem: "loss_landscape", "paper_lr<lr>" (one per
    probed learning rate), "gradient_change", "trajectory_beta", "training_curves".
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
    change = gradient_change_envelopes(by_model, parameter=parameter, smooth=smooth)
    if change:
        figures["gradient_change"] = plot_gradient_change(change, colors=colors)
    beta = trajectory_beta_envelopes(by_model, parameter=parameter, smooth=smooth)
    if beta:
        figures["trajectory_beta"] = plot_trajectory_beta(beta, colors=colors)
    figures["training_curves"] = plot_training_curves(runs, colors=colors)
    return figures
