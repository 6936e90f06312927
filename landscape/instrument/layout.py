"""What a run will record, read from its model: the tapped parameters and their shapes, the
probed layers, the kept weights' entries, and the normalization a network has. Shared by
`landscape record` (`landscape.sweep.plans`, every run planned before the file exists) and
`landscape.Recorder` (a user's run, laid out at its first step)."""

from __future__ import annotations

import difflib

from torch import nn

from landscape.config.recording import FINAL_TAP
from landscape.errors import ConfigError, field_ref

# The normalization layers a network may have, by the kind a run stores as its `norm`.
_NORM_LAYERS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("bn", (nn.modules.batchnorm._BatchNorm,)),
    ("gn", (nn.GroupNorm,)),
    ("ln", (nn.LayerNorm,)),
    ("in", (nn.modules.instancenorm._InstanceNorm,)),
)


def parameter_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def resolve_taps(taps: tuple[str, ...], model: nn.Module, model_name: str) -> tuple[str, ...]:
    """The parameters a run taps: "final" stands for the weight of the model's last linear
    layer (classifier.fc3.weight in VGG-A, fc.weight in the ResNets, layers.fc25.weight in the
    deep linear network)."""
    if FINAL_TAP not in taps:
        return taps
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ConfigError(f"model {model_name!r} has no linear layer for "
                          f"{field_ref('recording.taps')} {FINAL_TAP}; name a parameter instead")
    return tuple(dict.fromkeys(f"{linear[-1]}.weight" if t == FINAL_TAP else t for t in taps))


def check_taps(taps: tuple[str, ...], shapes: dict[str, tuple[int, ...]],
               model_name: str) -> None:
    for tap in taps:
        if tap not in shapes:
            close = difflib.get_close_matches(tap, list(shapes), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else \
                f"e.g. {', '.join(list(shapes)[-4:])}"
            raise ConfigError(f"unknown tap {tap!r} for model {model_name!r}; {hint}")


def detect_norm(model: nn.Module) -> str:
    """The normalization kind of `model`'s layers ("bn", "gn", "ln", "in"; "none" without any):
    the most common one when it has several kinds."""
    counts = {kind: sum(isinstance(m, types) for m in model.modules())
              for kind, types in _NORM_LAYERS}
    kind, count = max(counts.items(), key=lambda item: item[1])
    return kind if count else "none"
