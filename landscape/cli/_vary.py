"""`--vary NAME=V1,V2,...`: an axis of a record as text, parsed into the field's own type
(landscape.config.axes checks the name and the values)."""

from __future__ import annotations

import types
import typing
from typing import Any

import click

from landscape.config.axes import check_variable, flat_name
from landscape.config.record import flat_field_type, flat_keys
from landscape.errors import ConfigError

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")

VARY_HELP = ("Vary a configuration field over several values: NAME=V1,V2 (repeatable; e.g. "
             "--vary batch_size=128,256 --vary norm_placement=conv,all). Runs are the product "
             "of the axes with the models, lrs and seeds; NAME is the field's name as "
             "`landscape info` lists the configuration (optim.batch_size also works); 'none' "
             "is None where the field allows it.")


def parse_vary(texts: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    """{'batch_size': (128, 256), ...} from ('batch_size=128,256', ...), in the order given."""
    axes: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise click.ClickException(f"--vary takes NAME=V1,V2 (e.g. batch_size=128,256), "
                                       f"got {text!r}")
        key = flat_name(name.strip(), flat_keys())
        check_variable(key)  # before its values are read as the field's type
        if key in axes:
            raise ConfigError(f"{key} is varied twice; give all its values in one --vary "
                              f"{key}=A,B")
        axes[key] = tuple(_parse(key, item.strip()) for item in values.split(","))
    return axes


def parse_options(texts: tuple[str, ...]) -> dict[str, Any]:
    """{'num_classes': 100, 'stem': 'imagenet'} from ('num_classes=100', 'stem=imagenet'):
    --model-option KEY=VALUE, each VALUE a whole number, a number, true/false, none or text."""
    options: dict[str, Any] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier() or not value:
            raise click.ClickException(f"--model-option takes KEY=VALUE (e.g. num_classes=100), "
                                       f"got {text!r}")
        if key in options:
            raise click.ClickException(f"--model-option {key} is given twice")
        options[key] = _literal(value)
    return options


def _literal(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse(key: str, text: str) -> Any:
    kind = flat_field_type(key)
    options = _union(kind)
    if key == "norm":
        return text  # "none" is a kind here (no normalization), not None (the model's own)
    if text.lower() == "none" and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        value = _as(option, text)
        if value is not _FAIL:
            return value
    raise ConfigError(f"--vary {key}: {text!r} is not {_describe(options)}")


_FAIL = object()


def _union(kind: Any) -> tuple:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return (kind,)


def _as(kind: Any, text: str) -> Any:
    """`text` as a value of `kind`, or _FAIL."""
    if typing.get_origin(kind) is typing.Literal:
        return text if text in typing.get_args(kind) else _FAIL
    if kind is bool:
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else _FAIL
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            return _FAIL
    if kind is str:
        return text
    if typing.get_origin(kind) is tuple or kind is tuple:
        raise ConfigError(f"--vary cannot give values of a list field on the command line "
                          f"({text!r}); vary it from Python: RecordConfig(axes={{...}})")
    return _FAIL


def _describe(options: tuple) -> str:
    words = []
    for option in options:
        if typing.get_origin(option) is typing.Literal:
            words.append("one of " + ", ".join(map(str, typing.get_args(option))))
        elif option is type(None):
            words.append("none")
        else:
            words.append({int: "a whole number", float: "a number", bool: "true or false",
                          str: "text"}.get(option, str(option)))
    return " or ".join(words)
