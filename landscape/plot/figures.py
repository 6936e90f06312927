"""Every figure the runs of one or more records allow (what `landscape plot` writes)."""

from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from landscape.config.axes import format_value
from landscape.errors import RecordError
from landscape.plot._style import literal_text, model_colors
from landscape.plot.curvature import plot_hessian_course, plot_hessian_density
from landscape.plot.course import plot_gradient_change, plot_loss_landscape, plot_trajectory_beta
from landscape.plot.distributions import plot_activation_histograms
from landscape.plot.facets import plot_facets, plot_paper_facets, title_levels
from landscape.plot.layers import plot_activations, plot_ics
from landscape.plot.paper import plot_paper
from landscape.plot.practice import plot_band_width, plot_weight_histograms
from landscape.plot.surfaces import plot_surface
from landscape.plot.training import plot_training_curves
from landscape.report import (
    LoadedRun,
    activation_data,
    factor_cells,
    activation_histograms,
    full_batch,
    gradient_change_envelopes,
    group_by_model,
    hessian_data,
    hessian_densities,
    ics_data,
    loss_envelopes,
    paper_data,
    surface_groups,
    trajectory_beta_envelopes,
    trajectory_source,
)
from landscape.report.practice import band_widths, weight_histograms


@literal_text
def all_figures(runs: Sequence[LoadedRun], *, smooth: int | None = None) -> dict[str, Figure]:
    """Every figure the runs allow, by file stem: "loss_landscape", "paper_lr<lr>" (one per
    probed learning rate), "gradient_change", "trajectory_beta", "training_curves", "ics" (if
    a run measured internal covariate shift), "activations" (if a run recorded activations),
    "activation_histograms" (if a run recorded activation histograms: the first layer that has
    them), "hessian" (if a run had the Hessian probe: λ_max with 2/η and β, and the trace),
    "hessian_density" (if a run recorded Hessian densities) and "surface_<name>" (one per loss
    surface name computed with `landscape surface`: every run that has it, side by side),
    "loss_envelope_width" (max − min of the loss across a model's runs, for models with two or
    more runs) and "weight_histograms" (if a run kept weights: per layer, the last weights
    kept). `smooth` (moving-average window) applies to the loss landscape, band width and
    trajectory figures. Runs without a single recorded step are left out.

    Runs with factors (axes, or records combined that differ in a setting) get every figure of
    a model's runs split by the factors' levels instead, since pooled over levels they would
    mix settings: the loss landscape, band width, paper and trajectory figures with one panel
    per cell (`plot.facets`; with more than two axes, one file per level of the others, e.g.
    "loss_landscape_optimizer=adam"), the ICS, activation, activation-histogram and Hessian
    figures one file per cell, e.g. "ics_batch_size=16", titled with the cell's levels."""
    runs = [r for r in runs if r.last_step is not None]
    if not runs:
        raise RecordError("nothing to plot: no run has a recorded step")
    by_model = group_by_model(runs)
    colors = model_colors(list(by_model))
    figures: dict[str, Figure] = {}
    parameter = trajectory_source(runs)
    whole = full_batch(runs)
    split = factor_cells(runs)
    if split[0].levels:
        figures.update(_faceted(split, colors, smooth, parameter, whole))
    else:
        figures.update(_pooled(by_model, colors, smooth, parameter, whole))
    figures["training_curves"] = plot_training_curves(runs, colors=colors)
    figures.update(_per_run_kinds(split, by_model, colors))
    for name, panels in surface_groups(runs).items():
        figures[f"surface_{name}"] = plot_surface(panels, colors=colors)
    weights = weight_histograms(runs)
    if weights:
        figures["weight_histograms"] = plot_weight_histograms(weights)
    return figures


def _per_run_kinds(split, by_model, colors) -> dict[str, Figure]:
    """The ICS, activation and Hessian figures: of all runs without factors, else one figure
    per cell ("ics_batch_size=16"), its title starting with the cell's levels (these figures
    have rows and columns of their own, which a panel per cell would not hold)."""
    histograms = activation_histograms(by_model)
    layer = histograms[0].layer if histograms else None  # the same layer in every cell
    kinds = [("ics", ics_data, plot_ics), ("activations", activation_data, plot_activations),
             ("activation_histograms", lambda b: activation_histograms(b, layer) if layer
              else [], plot_activation_histograms),
             ("hessian", hessian_data, plot_hessian_course),
             ("hessian_density", hessian_densities, plot_hessian_density)]
    figures: dict[str, Figure] = {}
    for name, data_of, plot in kinds:
        for cell in split:
            data = data_of(group_by_model(cell.runs))
            if not data:
                continue
            fig = plot(data, colors=colors)
            if cell.levels:
                title_levels(fig, cell.label)
            figures[name + _suffix(cell.levels)] = fig
    return figures


def _pooled(by_model, colors, smooth, parameter, whole) -> dict[str, Figure]:
    envelopes = loss_envelopes(by_model, smooth=smooth)
    figures = {"loss_landscape": plot_loss_landscape(envelopes, colors=colors)}
    widths = band_widths(envelopes)
    if widths:
        figures["loss_envelope_width"] = plot_band_width(widths, colors=colors)
    for data in paper_data(by_model):
        figures[f"paper_lr{data.lr:g}"] = plot_paper(data, colors=colors)
    change = gradient_change_envelopes(by_model, parameter=parameter, smooth=smooth)
    if change:
        figures["gradient_change"] = plot_gradient_change(change, colors=colors,
                                                          full_batch=whole)
    beta = trajectory_beta_envelopes(by_model, parameter=parameter, smooth=smooth)
    if beta:
        figures["trajectory_beta"] = plot_trajectory_beta(beta, colors=colors,
                                                          full_batch=whole)
    return figures


def _faceted(split, colors, smooth, parameter, whole) -> dict[str, Figure]:
    """The figures of `_pooled`, one panel (or row of panels) per cell."""
    def panel(series_of, plot, empty="nothing to draw", **options):
        def draw(cell, ax) -> bool | str:
            series = series_of(group_by_model(cell.runs))
            if not series:
                return empty
            plot(series, ax=ax, colors=colors, **options)
            return True
        return draw

    kinds = {
        "loss_landscape": (panel(lambda b: loss_envelopes(b, smooth=smooth), plot_loss_landscape),
                           "Loss landscape (course version): training-batch loss, min to max "
                           "over each model's runs (lrs, seeds), per level"),
        "gradient_change": (panel(lambda b: gradient_change_envelopes(
            b, parameter=parameter, smooth=smooth), plot_gradient_change, full_batch=whole),
            "Gradient change between consecutive steps ||g_{t+1} - g_t||, per level"),
        "trajectory_beta": (panel(lambda b: trajectory_beta_envelopes(
            b, parameter=parameter, smooth=smooth), plot_trajectory_beta, full_batch=whole),
            "Trajectory beta (max over each model's runs), per level"),
        "loss_envelope_width": (panel(lambda b: band_widths(loss_envelopes(b, smooth=smooth)),
                                      plot_band_width,
                                      empty="no model has two runs at these levels"),
                                "Width of the loss band: max − min training-batch loss over "
                                "each model's runs (lrs, seeds), per level"),
    }
    figures: dict[str, Figure] = {}
    for name, (draw, title) in kinds.items():
        for fixed, fig in plot_facets(split, draw, title=title):
            if fig.axes and any(ax.has_data() for ax in fig.axes):
                figures[name + _suffix(fixed)] = fig
    by_lr: dict[float, list] = {}
    for cell in split:
        for data in paper_data(group_by_model(cell.runs)):
            by_lr.setdefault(data.lr, []).append((cell, data))
    for lr, rows in sorted(by_lr.items()):
        figures[f"paper_lr{lr:g}"] = plot_paper_facets(rows, colors=colors)
    return figures


def _suffix(levels) -> str:
    """'_batch_size=16_norm_placement=conv': a figure's name at these levels."""
    return "".join(f"_{k}={format_value(v)}" for k, v in levels.items())
