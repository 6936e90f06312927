"""Optimizers of our own (torch has none of them): DessiLBI and its Adam variant (`slbi`)."""

from __future__ import annotations

import difflib
from typing import Mapping, Sequence

from torch import nn

from landscape.errors import ConfigError, field_ref
from landscape.optim.slbi import (
    SLBI, SPARSE_NDIMS, default_sparse_layers, group_norms, group_shrink, shrink,
    slbi_param_groups, soft_threshold,
)

SLBI_OPTIMIZERS = ("slbi", "slbi_adam")


def resolve_sparse_layers(layers: Sequence[str], shapes: Mapping[str, tuple[int, ...]],
                          model_name: str, *, option: str | None = None) -> list[str]:
    """The parameter names of `layers` (each a parameter name, a module name meaning its
    weight, or a unique ending of either, e.g. "conv3" for features.conv3.weight); every conv
    and linear weight when `layers` is empty. Refuses a name that matches nothing, several
    things, or a parameter that is not a conv or linear weight."""
    option = option or field_ref("optim.slbi_layers")  # the option named in the errors
    candidates = [n for n, s in shapes.items() if len(s) in SPARSE_NDIMS]
    if not layers:
        return candidates
    resolved = []
    for layer in layers:
        if layer in shapes:
            name = layer
        elif f"{layer}.weight" in shapes:
            name = f"{layer}.weight"
        else:
            ends = [n for n in shapes if n.endswith("." + layer)
                    or n.endswith("." + layer + ".weight")]
            if len(ends) > 1:
                raise ConfigError(f"{option} {layer!r} matches several "
                                  f"parameters of model {model_name!r}: {', '.join(ends)}; "
                                  f"give the full name")
            if not ends:
                close = difflib.get_close_matches(layer, candidates, n=3, cutoff=0.4)
                hint = (f"did you mean {', '.join(close)}?" if close else
                        f"its conv and linear weights: {', '.join(candidates[:6])}")
                raise ConfigError(f"{option}: model {model_name!r} has "
                                  f"no layer {layer!r}; {hint}")
            name = ends[0]
        if len(shapes[name]) not in SPARSE_NDIMS:
            raise ConfigError(f"{option} {layer!r}: {name} has shape "
                              f"{shapes[name]}; Γ applies to conv and linear weights only")
        resolved.append(name)
    return list(dict.fromkeys(resolved))


def make_slbi(model: nn.Module, model_name: str, *, adam: bool, lr: float, kappa: float,
              mu: float, layers: Sequence[str], momentum: float = 0.0,
              weight_decay: float = 0.0) -> SLBI:
    """DessiLBI (or its Adam variant) over `model`, with Γ on `layers` (see
    `resolve_sparse_layers`)."""
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    sparse = resolve_sparse_layers(layers, shapes, model_name)
    return SLBI(slbi_param_groups(model, sparse), lr=lr, kappa=kappa, mu=mu,
                momentum=momentum, weight_decay=weight_decay, adam=adam)


__all__ = [
    "SLBI", "SLBI_OPTIMIZERS", "SPARSE_NDIMS", "default_sparse_layers", "group_norms",
    "group_shrink", "make_slbi", "resolve_sparse_layers", "shrink", "slbi_param_groups",
    "soft_threshold",
]
