"""Every configuration field checked against its type annotation as the dataclass is built, so
that a value of the wrong type is one `ConfigError` naming the field, what was given and what
is expected, the same line the command line gives, instead of a TypeError from deep inside a
run, or worse a wrong value that passes (`flip="no"` read as true, `max_steps=True` as one step,
`models="vgg"` as the models 'v', 'g', 'g').

The check reads the annotations (`typing.get_type_hints`), so a field added later is checked
without a word here. What a type cannot say (ranges, lengths, which names exist) stays in each
part's `validate`; `check_finite` adds, after those, that no float anywhere is NaN or infinite.

Accepted, and normalized: a whole number where a float is expected (as float), numpy scalars
(as Python's), a list where a tuple is expected (as a tuple), a mapping for a nested dataclass
(as that dataclass, the way the record's JSON gives it back). Refused: bool where a number is
expected (True is not 1 here), text or a mapping where a list is expected, a float where a
whole number is expected (100.0 steps is refused, not rounded).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import numbers
import types
import typing
from typing import Any, Mapping

import numpy as np

from landscape.errors import ConfigError, field_ref as ref

_MISSING = object()


def check_field_types(obj: Any, prefix: str) -> None:
    """Check (and normalize, see the module docstring) every field of the frozen dataclass
    instance `obj`; `prefix` is its path in RecordConfig ("optim.", "recording.probe.")."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        conformed = conform(value, hints.get(f.name, Any), prefix + f.name)
        if conformed is not value:
            object.__setattr__(obj, f.name, conformed)


def conform(value: Any, hint: Any, path: str) -> Any:
    """`value` as a value of type `hint` (normalized), or ConfigError naming `path`."""
    result = _conform(value, hint, path)
    if result is _MISSING:
        raise ConfigError(f"{ref(path)} must be {describe(hint)}, got {_shown(value)}",
                          field=path)
    return result


def _conform(value: Any, hint: Any, path: str) -> Any:
    """The normalized value, or _MISSING when it is not of type `hint`."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            return None if type(None) in options else _MISSING
        for option in options:
            if option is not type(None):
                result = _conform(value, option, path)
                if result is not _MISSING:
                    return result
        return _MISSING
    if hint is type(None):
        return None if value is None else _MISSING
    if origin is typing.Literal:
        # Text here; which texts is the part's validate (it names the valid ones its own way).
        return value if isinstance(value, str) else _MISSING
    if hint is bool:
        return bool(value) if isinstance(value, (bool, np.bool_)) else _MISSING
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
        return int(value) if ok else _MISSING
    if hint is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        return float(value) if ok else _MISSING
    if hint is str:
        return value if isinstance(value, str) else _MISSING
    if origin is tuple or hint is tuple:
        return _conform_tuple(value, typing.get_args(hint), path)
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        # Keyword options (a builder's): text keys; the values are the builder's to check.
        ok = isinstance(value, collections.abc.Mapping) and all(isinstance(k, str)
                                                                 for k in value)
        return dict(value) if ok else _MISSING
    if dataclasses.is_dataclass(hint):
        return _conform_dataclass(value, hint, path)
    return value  # an annotation this module does not know: the part's validate checks it


def _conform_tuple(value: Any, args: tuple, path: str) -> Any:
    if not isinstance(value, (list, tuple)):
        return _MISSING
    if not args:
        return tuple(value)
    # tuple[X, ...] or tuple[X, Y, Z]: the items' type; the length is the part's rule (a
    # one-channel dataset takes one mean, a three-channel one three).
    item = args[0]
    items = []
    for element in value:
        result = _conform(element, item, path)
        if result is _MISSING:
            return _MISSING
        items.append(result)
    return tuple(items)


def _conform_dataclass(value: Any, cls: type, path: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        return _MISSING
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise ConfigError(f"{ref(path)} has no field {unknown[0]!r}; its fields: "
                          f"{', '.join(sorted(known))}", field=path)
    return cls(**value)


def describe(hint: Any) -> str:
    """What a value of type `hint` is, in words: 'a whole number or None', 'a list of numbers'."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple or hint is tuple:
        args = typing.get_args(hint)
        if not args:
            return "a list"
        item = describe(args[0]).removeprefix("a ").removeprefix("an ")
        plural = {"whole number": "whole numbers", "number": "numbers", "text": "texts",
                  "true or false": "true/false values"}.get(item, item)
        if len(args) > 1 and args[1] is not Ellipsis:
            return f"a list of {len(args)} {plural}"
        return f"a list of {plural}"
    if dataclasses.is_dataclass(hint):
        return f"a {hint.__name__} (or a mapping of its fields)"
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        return "a mapping of names to values"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text",
            Any: "anything"}.get(hint, getattr(hint, "__name__", str(hint)))


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_finite(obj: Any, prefix: str) -> None:
    """Refuse NaN and infinite floats anywhere in the dataclass instance `obj` (nested
    dataclasses and tuples included): no setting means NaN, and an infinite one ends a run in
    an overflow (after the part's own range checks, whose messages are more specific)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue  # checked by its own validate
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{ref(prefix + f.name)} must be a finite number, got "
                                  f"{','.join(map(str, values))}", field=prefix + f.name)
