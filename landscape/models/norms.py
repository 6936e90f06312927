"""Normalization layers a model can place after its linear/conv layers.

Models ask for a layer by kind; `"none"` gives an identity so that parameter names stay the same
whether or not a model normalizes (records of BN and no-BN runs then line up name by name).
"""

from __future__ import annotations

from torch import nn

from landscape.errors import ConfigError

NORM_KINDS = ("none", "bn")


def make_norm(kind: str, num_features: int, *, spatial: bool) -> nn.Module:
    """A normalization layer for `num_features` channels.

    `spatial` is True after a conv layer (inputs [N, C, H, W]) and False after a linear layer
    (inputs [N, C]).
    """
    if kind == "none":
        return nn.Identity()
    if kind == "bn":
        return nn.BatchNorm2d(num_features) if spatial else nn.BatchNorm1d(num_features)
    raise ConfigError(f"unknown normalization {kind!r}; valid: {', '.join(NORM_KINDS)}")
