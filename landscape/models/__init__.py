"""The table of models a record can train, and `build_model(name, **options)`.

Each entry is a builder and the default options that make the named variant; explicit options
override those defaults (so `build_model("vgg", norm="bn")` is the same network as "vgg_bn").
Models from outside the table (`torchvision:NAME`, `timm:NAME`, `package.module:factory`) are
built by `models.external`; `norm` gives any model its twin with another normalization
(`models.swap` for those from outside).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from landscape.errors import ConfigError
from landscape.models.activations import ALIASES
from landscape.models.dln import DeepLinear
from landscape.models.external import (FORMS, build_external, check_external_name,
                                       external_options, source_of)
from landscape.models.lenet5 import LeNet5, lenet5
from landscape.models.resnet import CifarResNet, ResNet, resnet18, resnet20
from landscape.models.small import CNN3, LeNet, cnn3, lenet
from landscape.models.swap import norm_kind_of, replace_batchnorm, standardize_convs
from landscape.models.vgg import VGG, vgg_a, vgg_light


NORMS = ("bn", "noisy_bn", "l1", "l2", "linf", "noise")  # None: no normalization
# Words for each normalization kind a run can store as its `norm` ("none": none), and the
# short form the verdicts use ("smoother with BN"). A kind not listed is shown as it is.
_NORM_LABELS = {
    "none": "no normalization",
    "bn": "BatchNorm",
    "noisy_bn": "noisy BatchNorm",
    "l1": "l1 normalization",
    "l2": "l2 normalization",
    "linf": "l-infinity normalization",
    "noise": "Algorithm 1's noise alone (no BatchNorm)",
    "gn": "GroupNorm",
    "ln": "LayerNorm",
    "in": "InstanceNorm",
    "ws": "BatchNorm with weight standardization",
}
_NORM_SHORT = {"none": "no normalization", "bn": "BN", "noisy_bn": "noisy BN",
               "l1": "l1 norm", "l2": "l2 norm", "linf": "linf norm", "noise": "noise only",
               "gn": "GN", "ln": "LN", "in": "IN", "ws": "BN+WS"}


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
    "no normalization" for "none" (or None)."""
    norm = "none" if norm is None else norm
    if norm not in _NORM_LABELS:
        raise ConfigError(f"unknown normalization {norm!r}; valid: {', '.join(_NORM_LABELS)}")
    return _NORM_LABELS[norm]


def known_norm(norm: str) -> bool:
    """Whether `norm` is a normalization kind this library names ("none", "bn", "gn", ...)."""
    return norm in _NORM_LABELS


def norm_short(norm: str) -> str:
    """The short name of a normalization kind in verdicts: "BN", "GN", "noisy BN", ...; a kind
    this library does not name (a user's own) as it is."""
    return _NORM_SHORT.get(norm, norm)


def variant_name(family: str, norm: str) -> str:
    """The name a run of network `family` with normalization `norm` is reported under: the
    family for "none", else family + "_" + norm ("vgg_bn", "torchvision:resnet18_gn"), the
    rule the model table's names follow."""
    return family if norm == "none" else f"{family}_{norm}"


def table_identity(name: str) -> tuple[str, str] | None:
    """(family, norm) of a model of the table ("none" for none), e.g. ("vgg", "bn") for vgg_bn;
    None for a name the table does not hold."""
    spec = MODELS.get(name)
    return None if spec is None else (spec.family, spec.norm or "none")


def model_identity(name: str, norm: str | None, model: nn.Module | None = None
                   ) -> tuple[str, str]:
    """(family, norm) of model `name` built with normalization `norm` (None: its own): a
    table model's family, or the name of one from outside; the kind asked for, else the
    table's, else the one `model` (the built network) has (`swap.norm_kind_of`)."""
    known = table_identity(name)
    if known is not None:
        return known[0], norm or known[1]
    if norm is None and model is None:
        raise ValueError(f"the normalization of {name!r} is read from the built model")
    return name, norm or norm_kind_of(model)


def model_task(name: str) -> str:
    """What model `name` learns; models from outside the table classify images."""
    check_model_name(name)
    return MODELS[name].task if name in MODELS else "image-classification"


def model_names() -> list[str]:
    return list(MODELS)


def check_model_name(name: str) -> None:
    """ConfigError in one line for a name that is neither in the table nor of a form from
    outside it (which is built, and so checked further, when a record is planned)."""
    if name in MODELS:
        return
    if ":" in name:
        check_external_name(name)
        return
    raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}, or "
                      f"{FORMS}")


def resolved_options(name: str, *, data_classes: int | None = None,
                     data_channels: int | None = None, **options: Any) -> dict[str, Any]:
    """The options `build_model` builds model `name` with: `options`, and the data's number
    of classes as `num_classes` where the model takes it and `options` do not set it
    (`data_channels`: a timm model's `in_chans`). A record stores them with each run."""
    check_model_name(name)
    if name not in MODELS:
        return external_options(name, options, data_classes=data_classes,
                                data_channels=data_channels)
    options = dict(options)
    if data_classes is not None and "num_classes" in _accepted_options(MODELS[name].builder):
        options.setdefault("num_classes", data_classes)
    return options


def model_source(name: str) -> str:
    """Where model `name` comes from, with the version: the model table, or the package or
    module of one from outside ('torchvision 0.29.1: torchvision.models.get_model(...)')."""
    check_model_name(name)
    return "landscape's model table" if name in MODELS else source_of(name)


def build_model(name: str, *, data_classes: int | None = None,
                data_channels: int | None = None, **options: Any) -> nn.Module:
    """Build model `name`: one of the table with `options` overriding its defaults, or one
    from outside it (`models.external`) with `options` as its keywords.

    `norm` (a kind of `models.norms.NORM_KINDS`) makes any model its twin with that
    normalization: the table's models place it themselves (and "ws" standardizes their
    convs), a model from outside has every BatchNorm layer replaced (`swap.replace_batchnorm`).
    `data_classes`, `data_channels`: the data's (see `resolved_options`).
    """
    options = resolved_options(name, data_classes=data_classes, data_channels=data_channels,
                               **options)
    norm = options.pop("norm", None)
    if name not in MODELS:
        model = build_external(name, options)
        return model if norm is None else replace_batchnorm(model, norm, name)
    spec = MODELS[name]
    accepted = _accepted_options(spec.builder)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(accepted))}"
        )
    if norm is not None:
        options["norm"] = "bn" if norm == "ws" else norm
    model = spec.builder(**{**spec.defaults, **options})
    return standardize_convs(model, name) if norm == "ws" else model


def model_options_of(name: str) -> set[str] | None:
    """The keyword options `build_model(name, ...)` accepts; None for a model from outside
    the table (its own builder's, checked when it is built)."""
    check_model_name(name)
    return _accepted_options(MODELS[name].builder) if name in MODELS else None


def effective_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every keyword option `build_model(name, **options)` builds the model with: the options
    given, then the table's defaults, then the builder's own, with an activation named by its
    canonical name (swish is silu). Two option sets that resolve alike build the same model.
    (A model from outside the table: its `resolved_options`.)"""
    check_model_name(name)
    if name not in MODELS:
        return resolved_options(name, **options)
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
           "norm_of", "family_of", "model_options_of", "variant", "bn_partner", "norm_label",
           "known_norm", "norm_short", "variant_name", "table_identity", "model_identity",
           "model_task", "model_source", "resolved_options",
           "effective_options", "VGG", "ResNet",
           "CifarResNet", "CNN3", "LeNet", "LeNet5"]
