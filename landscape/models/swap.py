"""Normalization as a property of any built model: every BatchNorm layer replaced by another
kind (`replace_batchnorm`), conv weights standardized (`standardize_convs`, the "ws" kind),
and the kind a model has (`norm_kind_of`).

Parameter names stay those of the model: a replacement layer takes BatchNorm's place under
BatchNorm's name, with γ and β as `weight` and `bias` (GroupNorm, LayerNorm as GroupNorm(1, C),
InstanceNorm, the paper's variants); BatchNorm's running statistics go with it where the new
kind has none, and "none" (an identity) removes γ and β. A standardized conv keeps its class's
parameters and names. So taps, surfaces and pruning name the same layers in every kind.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from landscape.errors import ConfigError
from landscape.models.norms import (NORM_KINDS, AlgorithmOneNoiseOnly, LpNorm,
                                    NoisyBatchNorm1d, NoisyBatchNorm2d, make_norm)

# BatchNorm classes whose forward is BatchNorm's alone: a subclass may add to it (timm's
# BatchNormAct2d applies an activation), which a replacement would silently drop.
_PLAIN_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)


class StandardizedConv2d(nn.Conv2d):
    """A conv whose weight is standardized at every forward pass (Qiao et al. 2019, "Micro-
    Batch Training with Batch-Channel Normalization and Weight Standardization"): per output
    channel o, over its (in_channels/groups, kH, kW) values,
    Ŵ_o = (W_o − mean(W_o)) / sqrt(var(W_o) + eps), var biased, eps 1e-6, as timm's
    `StdConv2d`. The parameters are the conv's own (`weight` is W, trained as is)."""

    eps = 1e-6

    def forward(self, x):
        w = self.weight  # [out, in / groups, kH, kW]
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        return self._conv_forward(x, (w - mean) / (var + self.eps).sqrt(), self.bias)


def standardize_convs(model: nn.Module, name: str) -> nn.Module:
    """Make every `nn.Conv2d` of `model` a `StandardizedConv2d`, in place: its class changes,
    its parameters, names and initialization stay (no random number is drawn). Refuses a
    model without a conv layer, whose weights standardization would not touch."""
    convs = [m for m in model.modules() if type(m) is nn.Conv2d]
    if not convs:
        raise ConfigError(f"model {name!r} has no conv layer: weight standardization (--norm "
                          f"ws) standardizes conv weights")
    for conv in convs:
        conv.__class__ = StandardizedConv2d
    return model


def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every BatchNorm layer of `model` (any class derived from torch's)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]


def replace_batchnorm(model: nn.Module, kind: str, name: str) -> nn.Module:
    """`model` with every BatchNorm layer replaced by normalization `kind` (NORM_KINDS), in
    place; "bn" keeps them and "ws" keeps them and standardizes the convs.

    Refuses, in one line: a model without a BatchNorm layer (asked for a normalization, it
    would stay unchanged; "none" is accepted where the model has no normalization at all), a
    BatchNorm subclass with a forward of its own, InstanceNorm after a BatchNorm1d (one value
    per channel) and the paper's variants on 3-d BatchNorm."""
    if kind not in NORM_KINDS:
        raise ConfigError(f"unknown normalization {kind!r}; valid: {', '.join(NORM_KINDS)}")
    layers = batchnorm_layers(model)
    if not layers:
        own = norm_kind_of(model)
        if kind == "none" and own == "none":
            return model
        raise ConfigError(f"model {name!r} has no BatchNorm layer to replace with {kind} (its "
                          f"normalization: {own}); --norm swaps BatchNorm layers")
    odd = [(n, m) for n, m in layers if type(m) not in (*_PLAIN_BATCHNORM, nn.BatchNorm3d)]
    if odd:
        raise ConfigError(f"model {name!r} normalizes with {type(odd[0][1]).__name__} "
                          f"({odd[0][0]}), a BatchNorm with a forward of its own that "
                          f"--norm cannot replace faithfully")
    if kind == "ws":
        return standardize_convs(model, name)
    if kind == "bn":
        return model
    for layer_name, layer in layers:
        model.set_submodule(layer_name, _replacement(kind, layer, layer_name, name))
    return model


def _replacement(kind: str, layer: nn.Module, layer_name: str, name: str) -> nn.Module:
    channels = layer.num_features
    if isinstance(layer, nn.BatchNorm3d):
        if kind not in ("none", "gn", "ln"):
            raise ConfigError(f"model {name!r}: {layer_name} is a BatchNorm3d, which --norm "
                              f"{kind} cannot replace (none, gn and ln can)")
        return make_norm(kind, channels, spatial=False)  # GroupNorm takes [N, C, *]
    try:
        return make_norm(kind, channels, spatial=not isinstance(layer, nn.BatchNorm1d))
    except ConfigError as error:
        raise ConfigError(f"model {name!r}, layer {layer_name}: {error.message}") from None


def norm_kind_of(model: nn.Module) -> str:
    """The normalization of `model` as a kind of NORM_KINDS ("none" without any), read from
    its layers; kinds joined by "+" where it mixes several ("bn+ln")."""
    kinds = set()
    for module in model.modules():
        kind = _layer_kind(module)
        if kind is not None:
            kinds.add(kind)
    if "bn" in kinds and any(type(m) is StandardizedConv2d for m in model.modules()):
        kinds = (kinds - {"bn"}) | {"ws"}
    return "+".join(sorted(kinds)) or "none"


def _layer_kind(module: nn.Module) -> str | None:
    if isinstance(module, (NoisyBatchNorm1d, NoisyBatchNorm2d)):
        return "noisy_bn"
    if isinstance(module, _BatchNorm):
        return "bn"
    if isinstance(module, AlgorithmOneNoiseOnly):
        return "noise"
    if isinstance(module, LpNorm):
        return {1.0: "l1", 2.0: "l2"}.get(module.p, "linf")
    if isinstance(module, nn.GroupNorm):
        return "ln" if module.num_groups == 1 else "gn"
    if isinstance(module, nn.LayerNorm):
        return "ln"
    if isinstance(module, _InstanceNorm):
        return "in"
    return None


__all__ = ["StandardizedConv2d", "batchnorm_layers", "norm_kind_of", "replace_batchnorm",
           "standardize_convs"]
