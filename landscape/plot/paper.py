"""(b) The paper's three panels at one learning rate: loss band, gradient-predictiveness band
and effective β per probed step."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.colors as mcolors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from landscape.plot._style import literal_text
from landscape.plot._style import (
    YScale,
    _colors_for,
    _empty,
    _end_handles,
    _figure_and_axes,
    _finite,
    _has_finite,
    _legend,
    _mark_curve_ends,
    _marker_for,
    _readable_log_ticks,
    _set_yscale,
    _shaded,
    _spacing_text,
    _ylabel,
    model_name,
)
from landscape.report import PaperData, RunCurve


@literal_text
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
        if model in data.beta_range:  # several seeds: β's range over them, dotted lines
            # (shading means one thing in this figure: the band over the step lengths)
            low, high = data.beta_range[model]
            for edge in (low, high):
                ax_beta.plot(bands.step, _finite(edge), color=color, linestyle=":",
                             linewidth=1.0)
        pred_values += [bands.grad_diff_low, bands.grad_diff_high]
        beta_values.append(bands.beta)
        label = model_name(model, list(data.bands))
        if run.diverged_step is not None or run.incomplete:
            for ax, ys in ((ax_loss, bands.loss_high), (ax_pred, bands.grad_diff_high),
                           (ax_beta, bands.beta)):
                curve = RunCurve(run.run_id, model, run.lr, run.info.status, run.diverged_step,
                                 run.incomplete, bands.step, np.asarray(ys, dtype=np.float64),
                                 run.seed)
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

    point, over, dist = _notation(data.direction)
    ax_loss.set_title(f"(1) loss landscape: L({point}; B_t)\nshaded: min to max over {over}",
                      fontsize=10)
    _ylabel(ax_loss, "training-batch loss", "log")
    ax_pred.set_title(f"(2) gradient predictiveness: ‖∇L(w_t) − ∇L({point})‖₂\n"
                      f"shaded: min to max over {over}", fontsize=10)
    _ylabel(ax_pred, "ℓ2 distance between the two gradients", pred_scale)
    ax_beta.set_title("(3) effective β-smoothness:\n"
                      f"max over {over} of ‖∇L(w_t) − ∇L({point})‖₂ / {dist}"
                      + _seeds_note(data), fontsize=10)
    _ylabel(ax_beta, "β (gradient change per unit distance)", beta_scale)
    xlabel = "training step t" + _probe_spacing(data)
    for ax in (ax_loss, ax_pred, ax_beta):
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    if data.beta_range:
        handles.append(Line2D([], [], color="0.35", linestyle=":", linewidth=1.0,
                              label="(3) dotted: min and max of β over the seeds"))
    _legend(fig, ax_loss, handles + _end_handles(div, inc), own_figure=axes is None)
    along = ("along the update d_t = w_{t+1} − w_t the optimizer took" if data.direction ==
             "update" else "along the gradient")
    seeds = max(data.n_seeds.values(), default=1)
    fig.suptitle(f"Paper's measurement (Santurkar et al. 2018): probe {along}, "
                 f"lr = {data.lr:g}, {_range_text(data)}\n"
                 "at each probed step t the batch B_t is fixed and the weights are moved to "
                 f"{point} (an evaluation, not a training step)"
                 + (f"\neach band's edges and β: the median over {seeds} seeds" if seeds > 1
                    else ""), fontsize=11)
    return fig


def _notation(direction: str) -> tuple[str, str, str]:
    """(the probed point, what the band is over, the distance moved) for the titles."""
    if direction == "update":
        return "w_t + c·d_t", "c", "‖c·d_t‖₂"
    return "w_t − η g_t", "η", "‖η g_t‖₂"


def _range_text(data: PaperData) -> str:
    if data.direction == "update":  # the grid is multiples c of the update
        return data.eta_description().replace("η ∈", "c ∈").replace("]×lr", "]")
    return data.eta_description()


def _seeds_note(data: PaperData) -> str:
    return "\nline: median over seeds; dotted: min and max over seeds" if data.beta_range else ""


def _probe_spacing(data: PaperData) -> str:
    return _spacing_text([b.step for b in data.bands.values()], "probed")
