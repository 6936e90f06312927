"""The table of models a record can train, and `build_model(name, **options)`.

Each entry is a builder and the default options that make the named variant; explicit options
override those defaults (so `build_model("vgg", norm="bn")` is the same network as "vgg_bn").
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from landscape.errors import ConfigError
from landscape.models.vgg import VGG, vgg_a, vgg_light


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., nn.Module]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    "vgg": ModelSpec(vgg_a, "VGG-A (course starter), no normalization"),
    "vgg_bn": ModelSpec(
        vgg_a, "VGG-A with BatchNorm after every conv and hidden linear layer", {"norm": "bn"}
    ),
    "vgg_dropout": ModelSpec(
        vgg_a, "VGG-A with dropout 0.5 before the two hidden linear layers", {"dropout": 0.5}
    ),
    "vgg_light": ModelSpec(vgg_light, "VGG-A-Light: 2 conv stages (16, 32), classifier 128-128"),
    "vgg_light_bn": ModelSpec(vgg_light, "VGG-A-Light with BatchNorm", {"norm": "bn"}),
}


def model_names() -> list[str]:
    return list(MODELS)


def check_model_name(name: str) -> None:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")


def build_model(name: str, **options: Any) -> nn.Module:
    """Build the model `name` from the table with `options` overriding its defaults."""
    check_model_name(name)
    spec = MODELS[name]
    accepted = _accepted_options(spec.builder)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(accepted))}"
        )
    return spec.builder(**{**spec.defaults, **options})


def _accepted_options(builder: Callable[..., nn.Module]) -> set[str]:
    params = inspect.signature(builder).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


__all__ = ["MODELS", "ModelSpec", "build_model", "model_names", "check_model_name", "VGG"]
