"""Per-layer figures: (e) the paper's internal covariate shift (Definition 2.1) per measured
layer, and (f) how a layer's output distribution across channels moves during training."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from landscape.models import MODELS
from landscape.models.norms import NORM_KINDS
from landscape.plot._style import literal_text
from landscape.plot._style import (
    _MARKERS,
    YScale,
    _colors_for,
    _empty,
    _end_handles,
    _figure_and_grid,
    _finite,
    _has_finite,
    _legend,
    _mark_curve_ends,
    _marker_for,
    _readable_log_ticks,
    _run_style,
    _set_yscale,
    _spacing_text,
    _ylabel,
    model_name,
)
from landscape.report import ActivationBands, RunCurve, RunICS, ics_layers
from landscape.report.spans import run_name


def first_curve(ics: RunICS) -> RunCurve:
    return next(iter(ics.distance.values()))


def _curve_label(curve: RunCurve, models: Sequence[str], *, with_lr: bool,
                 seeds: Sequence[int] = ()) -> str:
    """The run's label; `seeds`: those of the model's runs, named where there are several (two
    seeds at one lr would otherwise read as one run twice)."""
    label = model_name(curve.model, models)
    if len(set(seeds)) > 1:
        label += f", {run_name(curve.lr, curve.seed, seeds=seeds)}"
    elif with_lr:
        label += f", lr {curve.lr:g}"
    if curve.diverged_step is not None:
        return label + f" (diverged at step {curve.diverged_step})"
    if curve.incomplete:
        return label + f" (incomplete: {curve.status})"
    return label


def _shared_text(curves: Sequence[RunCurve]) -> str:
    """', lr 0.001, seed 0' for what every run shares (the labels then leave it out, and a
    reader still knows which runs these are)."""
    lrs, seeds = sorted({c.lr for c in curves}), sorted({c.seed for c in curves})
    text = f", lr {lrs[0]:g}" if len(lrs) == 1 else ""
    return text + (f", seed {seeds[0]}" if len(seeds) == 1 else "")


def _plain_numbers(ax: Axes) -> None:
    """No offset (cosines near 1 read 0.99998, not 1e-5 + 9.9999e-1)."""
    formatter = ax.yaxis.get_major_formatter()
    if hasattr(formatter, "set_useOffset"):
        formatter.set_useOffset(False)


_MIN_COSINE_SPAN = 1e-5


@literal_text
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
                                  label=_curve_label(first, models, with_lr=len(runs) > 1,
                                                     seeds=[first_curve(r).seed for r in runs]),
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
    fig.suptitle("Internal covariate shift (paper's Definition 2.1), one line per run"
                 f"{_shared_text([first_curve(d) for d in data])}\n"
                 "G, G′: gradient of layer i before vs after the preceding layers' update of "
                 "step t,\nsame batch B_t (layer i and the layers after it still at w_t)",
                 fontsize=11)
    return fig


@literal_text
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
    models = list(dict.fromkeys(b.model for b in runs.values()))
    colors = _colors_for(models, colors)
    lrs_per_model = {m: {b.lr for b in runs.values() if b.model == m} for m in models}
    seeds_per_model = {m: [b.curve.seed for b in runs.values() if b.model == m] for m in models}
    n_rows, n_cols = 2 * len(layers), len(runs)
    fig, grid = _figure_and_grid(axes, n_rows, n_cols,
                                 (max(10.0, 4.3 * n_cols + 1.2), 2.7 * n_rows + 2.6))
    div = inc = False
    drawn: list[ActivationBands] = []
    for li, layer in enumerate(layers):
        by_run = {b.run_id: b for b in bands[layer]}
        for col, run_id in enumerate(runs):
            ax_m, ax_s = grid[2 * li][col], grid[2 * li + 1][col]
            b = by_run.get(run_id)
            if b is None:
                for ax in (ax_m, ax_s):
                    _empty(ax, f"{layer} not recorded in this run")
                continue
            drawn.append(b)
            d, i = _draw_activation_run(ax_m, ax_s, b, colors[b.model])
            div, inc = div or d, inc or i
            ax_m.set_title(_curve_label(b.curve, models,
                                        with_lr=len(lrs_per_model[b.model]) > 1,
                                        seeds=seeds_per_model[b.model]), fontsize=10)
    xlabel = "training step t" + _spacing_text([b.step for b in drawn], "recorded")
    for li, layer in enumerate(layers):
        _label_activation_rows(grid[2 * li], grid[2 * li + 1], layer, bands[layer], xlabel)
    handles = _activation_handles({b.percentiles for b in drawn}, {b.channels for b in drawn})
    _legend(fig, grid[0][0], handles + _end_handles(div, inc), own_figure=axes is None)
    fig.suptitle(_activation_title(models, layers, [b.curve for b in runs.values()]),
                 fontsize=11)
    return fig


def _draw_activation_run(ax_m: Axes, ax_s: Axes, b: ActivationBands,
                         color: str) -> tuple[bool, bool]:
    """One run's mean (ax_m) and std (ax_s) panels of one layer: percentile band, single
    channels, median, end mark; returns (diverged, incomplete) as `_mark_curve_ends`."""
    div = inc = False
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
    return div, inc


def _label_activation_rows(mean_row: Sequence[Axes], std_row: Sequence[Axes], layer: str,
                           layer_bands: Sequence[ActivationBands], xlabel: str) -> None:
    """A layer's two rows: y scale and one shared y range per row, labels, grid."""
    n_channels = {b.n_channels for b in layer_bands}
    name = f"{layer} ({n_channels.pop()} channels)" if len(n_channels) == 1 else layer
    # Standard deviations of models with and without normalization can differ by orders of
    # magnitude (1 after BN, 0.01 without): on one linear axis the small ones would lie
    # flat on zero, so the std row goes log (relative changes) when they span > 10x.
    stds = [v for b in layer_bands for v in (b.std_low, b.std_high, b.std_traces)]
    std_scale = "log" if _span(stds) > _ACTIVATION_LOG_RANGE else "linear"
    for axes_row, is_std, what in ((mean_row, False, "channel mean"),
                                   (std_row, True, "channel std √var")):
        if is_std:
            for ax in axes_row:
                ax.set_yscale(std_scale)
        _share_ylim(axes_row)
        axes_row[0].set_ylabel(f"{name}\n{what}" + (" (log scale)" if is_std and
                                                    std_scale == "log" else ""),
                               fontsize=9)
        for ax in axes_row:
            _readable_log_ticks(ax)
            ax.set_xlabel(xlabel, fontsize=9)
            ax.grid(True, alpha=0.3)


def _activation_handles(percentiles: set, channels: set) -> list:
    """Legend entries of the band, the median and the single channels (grey: every model)."""
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
    return handles


def _activation_title(models: Sequence[str], layers: Sequence[str],
                      curves: Sequence[RunCurve]) -> str:
    """The figure's title; it says when a model without normalization shows a norm layer (an
    identity there)."""
    plain = [m for m in models if _unnormalized(m)]
    identity = ""
    if plain and any(".norm" in layer for layer in layers):
        identity = (f"\n{', '.join(plain)} {'has' if len(plain) == 1 else 'have'} no "
                    "normalization: a norm layer is an identity there (its output is the "
                    "preceding layer's)")
    return ("Activation distributions during training (as in the paper's Figures 2 and 7), "
            f"one column per run{_shared_text(curves)}\n"
            "per channel c of the layer's output on the step's training batch: its mean "
            "and standard deviation\nover the batch (and positions); panels of a row share "
            "their y range" + identity)


def _unnormalized(model: str) -> bool:
    """A model of the table without normalization, or a name without a normalization kind
    at its end (`models.variant_name`: "net" beside "net_gn")."""
    if model in MODELS:
        return MODELS[model].norm is None
    return not any(model.endswith("_" + kind) for kind in NORM_KINDS if kind != "none")


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
