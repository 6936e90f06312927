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
from landscape.models.dln import DeepLinear
from landscape.models.resnet import CifarResNet, ResNet, resnet18, resnet20
from landscape.models.small import CNN3, LeNet, cnn3, lenet
from landscape.models.vgg import VGG, vgg_a, vgg_light


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., nn.Module]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    # What the model learns: "image-classification" (CIFAR-10) or "linear-regression" (DLN).
    task: str = "image-classification"


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
    "resnet18": ModelSpec(
        resnet18, "ResNet-18, CIFAR stem (3x3 conv, no max-pool), no normalization"
    ),
    "resnet18_bn": ModelSpec(resnet18, "ResNet-18, CIFAR stem, BatchNorm after every conv",
                             {"norm": "bn"}),
    "resnet18_imagenet": ModelSpec(
        resnet18, "ResNet-18, ImageNet stem (7x7/2 conv, 3x3/2 max-pool), no normalization",
        {"stem": "imagenet"},
    ),
    "resnet18_imagenet_bn": ModelSpec(
        resnet18, "ResNet-18, ImageNet stem, BatchNorm after every conv",
        {"stem": "imagenet", "norm": "bn"},
    ),
    "resnet20": ModelSpec(
        resnet20, "ResNet-20 (He et al. 2016, CIFAR), option-A shortcuts, no normalization"
    ),
    "resnet20_bn": ModelSpec(resnet20, "ResNet-20 with BatchNorm after every conv",
                             {"norm": "bn"}),
    "cnn3": ModelSpec(cnn3, "3 conv blocks (32, 64, 128), dropout 0.5, linear; no normalization"),
    "cnn3_bn": ModelSpec(cnn3, "3-block CNN with BatchNorm after every conv", {"norm": "bn"}),
    "lenet": ModelSpec(lenet, "LeNet-style: 2 unpadded convs (8, 16), 576-120-84-10; no norm"),
    "lenet_bn": ModelSpec(
        lenet, "LeNet-style with BatchNorm after both convs and both hidden linears",
        {"norm": "bn"},
    ),
    "dln": ModelSpec(DeepLinear, "Deep linear network: 25 bias-free 10x10 layers (paper, "
                     "Sec. 3.2), no normalization", task="linear-regression"),
    "dln_bn": ModelSpec(DeepLinear, "Deep linear network with BatchNorm between layers",
                        {"norm": "bn"}, task="linear-regression"),
}

# The paper's normalization variants (Section 2.1 and Appendix), as models of their own so that
# a record can hold them side by side with plain BN: vgg_noisy_bn, vgg_l1, ..., dln_linf.
_VARIANTS = {
    "noisy_bn": "noisy BatchNorm (Algorithm 1)",
    "l1": "l1 normalization",
    "l2": "l2 normalization",
    "linf": "l-infinity normalization",
}
for _kind, _what in _VARIANTS.items():
    MODELS[f"vgg_{_kind}"] = ModelSpec(vgg_a, f"VGG-A with {_what} instead of BatchNorm",
                                       {"norm": _kind})
    MODELS[f"dln_{_kind}"] = ModelSpec(DeepLinear, f"Deep linear network with {_what}",
                                       {"norm": _kind}, task="linear-regression")


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


__all__ = ["MODELS", "ModelSpec", "build_model", "model_names", "check_model_name", "VGG",
           "ResNet", "CifarResNet", "CNN3", "LeNet"]
