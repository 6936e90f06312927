"""`landscape record`'s options turned into a `RecordConfig`: the defaults (or a resumed
record's configuration), then a preset, then the options given on the command line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from landscape.cli._hessian import hessian_config
from landscape.cli._names import END, is_end, taps_from_cli
from landscape.cli._practice import NORMALIZATION_OPTIONS, normalization_values
from landscape.cli._types import flatten
from landscape.cli._vary import parse_options, parse_vary
from landscape.config import ProbeConfig, RecordConfig, preset
from landscape.data.outside import IMAGEFOLDER
from landscape.errors import ConfigError
from landscape.sweep import resolve_device

_DEFAULT = RecordConfig()


def _weight_step(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--save-weights-at takes step numbers or '{END}', got {text!r}") \
            from None


def build_config(ctx: click.Context, preset_name: str | None, options: dict,
                 base: RecordConfig | None = None) -> RecordConfig:
    """Defaults (or `base`), then the preset, then the options given on the command line.

    Presets and options are applied to the flat dict of RecordConfig.to_dict."""
    values = (base or _DEFAULT).flat_values()
    if preset_name is not None:
        values.update(preset(preset_name))
    given = {name for name in options
             if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if preset_name is None and base is None:
        given = set(options)  # without a preset, every option's value (default or not) counts
    probe_changes, hessian_changes = {}, {}
    values.update(normalization_values(options, given))
    for name in [n for n in options if n in given]:  # in a fixed order: a set's varies
        value = options[name]
        if name in NORMALIZATION_OPTIONS:
            pass  # above
        elif name in ("color_jitter", "erase_scale") and value is None:
            pass  # not given: the base's
        elif name == "taps":
            values[name] = taps_from_cli(flatten(value))
        elif name in ("models", "ics_layers", "activation_layers", "slbi_layers"):
            values[name] = flatten(value)
        elif name == "model_options":
            if value:  # a preset's options are kept, those given replace theirs
                values[name] = {**(values.get(name) or {}), **parse_options(value)}
        elif name == "old_activations_every":
            pass  # below: after --activation-every, whatever the order of `given`
        elif name == "seed":
            if value is not None:
                if "seeds" in given and ctx.get_parameter_source("seeds") \
                        is not ParameterSource.DEFAULT:
                    raise ConfigError("give --seeds or --seed, not both")
                values["seeds"] = (value,)
        elif name == "seeds":
            if options.get("seed") is None:
                values["seeds"] = value
        elif name == "save_weights_at":
            steps = flatten(value, unique="--save-weights-at")
            ends = [is_end(s) for s in steps]
            values["save_final_weights"] = any(ends)
            values["save_weights_at"] = tuple(_weight_step(s) for s, e in zip(steps, ends)
                                              if not e)
        elif name == "no_taps":
            pass  # below: it wins over the default taps, whatever the order of `given`
        elif name == "no_verify":
            values["verify_md5"] = not value
        elif name == "tf32":
            values["allow_tf32"] = value
        elif name == "device":
            pass  # resolved below, always
        elif name == "vary":
            if value:  # a preset's axis of the same name is replaced, the others kept
                values["axes"] = {**_axes_dict(values.get("axes")), **parse_vary(value)}
        elif name == "data_dir":
            values["data_dir"] = None if value is None else str(value.resolve())
        elif name == "dataset" and value.startswith(IMAGEFOLDER):
            # The folder absolute, as data_dir's: --resume reads it from anywhere.
            values["dataset"] = IMAGEFOLDER + str(Path(value[len(IMAGEFOLDER):]).expanduser().resolve())
        elif name == "init_from" and value is not None:
            path, _, run = value.rpartition(":")  # the record's path absolute, as data_dir's
            values["init_from"] = f"{Path(path).resolve()}:{run}" if path else value
        elif name == "lr_milestones":
            values[name] = () if value is None else value
        elif name.startswith("probe_"):
            probe_changes[name] = value
        elif name.startswith("hessian_"):
            hessian_changes[name] = value
        else:
            values[name] = value
    if options.get("old_activations_every") is not None:
        values["activation_every"] = options["old_activations_every"]
    if options.get("no_taps") and "no_taps" in given:
        if "taps" in given and ctx.get_parameter_source("taps") is not ParameterSource.DEFAULT:
            raise ConfigError("give --tap or --no-taps, not both")
        values["taps"] = ()
    values["device"] = str(resolve_device(options["device"]))
    values["probe"] = _probe_config(values["probe"], probe_changes)
    values["hessian"] = hessian_config(values["hessian"], hessian_changes)
    return RecordConfig(**values)


def _axes_dict(axes) -> dict:
    """Axes as {name: values}, from a configuration's Axis tuple or a preset's mapping."""
    if not axes:
        return {}
    return dict(axes) if isinstance(axes, dict) else {a.name: a.values for a in axes}


def _probe_config(base: ProbeConfig, changes: dict) -> ProbeConfig:
    fields = {}
    for name, value in changes.items():
        if name == "probe_range":
            fields["low"], fields["high"] = value
        elif name == "probe_params":
            fields["params"] = flatten(value)
        else:
            fields[name.removeprefix("probe_")] = value
    return replace(base, **fields)
