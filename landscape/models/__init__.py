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
from landscape.models.activations import ALIASES
from landscape.models.dln import DeepLinear
from landscape.models.lenet5 import LeNet5, lenet5
from landscape.models.resnet import CifarResNet, ResNet, resnet18, resnet20
from landscape.models.small import CNN3, LeNet, cnn3, lenet
from landscape.models.vgg import VGG, vgg_a, vgg_light


NORMS = ("bn", "noisy_bn", "l1", "l2", "linf", "noise")  # None: no normalization
_NORM_LABELS = {
    None: "no normalization",
    "bn": "BatchNorm",
    "noisy_bn": "noisy BatchNorm",
    "l1": "l1 normalization",
    "l2": "l2 normalization",
    "linf": "l-infinity normalization",
    "noise": "Algorithm 1's noise alone (no BatchNorm)",
}


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., nn.Module]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    # What the model learns: "image-classification" (CIFAR-10) or "linear-regression" (DLN).
    task: str = "image-classification"
    # The network without its normalization (models of one family differ only in `norm`) and
    # the normalization after its layers (None: none; else one of NORMS). vgg_dropout is a
    # family of its own: VGG-A with dropout has no BatchNorm variant in the table, so it pairs
    # with nothing.
    family: str = ""
    norm: str | None = None
    # The images an image-classification model takes (channels, height, width).
    input_shape: tuple[int, ...] = (3, 32, 32)


# (family, builder, options, task, description of the plain network, of its BatchNorm variant)
# in the order of `landscape record --help`; a family whose BN description is None has no BN
# variant. The name of a variant is the family's, plus "_" and the norm.
_FAMILIES: list[tuple[str, Callable[..., nn.Module], dict[str, Any], str, str, str | None]] = [
    ("vgg", vgg_a, {}, "image-classification",
     "VGG-A (course starter), no normalization",
     "VGG-A with BatchNorm after every conv and hidden linear layer"),
    ("vgg_dropout", vgg_a, {"dropout": 0.5}, "image-classification",
     "VGG-A with dropout 0.5 before the two hidden linear layers", None),
    ("vgg_light", vgg_light, {}, "image-classification",
     "VGG-A-Light: 2 conv stages (16, 32), classifier 128-128", "VGG-A-Light with BatchNorm"),
    ("resnet18", resnet18, {}, "image-classification",
     "ResNet-18, CIFAR stem (3x3 conv, no max-pool), no normalization",
     "ResNet-18, CIFAR stem, BatchNorm after every conv"),
    ("resnet18_imagenet", resnet18, {"stem": "imagenet"}, "image-classification",
     "ResNet-18, ImageNet stem (7x7/2 conv, 3x3/2 max-pool), no normalization",
     "ResNet-18, ImageNet stem, BatchNorm after every conv"),
    ("resnet20", resnet20, {}, "image-classification",
     "ResNet-20 (He et al. 2016, CIFAR), option-A shortcuts, no normalization",
     "ResNet-20 with BatchNorm after every conv"),
    ("cnn3", cnn3, {}, "image-classification",
     "3 conv blocks (32, 64, 128), dropout 0.5, linear; no normalization",
     "3-block CNN with BatchNorm after every conv"),
    ("lenet", lenet, {}, "image-classification",
     "LeNet-style: 2 unpadded convs (8, 16), 576-120-84-10; no norm",
     "LeNet-style with BatchNorm after both convs and both hidden linears"),
    ("lenet5", lenet5, {}, "image-classification",
     "LeNet-5 for 28x28 MNIST: convs 6, 16, 120 (5x5), 120-84-10; no normalization",
     "LeNet-5 (MNIST) with BatchNorm after every conv and fc1"),
    ("dln", DeepLinear, {}, "linear-regression",
     "Deep linear network: 25 bias-free 10x10 layers (paper, Sec. 3.2), no normalization",
     "Deep linear network with BatchNorm between layers"),
]
# Families for other images than CIFAR-10's 3x32x32 (their dataset: `landscape record --dataset`).
_INPUT_SHAPES = {"lenet5": (1, 28, 28)}
# The paper's other normalization variants (Section 2.1 and Appendix), as models of their own
# so that a record can hold them side by side with plain BN: vgg_noisy_bn, ..., dln_linf.
_VARIANTS = {
    "vgg": lambda what: f"VGG-A with {what} instead of BatchNorm",
    "vgg_light": lambda what: f"VGG-A-Light with {what} instead of BatchNorm",
    "dln": lambda what: f"Deep linear network with {what}",
}

_VARIANT_WORDS = {"noisy_bn": "noisy BatchNorm (Algorithm 1)",
                  "noise": "the noise of Algorithm 1 (the noise-only control)"}


def _table() -> dict[str, ModelSpec]:
    models: dict[str, ModelSpec] = {}
    for family, builder, options, task, plain, with_bn in _FAMILIES:
        shape = _INPUT_SHAPES.get(family, (3, 32, 32))
        models[family] = ModelSpec(builder, plain, dict(options), task, family, None, shape)
        if with_bn is not None:
            models[f"{family}_bn"] = ModelSpec(builder, with_bn, {**options, "norm": "bn"},
                                               task, family, "bn", shape)
    for norm in NORMS[1:]:
        for family, describe in _VARIANTS.items():
            base = models[family]
            models[f"{family}_{norm}"] = ModelSpec(
                base.builder, describe(_VARIANT_WORDS.get(norm, _NORM_LABELS[norm])),
                {**base.defaults, "norm": norm},
                base.task, family, norm)
    return models


MODELS: dict[str, ModelSpec] = _table()


def norm_of(name: str) -> str | None:
    """The normalization of model `name` (None: none), e.g. "bn" for vgg_bn."""
    check_model_name(name)
    return MODELS[name].norm


def family_of(name: str) -> str:
    """The network of model `name` without its normalization, e.g. "vgg" for vgg_noisy_bn."""
    check_model_name(name)
    return MODELS[name].family


def variant(family: str, norm: str | None) -> str | None:
    """The model of `family` with normalization `norm`, or None if the table has none."""
    for name, spec in MODELS.items():
        if spec.family == family and spec.norm == norm:
            return name
    return None


def bn_partner(name: str) -> str | None:
    """The BatchNorm variant of the unnormalized model `name` (vgg -> vgg_bn); None for a
    normalized model or a family without a BatchNorm variant."""
    if norm_of(name) is not None:
        return None
    return variant(MODELS[name].family, "bn")


def norm_label(norm: str | None) -> str:
    """Words for a normalization: "BatchNorm", "noisy BatchNorm", "l1 normalization", ...,
    "no normalization" for None."""
    if norm not in _NORM_LABELS:
        raise ConfigError(f"unknown normalization {norm!r}; valid: "
                          f"{', '.join(str(n) for n in _NORM_LABELS)}")
    return _NORM_LABELS[norm]


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


def model_options_of(name: str) -> set[str]:
    """The keyword options `build_model(name, ...)` accepts."""
    check_model_name(name)
    return _accepted_options(MODELS[name].builder)


def resolved_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every keyword option `build_model(name, **options)` builds the model with: the options
    given, then the table's defaults, then the builder's own, with an activation named by its
    canonical name (swish is silu). Two option sets that resolve alike build the same model."""
    check_model_name(name)
    spec = MODELS[name]
    params = inspect.signature(spec.builder).parameters.values()
    own = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
           and p.default is not inspect.Parameter.empty}
    resolved = {**own, **spec.defaults, **options}
    if isinstance(resolved.get("activation"), str):
        resolved["activation"] = ALIASES.get(resolved["activation"], resolved["activation"])
    return resolved


def _accepted_options(builder: Callable[..., nn.Module]) -> set[str]:
    params = inspect.signature(builder).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


__all__ = ["MODELS", "ModelSpec", "NORMS", "build_model", "model_names", "check_model_name",
           "resolved_options",
           "norm_of", "family_of", "model_options_of", "variant", "bn_partner", "norm_label", "VGG", "ResNet",
           "CifarResNet", "CNN3", "LeNet", "LeNet5"]
