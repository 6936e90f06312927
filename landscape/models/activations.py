"""The activation functions a model can put after its normalizations: torch's own modules.

Every image model takes `activation=` (one of ACTIVATIONS); relu is the default and the
published networks'. Activations have no parameters, so the choice leaves the parameter names
(and the records' layouts) unchanged.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from landscape.errors import ConfigError

LEAKY_SLOPE = 0.01  # torch's default negative slope, the reports' "Leaky ReLU"

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,  # = swish with beta 1 (x * sigmoid(x))
    "mish": nn.Mish,
    "tanh": nn.Tanh,
}
# Another name the reports use for silu.
ALIASES = {"swish": "silu"}
ACTIVATIONS = tuple(_ACTIVATIONS) + tuple(ALIASES)


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}",
                          field="model.activation")


def make_activation(name: str = "relu", *, inplace: bool = False) -> nn.Module:
    """A fresh activation module. `inplace` applies to relu only (VGG's own ReLUs are in place;
    the other kinds are never, so a normalization that keeps its output for backward is safe)."""
    check_activation(name)
    name = ALIASES.get(name, name)
    if name == "relu":
        return nn.ReLU(inplace=inplace)
    return _ACTIVATIONS[name]()
