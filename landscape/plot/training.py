"""(d) Training curves of every run: training-batch loss per step, and accuracy (or, for a
task without one, loss) per evaluation on the training batches and on held-out data."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from landscape.config.axes import levels_text
from landscape.plot._style import literal_text
from landscape.plot._style import (
    _MARKERS,
    YScale,
    _colors_for,
    _empty,
    _end_handles,
    _figure_and_axes,
    _finite,
    _has_finite,
    _legend,
    _mark_curve_ends,
    _readable_log_ticks,
    _run_style,
    _set_yscale,
    _ylabel,
    model_name,
)
from landscape.report import LoadedRun, RunCurve, group_by_model
from landscape.report.spans import run_name


def _run_label(run: LoadedRun, models: Sequence[str], seeds: Sequence[int]) -> str:
    # The seed is named where the runs have several: two seeds at one lr are two lines; and
    # a run's levels where it has factors (batch_size=16 and 32 are two lines as well).
    label = f"{model_name(run.model, models)}, {run_name(run.lr, run.seed, seeds=seeds)}"
    if run.factors:
        label += f", {levels_text(run.factors)}"
    if run.diverged_step is not None:
        return label + f" (diverged at step {run.diverged_step})"
    if run.incomplete:
        return label + f" (incomplete: {run.info.status})"
    return label


@literal_text
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
    seeds = [r.seed for r in all_runs]
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
                             run.incomplete, steps.step, loss, run.seed)
            d, i = _mark_curve_ends(ax_loss, [curve], style["color"])
            div, inc = div or d, inc or i
            if len(ev.step):
                marker = _MARKERS[index % len(_MARKERS)]
                for ax, values in ((ax_train, ev.train_acc if train_acc else ev.train_loss),
                                   (ax_test, ev.test_acc if test_acc else ev.test_loss)):
                    values = _finite(values)
                    ax.plot(ev.epoch, values, marker=marker, markersize=5, **style)
                    eval_values[ax].append(values)
            handles.append(Line2D([], [], linewidth=1.5, label=_run_label(run, list(by_model), seeds),
                                  marker=_MARKERS[index % len(_MARKERS)], markersize=5, **style))
    scale = _set_yscale(ax_loss, losses, yscale)
    ax_loss.set_title("Training-batch loss of every run, per step", fontsize=10)
    ax_loss.set_xlabel("training step")
    _ylabel(ax_loss, "training-batch loss L(w_t; B_t)", scale)
    _label_eval_panels(ax_train, ax_test, train_acc, test_acc, eval_values, yscale)
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


def _label_eval_panels(ax_train: Axes, ax_test: Axes, train_acc: bool, test_acc: bool,
                       eval_values: Mapping[Axes, list], yscale: YScale) -> None:
    """Titles and y labels of the two evaluation panels: accuracy, or (a task without one)
    loss with its own y scale."""
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


def _eval_schedule(runs: Sequence[LoadedRun]) -> str:
    """When the runs were evaluated, from their records' `eval_every`, for an axis label."""
    every = {run.record.config.get("eval_every") for run in runs}
    if every == {None}:
        return "(evaluated at each epoch's end and at the last step)"
    if len(every) == 1:
        return f"(evaluated every {every.pop()} steps and at the last step)"
    return "(at each evaluation; the records evaluate on different schedules)"
