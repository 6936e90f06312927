"""The deep linear network of Santurkar et al. (Section 3.2, Appendix A): 25 square layers,
no nonlinearity, optionally normalized between layers.

The network computes W_25 ... W_1 x (with normalization layers in between when asked for); with
the ℓ2 loss ‖W x − A x‖² its landscape is a polynomial in the weights, which makes the effect of
BatchNorm on smoothness visible without any nonlinearity.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models.norms import make_norm


class DeepLinear(nn.Module):
    """`depth` bias-free Linear(dim, dim) layers named layers.fc1 … layers.fc<depth>.

    Args:
        depth: number of linear layers (the paper: 25).
        dim: input and output width (the paper: 10).
        norm: normalization after every layer but the last ("none": identity, so parameter
            names are the same with and without it).
    """

    def __init__(self, *, depth: int = 25, dim: int = 10, norm: str = "none") -> None:
        super().__init__()
        if depth < 1 or dim < 1:
            raise ConfigError(f"depth and dim must be positive, got depth={depth}, dim={dim}")
        layers = OrderedDict()
        for i in range(1, depth + 1):
            layers[f"fc{i}"] = nn.Linear(dim, dim, bias=False)
            if i < depth:
                layers[f"norm{i}"] = make_norm(norm, dim, spatial=False)
        self.layers = nn.Sequential(layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal (Glorot) weights, as the paper's VGG experiments use: E‖Wx‖² = ‖x‖²,
        so the product of 25 layers neither explodes nor vanishes on average."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (batch, dim)


def l2_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖W X − A X‖²_F: the squared error summed over the batch's samples and coordinates.

    The paper writes the loss as ‖W x − A x‖² over its 1000 samples and trains with full-batch
    gradient descent at lr 1e-6. Summed over the samples (not averaged), that step size makes
    the progress the paper shows in 10,000 steps; averaged, the same lr would move the weights
    1000 times less. (Measured here: with the average, 10,000 steps at lr 1e-6 barely train, and
    BatchNorm's landscape is not smoother; with the sum it is, as in the paper.)
    """
    return (prediction - target).pow(2).sum()
