"""Models from outside the table: `torchvision:NAME` (torchvision's own `get_model`),
`timm:NAME` (`timm.create_model`, an optional extra) and `package.module:factory` (a function
returning an `nn.Module`), built with keyword options, without pretrained weights unless an
option asks for them.

The number of classes comes from the data (`data_classes`): torchvision and timm models take
it as `num_classes`, timm also the images' channels as `in_chans`, a factory `num_classes` if
it has such a parameter; an option given explicitly wins, and the dry forward before training
(`landscape.sweep.plans.check_input`) refuses a model whose output does not fit the data.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Callable

from torch import nn

from landscape.errors import ConfigError, first_line

TORCHVISION, TIMM = "torchvision:", "timm:"
# package.module:factory, each part a Python identifier.
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
FORMS = "torchvision:NAME, timm:NAME or package.module:factory"


def is_external(name: str) -> bool:
    """Whether `name` names a model outside the table (by its form, not checked yet)."""
    return name.startswith((TORCHVISION, TIMM)) or bool(_FACTORY.match(name))


def check_external_name(name: str) -> None:
    """ConfigError in one line for a name of no form this module builds."""
    for prefix in (TORCHVISION, TIMM):
        if name.startswith(prefix) and not name[len(prefix):].strip():
            raise ConfigError(f"model {name!r} names no {prefix[:-1]} model; e.g. "
                              f"{prefix}resnet18")
    if not is_external(name):
        raise ConfigError(f"unknown model {name!r}: not in the model table, nor "
                          f"{FORMS}")


def external_options(name: str, options: dict[str, Any], *, data_classes: int | None = None,
                     data_channels: int | None = None) -> dict[str, Any]:
    """`options` with the data's class count as `num_classes` where model `name` takes it
    (and, for timm, the images' channels as `in_chans`), unless they set them."""
    options = dict(options)
    if data_classes is not None and _builder(name)[1]("num_classes"):
        options.setdefault("num_classes", data_classes)
    if data_channels is not None and name.startswith(TIMM):
        options.setdefault("in_chans", data_channels)
    return options


def build_external(name: str, options: dict[str, Any]) -> nn.Module:
    """The model `name` (`torchvision:NAME`, `timm:NAME` or `package.module:factory`) built
    with `options` (`external_options`: with the data's class count)."""
    check_external_name(name)
    builder, _ = _builder(name)
    try:
        model = builder(**options)
    except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items())) or "no options"
        raise ConfigError(f"model {name!r} cannot be built with {given} "
                          f"({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {name!r}: the factory returned a {type(model).__name__}, "
                          f"not a torch.nn.Module")
    return model


def source_of(name: str) -> str:
    """Where model `name` comes from, with its version: 'torchvision 0.29.1: resnet18',
    'timm 1.0.31: resnet18', 'module nets (path/to/nets.py): make_net'."""
    if name.startswith(TORCHVISION):
        import torchvision

        return f"torchvision {torchvision.__version__}: torchvision.models.get_model" \
               f"({name[len(TORCHVISION):]!r})"
    if name.startswith(TIMM):
        timm = _import_timm(name)
        return f"timm {timm.__version__}: timm.create_model({name[len(TIMM):]!r})"
    module_name, _, factory = name.partition(":")
    module = _import_module(module_name, name)
    version = getattr(module, "__version__", None)
    return (f"module {module_name}{f' {version}' if version else ''} "
            f"({getattr(module, '__file__', '?')}): {factory}")


def _builder(name: str) -> tuple[Callable[..., Any], Callable[[str], bool]]:
    """The function that builds `name` and whether it takes a keyword."""
    if name.startswith(TORCHVISION):
        from torchvision import models

        arch = name[len(TORCHVISION):]
        known = models.list_models()
        if arch not in known:
            raise ConfigError(f"torchvision has no model {arch!r}{_close(arch, known)}")
        return (lambda **options: models.get_model(arch, **options)), lambda key: True
    if name.startswith(TIMM):
        timm = _import_timm(name)
        arch = name[len(TIMM):]
        if not timm.is_model(arch.partition(".")[0]):
            raise ConfigError(f"timm has no model {arch!r}"
                              f"{_close(arch, timm.list_models())}")
        return (lambda **options: timm.create_model(arch, **options)), lambda key: True
    module_name, _, factory_name = name.partition(":")
    factory = getattr(_import_module(module_name, name), factory_name, None)
    if not callable(factory):
        raise ConfigError(f"module {module_name!r} has no function {factory_name!r} "
                          f"(--model {name})")
    return factory, lambda key: _takes(factory, key)


def _takes(factory: Callable[..., Any], key: str) -> bool:
    """Whether `factory` has a parameter named `key` (a **kwargs does not count: where it
    goes is unknown)."""
    try:
        return key in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _import_module(module_name: str, name: str):
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # an import runs the module's code: any error means the same here
        raise ConfigError(f"cannot import module {module_name!r} for model {name!r} "
                          f"({type(exc).__name__}: {first_line(exc)}); put its folder on "
                          f"PYTHONPATH") from None


def _import_timm(name: str):
    try:
        import timm
    except ImportError:
        raise ConfigError(f"model {name!r} needs timm, an optional extra: pip install "
                          f"'bn-landscape[timm]' (or pip install timm)") from None
    return timm


def _close(arch: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(arch, list(known), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


__all__ = ["FORMS", "TIMM", "TORCHVISION", "build_external", "check_external_name",
           "external_options", "is_external", "source_of"]
