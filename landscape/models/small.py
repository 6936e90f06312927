"""Small CIFAR-10 networks for 32x32 inputs: a 3-block CNN and a LeNet-style net.

Layers are named blocks (`features.block2.conv`, `classifier.fc1`, ...) and a missing
normalization or dropout is an `nn.Identity`, so every variant has the same parameter names for
its conv and linear layers. Both keep PyTorch's default initialization of conv and linear
layers (Kaiming-uniform with a=sqrt(5) weights, uniform biases), the usual choice for these
small nets. ReLUs are not in-place: a normalization kind may keep its output for backward.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Literal, Sequence

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models._width import scaled as _scaled
from landscape.models.activations import make_activation
from landscape.models.norms import make_norm

IMAGE_SIZE = 32
CNN3_CHANNELS = (32, 64, 128)
LENET_CHANNELS = (8, 16)
LENET_HIDDEN = (120, 84)

NormPlacement = Literal["all", "conv"]


def _check(width: float, dropout: float = 0.0) -> None:
    if not width > 0:
        raise ConfigError(f"width must be positive, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")


def _reset_default(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.reset_parameters()


class CNN3(nn.Module):
    """(conv3x3-norm-ReLU-maxpool2) x 3 with 32, 64, 128 channels, dropout, Linear(2048, 10).

    The convs have padding 1 and a bias, so the side goes 32 -> 16 -> 8 -> 4 and the classifier
    sees 128 * 4 * 4 = 2048 features.

    Args:
        channels: output channels of the three (or any number of) conv blocks.
        norm: normalization kind after every conv (see `make_norm`).
        dropout: dropout probability before the linear layer (0 makes `drop` an identity).
        width: multiplies every channel count; small values give tiny test models.
        activation: the nonlinearity after every norm (see `models.activations`; relu).
    """

    def __init__(
        self,
        channels: Sequence[int],
        *,
        norm: str = "none",
        dropout: float = 0.5,
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        _check(width, dropout)
        if IMAGE_SIZE % 2 ** len(channels):
            raise ConfigError(f"{len(channels)} pooling blocks do not fit a {IMAGE_SIZE}-pixel "
                              f"side")
        blocks = OrderedDict()
        c_in = in_channels
        for b, c_out in enumerate(channels, start=1):
            c_out = _scaled(c_out, width)
            blocks[f"block{b}"] = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
                norm=make_norm(norm, c_out, spatial=True),
                relu=make_activation(activation),
                pool=nn.MaxPool2d(kernel_size=2, stride=2),
            ))
            c_in = c_out
        self.features = nn.Sequential(blocks)
        side = IMAGE_SIZE // 2 ** len(channels)
        self.classifier = nn.Sequential(OrderedDict(
            drop=nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            fc=nn.Linear(c_in * side * side, num_classes),
        ))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init for every conv and linear layer."""
        _reset_default(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (batch, 128, 4, 4) at full width
        return self.classifier(torch.flatten(x, 1))


class LeNet(nn.Module):
    """A LeNet-5-style net for 32x32 colour images.

    conv 3->8 5x5 (padding 0: 32 -> 28), norm, ReLU, max-pool 2 (-> 14), conv 8->16 3x3
    (padding 0: 14 -> 12), norm, ReLU, max-pool 2 (-> 6), then Linear(16*6*6 = 576, 120), norm,
    ReLU, Linear(120, 84), norm, ReLU, Linear(84, 10). Both convs are unpadded ("valid"), as in
    LeNet-5; that is the only padding that gives 576 features for 32x32 inputs.

    Args:
        norm: normalization kind (see `make_norm`).
        norm_placement: "all" normalizes the two convs and the two hidden linear layers (as
            vgg_bn does), "conv" the convs only.
        width: multiplies every channel and hidden width; small values give tiny test models.
        activation: the nonlinearity after every norm (see `models.activations`; relu).
    """

    def __init__(
        self,
        *,
        norm: str = "none",
        norm_placement: NormPlacement = "all",
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        _check(width)
        if norm_placement not in ("all", "conv"):
            raise ConfigError(f"unknown norm placement {norm_placement!r}; valid: all, conv")
        c1, c2 = (_scaled(c, width) for c in LENET_CHANNELS)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_channels, c1, kernel_size=5),  # 32 -> 28
            norm1=make_norm(norm, c1, spatial=True),
            relu1=make_activation(activation),
            pool1=nn.MaxPool2d(kernel_size=2, stride=2),  # 28 -> 14
            conv2=nn.Conv2d(c1, c2, kernel_size=3),  # 14 -> 12
            norm2=make_norm(norm, c2, spatial=True),
            relu2=make_activation(activation),
            pool2=nn.MaxPool2d(kernel_size=2, stride=2),  # 12 -> 6
        ))
        side = ((IMAGE_SIZE - 4) // 2 - 2) // 2
        hidden_norm = norm if norm_placement == "all" else "none"
        h1, h2 = (_scaled(h, width) for h in LENET_HIDDEN)
        self.classifier = nn.Sequential(OrderedDict(
            fc1=nn.Linear(c2 * side * side, h1),
            norm1=make_norm(hidden_norm, h1, spatial=False),
            relu1=make_activation(activation),
            fc2=nn.Linear(h1, h2),
            norm2=make_norm(hidden_norm, h2, spatial=False),
            relu2=make_activation(activation),
            fc3=nn.Linear(h2, num_classes),
        ))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init for every conv and linear layer."""
        _reset_default(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (batch, 16, 6, 6) at full width
        return self.classifier(torch.flatten(x, 1))


cnn3 = partial(CNN3, CNN3_CHANNELS)
lenet = LeNet
