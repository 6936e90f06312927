"""Measurements of the landscape taken during training, which leave training untouched.

One module per probe: `gradient` (the paper's loss and gradient along the gradient or the update),
`ics` (internal covariate shift of chosen layers), `activations` (per-channel statistics of a
layer's output) and `weights` (the model's weights at chosen steps). Each implements `landscape.training.contracts.Probe`.
"""

from landscape.probes.activations import ActivationProbe, find_layer, output_channels
from landscape.probes.gradient import GradientProbe, eta_grid, select_parameters, unit_grid
from landscape.probes.ics import ICSProbe, layer_indices
from landscape.probes.weights import WeightsProbe, weight_entries

__all__ = [
    "ActivationProbe", "GradientProbe", "ICSProbe", "eta_grid", "find_layer", "layer_indices",
    "output_channels", "select_parameters", "unit_grid", "WeightsProbe", "weight_entries",
]
