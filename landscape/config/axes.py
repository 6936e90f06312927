"""Axes: configuration fields a record varies over several values, beside its models, learning
rates and seeds (`RecordConfig(axes={"batch_size": (128, 256)})`, `--vary batch_size=128,256`).

The runs of a record are the product of the axes' levels with the models, learning rates and
seeds. A run's effective configuration is the record's with its levels applied (and only its own
model and learning rate): `RecordConfig.run_config`. An axis that no value of which a model
accepts (BatchNorm's placement for a network without BatchNorm) does not apply to that model:
its runs keep the record's value, once, and serve every level of that axis as its reference.

Some fields cannot vary within one record, because every run of a record shares them (the
data, the device, the arithmetic) or because they say what is measured, which must be the same
for the runs a report compares (record such settings separately and combine the records).
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from landscape.errors import ConfigError

# Fields that cannot vary within one record, and why (the end of the one-line refusal).
_SHARED = "every run of a record shares it"
_MEASURED = ("it says what is measured, which the runs a report compares share; record each "
             "value separately and combine the records (landscape plot a.h5 b.h5)")
FIXED_FIELDS: dict[str, str] = {
    "models": "models are a dimension of every record already: list them with --model",
    "lrs": "learning rates are a dimension of every record already: list them with --lrs",
    "seeds": "seeds are a dimension of every record already: list them with --seeds",
    "axes": "axes cannot vary",
    **dict.fromkeys(("dataset", "data_dir", "download", "verify_md5", "subset", "val_split"),
                    f"{_SHARED} (the data and its validation split)"),
    "device": f"{_SHARED} (the device)",
    "model_options": ("a mapping of builder keywords is not one value to vary; record each "
                      "set of --model-option separately and combine the records"),
    **dict.fromkeys(("allow_tf32", "precision", "memory_format", "reproducible", "threads"),
                    f"{_SHARED} (the training arithmetic)"),
    **dict.fromkeys(("flush_seconds", "checkpoint_seconds"),
                    "it changes when rows are written, not what a run measures"),
    **dict.fromkeys(("taps", "tap_every", "tap_dtype", "probe", "ics_every", "ics_layers",
                     "activation_every", "activation_layers", "save_weights_every",
                     "save_weights_at", "save_final_weights", "hessian", "keep_best"),
                    _MEASURED),
}


@dataclass(frozen=True)
class Axis:
    """One varied field: its flat name (as in the record's configuration, e.g. "batch_size")
    and its values, in the order given (the runs' order and the reports' level order)."""

    name: str
    values: tuple[Any, ...]


def flat_name(name: str, known: Iterable[str]) -> str:
    """The flat key of `name`, which may also be given as a field path ("optim.batch_size");
    ConfigError naming the closest keys for an unknown one."""
    known = list(known)
    key = name.rsplit(".", 1)[-1].strip()
    if key in known:
        return key
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"cannot vary {name!r}: no configuration field has that name{hint}")


def check_variable(key: str) -> None:
    """ConfigError in one line for a flat key that cannot vary within one record."""
    if key in FIXED_FIELDS:
        raise ConfigError(f"cannot vary {key} within one record: {FIXED_FIELDS[key]}")


def normalize_axes(axes: Mapping[str, Sequence[Any]] | Sequence[Axis | tuple[str, Sequence]]
                   | None, known: Iterable[str]) -> tuple[Axis, ...]:
    """Axes from a mapping {name: values}, a sequence of Axis or (name, values) pairs; names
    are checked against `known` (the flat keys) and FIXED_FIELDS, values for count and
    repeats. The values' own validity is checked by the runs' configurations."""
    if axes is None or (isinstance(axes, (Mapping, list, tuple)) and not axes):
        return ()
    if isinstance(axes, Mapping):
        items = list(axes.items())
    elif isinstance(axes, (list, tuple)) and all(
            isinstance(a, Axis) or (isinstance(a, (list, tuple)) and len(a) == 2) for a in axes):
        items = [(a.name, a.values) if isinstance(a, Axis) else tuple(a) for a in axes]
    else:
        raise ConfigError(f"axes must be a mapping {{name: values}} or a list of (name, values) "
                          f"pairs, got {axes!r:.60}", field="axes")
    out: list[Axis] = []
    for name, values in items:
        key = flat_name(str(name), known)
        check_variable(key)
        if any(a.name == key for a in out):
            raise ConfigError(f"{key} is varied twice; give all its values in one --vary "
                              f"{key}=A,B")
        values = tuple(_hashable(v) for v in (values if isinstance(values, (list, tuple))
                                               else (values,)))
        if len(values) < 2:
            raise ConfigError(f"--vary {key} needs at least two values to compare, got "
                              f"{len(values)}; set one value with its own option instead")
        if len(set(map(_key, values))) != len(values):
            raise ConfigError(f"a value of {key} is listed twice: "
                              f"{', '.join(map(format_value, values))}")
        out.append(Axis(key, values))
    return tuple(out)


def _hashable(value: Any) -> Any:
    # JSON gives lists back where the configuration holds tuples (mean, std, ...).
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _key(value: Any) -> tuple[str, Any]:
    # 1 and True are equal in Python but different settings; NaN is no setting at all.
    if isinstance(value, float) and math.isnan(value):
        raise ConfigError("NaN is not a value an axis can take")
    return type(value).__name__, value


def levels(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis varying slowest (as the runs are
    planned and reported); [{}] without axes."""
    return [dict(zip((a.name for a in axes), combo))
            for combo in itertools.product(*(a.values for a in axes))]


def format_value(value: Any) -> str:
    """A value as a run id and a report show it: numbers in %g, booleans and None in words,
    tuples joined by '+'; '/' (which HDF5 reads as a path) replaced."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "+".join(map(format_value, value))
    return str(value).replace("/", "_")


def levels_text(factors: Mapping[str, Any]) -> str:
    """'batch_size=128, norm_placement=conv' ('' without factors)."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in factors.items())


def to_json(axes: Sequence[Axis]) -> dict[str, list]:
    """The axes as the record's configuration stores them: {name: [values]}, in order."""
    return {a.name: [list(v) if isinstance(v, tuple) else v for v in a.values] for a in axes}


__all__ = ["Axis", "FIXED_FIELDS", "check_variable", "flat_name", "normalize_axes", "levels", "format_value",
           "levels_text", "to_json"]
