"""Residual networks: ResNet-18 (He et al. 2016, ImageNet design) and ResNet-20 (their CIFAR design).

Both are built from the same basic block, conv3x3-norm-ReLU-conv3x3-norm, added to a shortcut
and followed by a ReLU. Layers are named blocks (`stage2.block1.conv1`, `stage2.block1.shortcut.
conv`, `fc`, ...) and a missing normalization is an `nn.Identity`, so a network with and without
normalization has the same parameter names for every conv and linear layer. The convs have no
bias (as in both papers), with or without normalization, for the same reason.

Activations (ReLU by default) are not in-place: a normalization kind may keep its output for the backward pass.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landscape.errors import ConfigError
from landscape.models._width import scaled as _scaled
from landscape.models.activations import make_activation
from landscape.models.norms import make_norm

Stem = Literal["cifar", "imagenet"]
Shortcut = Literal["A", "B"]

RESNET18_BLOCKS = (2, 2, 2, 2)
RESNET18_CHANNELS = (64, 128, 256, 512)
RESNET20_BLOCKS = (3, 3, 3)
RESNET20_CHANNELS = (16, 32, 64)


def _check(blocks: Sequence[int], channels: Sequence[int], width: float,
           dropout: float = 0.0) -> None:
    if not width > 0:
        raise ConfigError(f"width must be positive, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if not 1 <= len(blocks) <= len(channels) or min(blocks) < 1:
        raise ConfigError(f"blocks must be 1 to {len(channels)} positive counts, got {blocks}")


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1,
                     bias=False)


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut (He et al. 2016, CIFAR): subsample by `stride`, zero-pad the channels.

    Has no parameters. The new channels are split evenly before and after the input's (the
    common implementation pads planes//4 on each side when the channels double).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"a zero-padding shortcut cannot reduce {in_channels} channels "
                              f"to {out_channels}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]  # (batch, in_channels, side/stride, side/stride)
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def _projection(in_channels: int, out_channels: int, stride: int, norm: str) -> nn.Sequential:
    """Option-B shortcut: a strided 1x1 conv and a normalization."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        norm=make_norm(norm, out_channels, spatial=True),
    ))


class BasicBlock(nn.Module):
    """relu(norm2(conv2(relu(norm1(conv1(x))))) + shortcut(x)), 3x3 convs.

    The shortcut is the identity when the shape is unchanged; otherwise option "B" (1x1 conv +
    norm) or option "A" (subsample + zero channels, no parameters).
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, norm: str,
                 shortcut: Shortcut, activation: str = "relu") -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.norm1 = make_norm(norm, out_channels, spatial=True)
        self.relu1 = make_activation(activation)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.norm2 = make_norm(norm, out_channels, spatial=True)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "B":
            self.shortcut = _projection(in_channels, out_channels, stride, norm)
        elif shortcut == "A":
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            raise ConfigError(f"unknown shortcut {shortcut!r}; valid: A, B")
        self.relu2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


def _stages(channels_in: int, channels: Sequence[int], blocks: Sequence[int], *, norm: str,
            shortcut: Shortcut, activation: str = "relu") -> tuple[nn.Sequential, int]:
    """Stages of basic blocks; every stage after the first halves the side in its first block."""
    stages = OrderedDict()
    for s, (out, n_blocks) in enumerate(zip(channels, blocks), start=1):
        stage = OrderedDict()
        for b in range(1, n_blocks + 1):
            stride = 2 if s > 1 and b == 1 else 1
            stage[f"block{b}"] = BasicBlock(channels_in, out, stride=stride, norm=norm,
                                            shortcut=shortcut, activation=activation)
            channels_in = out
        stages[f"stage{s}"] = nn.Sequential(stage)
    return nn.Sequential(stages), channels_in


class ResNet(nn.Module):
    """ResNet with basic blocks in the ImageNet design (ResNet-18 with blocks (2, 2, 2, 2)).

    stem -> stage1..stage4 (64, 128, 256, 512 channels, strides 1, 2, 2, 2) -> adaptive average
    pool -> fc. Shortcuts that change shape are a 1x1 conv and a normalization (option B).

    Args:
        blocks: basic blocks per stage.
        stem: "cifar" is a 3x3 stride-1 conv (the max-pool is an identity), keeping the 32x32
            side; "imagenet" is the original 7x7 stride-2 conv and 3x3 stride-2 max-pool, which
            brings 32x32 images down to 8x8 before stage1 (1x1 in stage4).
        norm: normalization kind after every conv (see `make_norm`).
        width: multiplies every channel count; small values give tiny test models.
        activation: the nonlinearity after every norm (see `models.activations`; relu).
        dropout: dropout probability before the fc layer (0 makes `drop` an identity).

    Init (as torchvision's ResNet): Kaiming-normal conv weights (fan_out, ReLU gain); the fc
    layer and the normalization layers keep PyTorch's defaults.
    """

    def __init__(
        self,
        blocks: Sequence[int],
        *,
        stem: Stem = "cifar",
        norm: str = "none",
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check(blocks, RESNET18_CHANNELS, width, dropout)
        channels = [_scaled(c, width) for c in RESNET18_CHANNELS[:len(blocks)]]
        c0 = channels[0]
        if stem == "cifar":
            stem_layers = OrderedDict(
                conv=_conv3x3(in_channels, c0),
                norm=make_norm(norm, c0, spatial=True),
                relu=make_activation(activation),
                pool=nn.Identity(),
            )
        elif stem == "imagenet":
            stem_layers = OrderedDict(
                conv=nn.Conv2d(in_channels, c0, kernel_size=7, stride=2, padding=3, bias=False),
                norm=make_norm(norm, c0, spatial=True),
                relu=make_activation(activation),
                pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        else:
            raise ConfigError(f"unknown stem {stem!r}; valid: cifar, imagenet")
        self.stem = nn.Sequential(stem_layers)
        self.stages, features = _stages(c0, channels, blocks, norm=norm, shortcut="B",
                                       activation=activation)
        self.pool = nn.AdaptiveAvgPool2d(1)
        # Dropout before the classifier (the reports' ResNets); no parameters, so the names of
        # the layers are the same with and without it.
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.fc.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (batch, channels, side, side)
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. 2016 (section 4.2): depth 6n+2, ResNet-20 has n = 3.

    3x3 conv (16 channels) -> three stages of n basic blocks (16, 32, 64 channels, strides
    1, 2, 2) -> global average pool -> fc.

    Args:
        blocks: basic blocks per stage.
        shortcut: "A" (the paper's CIFAR choice): subsample and zero-pad channels, no
            parameters; "B": 1x1 conv + normalization where the shape changes.
        norm: normalization kind after every conv (see `make_norm`).
        width: multiplies every channel count; small values give tiny test models.
        activation: the nonlinearity after every norm (see `models.activations`; relu).
        dropout: dropout probability before the fc layer (0 makes `drop` an identity).

    Init (He et al. 2015, as the paper and the common reference implementation): Kaiming-normal
    weights (fan_in, ReLU gain) for the convs and the fc layer, zero fc bias.
    """

    def __init__(
        self,
        blocks: Sequence[int],
        *,
        shortcut: Shortcut = "A",
        norm: str = "none",
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check(blocks, RESNET20_CHANNELS, width, dropout)
        if shortcut not in ("A", "B"):
            raise ConfigError(f"unknown shortcut {shortcut!r}; valid: A, B")
        channels = [_scaled(c, width) for c in RESNET20_CHANNELS[:len(blocks)]]
        c0 = channels[0]
        self.stem = nn.Sequential(OrderedDict(
            conv=_conv3x3(in_channels, c0),
            norm=make_norm(norm, c0, spatial=True),
            relu=make_activation(activation),
        ))
        self.stages, features = _stages(c0, channels, blocks, norm=norm, shortcut=shortcut,
                                       activation=activation)
        self.pool = nn.AdaptiveAvgPool2d(1)
        # Dropout before the classifier (the reports' ResNets); no parameters, so the names of
        # the layers are the same with and without it.
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (batch, channels, side, side)
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


resnet18 = partial(ResNet, RESNET18_BLOCKS)
resnet20 = partial(CifarResNet, RESNET20_BLOCKS)
