"""Figures from the numbers of `landscape.report` (which gets them from `analyses`).

Every function takes data and, optionally, the Axes to draw into, and returns the Figure. None of
them saves, shows or touches pyplot's global state: figures are built as `matplotlib.figure.Figure`
objects (rendered by Agg or the PDF/SVG backends when saved), so this package is safe on machines
without a display and in long-running processes. Saving is the caller's business
(`fig.savefig(path)`; the `landscape plot` command does it).

Conventions in every figure: x is the training step (or epoch), each model has one color, a
diverged run is marked with an "x" at the step whose loss was non-finite (at the height of its
last finite value), an incomplete run with an open circle at its last recorded step.

One module per figure family: `course` (loss landscape, gradient change, trajectory β), `paper`
(the paper's probe), `training` (training curves), `layers` (internal covariate shift,
activation distributions), `distributions` (activation histograms), `curvature` (the Hessian
probe: λ_max with 2/η and β, trace, spectral density); `figures.all_figures` draws every one the runs allow; `_style` holds
what they share. Everything public is importable from `landscape.plot` itself.
"""

from landscape.plot._style import AUTO_LOG_RANGE, YScale, model_colors, model_name
from landscape.plot.course import plot_gradient_change, plot_loss_landscape, plot_trajectory_beta
from landscape.plot.curvature import plot_hessian_course, plot_hessian_density
from landscape.plot.distributions import plot_activation_histograms
from landscape.plot.figures import all_figures
from landscape.plot.layers import plot_activations, plot_ics
from landscape.plot.paper import plot_paper
from landscape.plot.training import plot_training_curves

__all__ = [
    "AUTO_LOG_RANGE", "YScale", "all_figures", "model_colors", "model_name", "plot_activation_histograms",
    "plot_activations",
    "plot_gradient_change", "plot_ics", "plot_loss_landscape", "plot_paper",
    "plot_training_curves", "plot_trajectory_beta", "plot_hessian_course", "plot_hessian_density",
]
