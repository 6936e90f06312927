"""The checks of a record's axes (`RecordConfig(axes=...)`, `--vary`): which models each applies
to, the number of runs counted before any level is enumerated, levels that are the same setting,
every run's configuration valid, and run ids that are distinct and short enough to name files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from landscape.config.axes import format_value, levels_text
from landscape.config.model_data import ModelConfig
from landscape.errors import ConfigError, field_ref as ref
from landscape.models import effective_options

if TYPE_CHECKING:
    from landscape.config.record import RecordConfig

# The most runs (models x learning rates x seeds x the axes' levels) one record holds.
MAX_RUNS = 1000
# The longest run id, in bytes: run ids name files (a Ray shard RUN.h5 and its side files, a
# filters figure RECORD-filters-RUN-LAYER.png), and a file name may have 255 bytes.
MAX_RUN_ID = 150


def check_axes(config: "RecordConfig") -> None:
    """Which models each axis applies to, and every run's configuration valid, with
    distinct run ids. An axis no value of which a model accepts (with the other fields at
    the record's values) does not apply to it: its runs keep the record's value."""
    scope = {}
    for axis in config.axes:
        errors = {m: [_refusal(config, m, {axis.name: v}) for v in axis.values]
                  for m in config.model.models}
        applies = tuple(m for m, errs in errors.items() if not all(errs))
        if not applies:
            first = next(e for errs in errors.values() for e in errs if e)
            raise ConfigError(f"no model takes --vary {axis.name}: {first.message}",
                              field=first.field)
        scope[axis.name] = applies  # a value refused here may suit other axes' levels
    object.__setattr__(config, "_axis_scope", scope)
    check_run_count(config)  # before a level is enumerated: their product can be huge
    _check_distinct_levels(config)
    for model in config.model.models:
        for factors in config.model_levels(model):
            error = _refusal(config, model, factors)
            if error is not None:
                raise ConfigError(f"{levels_text(factors)} for model {model}: "
                                  f"{error.message}", field=error.field)
    ids = [run_id(m, lr, s, f) for s, m, lr, f in config.grid()]
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"two runs would be named {twice!r}: give axis values that read "
                          f"differently")
    longest = max(ids, key=lambda i: len(i.encode()))
    if len(longest.encode()) > MAX_RUN_ID:
        raise ConfigError(f"the --vary levels make run ids of up to "
                          f"{len(longest.encode())} characters ({longest[:40]}...), more "
                          f"than {MAX_RUN_ID}, the most a run id may have (it names files: "
                          f"figures, Ray's shards); give shorter values", field="axes")

def _check_distinct_levels(config: "RecordConfig") -> None:
    """Refuse two levels of an axis that mean the same setting for a model (the model's
    default named and left out, `activation=relu,none`; an alias, `silu,swish`; a number
    given as int and float): their runs would be the same run twice."""
    for axis in config.axes:
        for model in config.axis_models(axis.name):
            seen: dict[Any, Any] = {}
            for value in axis.values:
                if _refusal(config, model, {axis.name: value}) is not None:
                    continue  # not a level of this model (refused for it on its own)
                key = _setting(config, model, axis.name, value)
                if key in seen:
                    raise ConfigError(
                        f"--vary {axis.name}: {format_value(seen[key])} and "
                        f"{format_value(value)} are the same setting for model {model}; "
                        f"give each setting once", field="axes")
                seen[key] = value


def check_run_count(config: RecordConfig) -> None:
    """Refuse more than MAX_RUNS runs, counted from the axes' sizes (nothing is enumerated):
    per model, its learning rates times the levels of the axes that apply to it (see
    `RecordConfig.grid`), times the seeds."""
    runs = 0
    for model in config.model.models:
        per_model = len(config.optim.lrs) * len(config.seeds)
        for axis in config.axes:
            if model in config.axis_models(axis.name):
                per_model *= len(axis.values)
        runs += per_model
    if runs > MAX_RUNS:
        axes = "".join(f" x --vary {a.name}" for a in config.axes)
        raise ConfigError(f"{runs:,} runs ({ref('model.models')} x {ref('optim.lrs')} x "
                          f"{ref('seeds')}{axes}) is more than {MAX_RUNS:,}, the most runs a "
                          f"record holds; split the sweep into several records",
                          field="model.models")


def run_id(model: str, lr: float, seed: int | None = None,
           factors: Mapping[str, Any] | None = None) -> str:
    """The HDF5 group name of the run of `model` at `lr`, e.g. 'vgg_bn_lr0.001'; with levels
    of axes 'vgg_bn_lr0.001_batch_size=128_norm_placement=conv'; with a seed (records of
    several seeds) ending in '_s2'."""
    levels_part = "".join(f"_{k}={format_value(v)}" for k, v in (factors or {}).items())
    return f"{model}_lr{lr:g}{levels_part}" + ("" if seed is None else f"_s{seed}")


# What None means for a field that is not a model option: torch's Adam betas.
_NONE_MEANS = {"betas": (0.9, 0.999)}


def _setting(config: RecordConfig, model: str, name: str, value: Any) -> Any:
    """What the level `value` of axis `name` sets for `model`, resolved (a model option to
    what the model is built with; None to what it means): equal for levels that are the same
    setting."""
    run = config.with_changes(axes=(), models=(model,), **{name: value})
    if name in ModelConfig.option_fields():
        return repr(sorted(effective_options(model, run.model.options()).items()))
    resolved = run.flat_values()[name]
    return repr(_NONE_MEANS.get(name, resolved) if resolved is None else resolved)


def _refusal(config: RecordConfig, model: str, factors: Mapping[str, Any]) -> ConfigError | None:
    """The ConfigError the configuration of `model`'s runs at `factors` raises (at every
    learning rate of the record), or None when it is valid."""
    try:
        config.with_changes(axes=(), models=(model,), **dict(factors))
    except ConfigError as error:
        return error
    return None
