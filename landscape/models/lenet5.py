"""LeNet-5 for 28x28 single-channel images (MNIST), the network of the DessiLBI course
experiments and of the authors' examples (Fu et al. 2020)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models._width import scaled
from landscape.models.activations import make_activation
from landscape.models.norms import make_norm

LENET5_CHANNELS = (6, 16, 120)
LENET5_HIDDEN = 84


class LeNet5(nn.Module):
    """conv1 1->6 5x5 (padding 2: 28 -> 28), norm, ReLU, max-pool 2 (-> 14); conv2 6->16 5x5
    (-> 10), norm, ReLU, max-pool 2 (-> 5); conv3 16->120 5x5 (-> 1), norm, ReLU; fc1 120->84,
    norm, ReLU; fc2 84->10. conv3 and fc1 are the layers the course prunes.

    Args:
        norm: normalization after every conv and fc1 (see `make_norm`; "none": none).
        width: multiplies every channel and hidden width; small values give tiny test models.
        activation: the nonlinearity after every norm (see `models.activations`; relu).
    """

    def __init__(self, *, norm: str = "none", width: float = 1.0, num_classes: int = 10,
                 in_channels: int = 1, activation: str = "relu") -> None:
        super().__init__()
        if not width > 0:
            raise ConfigError(f"width must be positive, got {width}")
        c1, c2, c3 = (scaled(c, width) for c in LENET5_CHANNELS)
        hidden = scaled(LENET5_HIDDEN, width)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_channels, c1, kernel_size=5, padding=2),  # 28 -> 28
            norm1=make_norm(norm, c1, spatial=True),
            relu1=make_activation(activation),
            pool1=nn.MaxPool2d(2),  # -> 14
            conv2=nn.Conv2d(c1, c2, kernel_size=5),  # -> 10
            norm2=make_norm(norm, c2, spatial=True),
            relu2=make_activation(activation),
            pool2=nn.MaxPool2d(2),  # -> 5
            conv3=nn.Conv2d(c2, c3, kernel_size=5),  # -> 1
            norm3=make_norm(norm, c3, spatial=True),
            relu3=make_activation(activation),
        ))
        self.classifier = nn.Sequential(OrderedDict(
            fc1=nn.Linear(c3, hidden),
            norm1=make_norm(norm, hidden, spatial=False),
            relu1=make_activation(activation),
            fc2=nn.Linear(hidden, num_classes),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def lenet5(*, norm: str = "none", width: float = 1.0, num_classes: int = 10,
           in_channels: int = 1, activation: str = "relu") -> LeNet5:
    return LeNet5(norm=norm, width=width, num_classes=num_classes, in_channels=in_channels,
                  activation=activation)
