"""The VGG-A family of the course starter (and, with `norm="bn"`, of Santurkar et al.).

VGG-A: 8 conv layers in 5 stages [64] [128] [256, 256] [512, 512] [512, 512], each conv 3x3 with
padding 1, each stage ending in a 2x2 max-pool, then Linear(512,512)-ReLU-Linear(512,512)-ReLU-
Linear(512,10). Layers are named blocks (`features.stage3.conv2`, `classifier.fc3`, ...) and a
missing normalization or dropout is an `nn.Identity`, so every variant has the same parameter
names for the layers it shares.
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

VGG_A_STAGES = ((64,), (128,), (256, 256), (512, 512), (512, 512))
VGG_A_HIDDEN = (512, 512)
# The course's "light" variant: two single-conv stages and a narrow classifier.
VGG_LIGHT_STAGES = ((16,), (32,))
VGG_LIGHT_HIDDEN = (128, 128)

NormPlacement = Literal["all", "conv"]


class VGG(nn.Module):
    """A VGG network for 32x32 inputs.

    Args:
        stages: output channels of the conv layers, one tuple per stage (each stage ends in a
            2x2 max-pool).
        hidden: widths of the hidden linear layers of the classifier.
        norm: normalization after each conv (and hidden linear) layer, before the ReLU.
        norm_placement: "all" normalizes conv and hidden linear layers (the course's vgg_bn),
            "conv" normalizes the conv layers only.
        dropout: dropout probability before each hidden linear layer (0 disables).
        activation: the nonlinearity after every norm (see `models.activations`; relu).
        width: multiplies every channel and hidden width; small values give tiny test models.
    """

    def __init__(
        self,
        stages: Sequence[Sequence[int]],
        hidden: Sequence[int],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        norm: str = "none",
        norm_placement: NormPlacement = "all",
        dropout: float = 0.0,
        width: float = 1.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if norm_placement not in ("all", "conv"):
            raise ConfigError(f"unknown norm placement {norm_placement!r}; valid: all, conv")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if not width > 0:
            raise ConfigError(f"width must be positive, got {width}")
        if image_size % (2 ** len(stages)):
            raise ConfigError(f"image size {image_size} is not divisible by 2^{len(stages)}")

        stage_modules = OrderedDict()
        channels = in_channels
        for s, stage in enumerate(stages, start=1):
            layers = OrderedDict()
            for c, out in enumerate(stage, start=1):
                out = _scaled(out, width)
                layers[f"conv{c}"] = nn.Conv2d(channels, out, kernel_size=3, padding=1)
                layers[f"norm{c}"] = make_norm(norm, out, spatial=True)
                layers[f"relu{c}"] = make_activation(activation, inplace=True)
                channels = out
            layers["pool"] = nn.MaxPool2d(kernel_size=2, stride=2)
            stage_modules[f"stage{s}"] = nn.Sequential(layers)
        self.features = nn.Sequential(stage_modules)

        side = image_size // 2 ** len(stages)
        features = channels * side * side
        hidden_norm = norm if norm_placement == "all" else "none"
        head = OrderedDict()
        for h, width_h in enumerate(hidden, start=1):
            width_h = _scaled(width_h, width)
            head[f"drop{h}"] = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            head[f"fc{h}"] = nn.Linear(features, width_h)
            head[f"norm{h}"] = make_norm(hidden_norm, width_h, spatial=False)
            head[f"relu{h}"] = make_activation(activation, inplace=True)
            features = width_h
        head[f"fc{len(hidden) + 1}"] = nn.Linear(features, num_classes)
        self.classifier = nn.Sequential(head)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal weights and zero biases for conv and linear layers (the course's init)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (batch, channels, side, side)
        return self.classifier(torch.flatten(x, 1))


vgg_a = partial(VGG, VGG_A_STAGES, VGG_A_HIDDEN)
vgg_light = partial(VGG, VGG_LIGHT_STAGES, VGG_LIGHT_HIDDEN)
