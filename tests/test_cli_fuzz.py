"""Random option values of the right and the wrong types for every command (issue 24): never a
traceback, one `Error:` line when refused, and no input file changed.

The options come from click itself (each command's `params`), so a flag added later is fuzzed
too; values are drawn by the option's click type. Seeded and bounded: each command gets a fixed
number of trials on a tiny lenet5/MNIST record, in process (CliRunner)."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import click
import h5py
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.cli._types import CommaList
from landscape.models import MODELS

RUN = "lenet5_lr0.01"
# What keeps a trial fast when the fuzzed options leave it valid; fuzzed options come after
# these, and click keeps the last value of an option given twice.
BASELINE = {
    "record": ["--model", "lenet5", "--dataset", "mnist", "--lrs", "0.01", "--max-steps", "1",
               "--width", "0.125", "--batch-size", "16", "--device", "cpu", "-o", "{new}"],
    "info": [],
    "plot": ["-o", "{folder}/figures"],
    "summary": [],
    "presets": [],
    "surface": ["--run", RUN, "--step", "0", "--points", "3", "--dims", "1", "--images", "16",
                "--batch", "images", "--device", "cpu"],
    "prune": ["--run", RUN, "--layer", "conv1", "--fractions", "0,50", "--device", "cpu",
              "--out", "{folder}/prune.png"],
    "report": ["-o", "{folder}/report.html"],
    "export": ["-o", "{folder}/tables"],
}
# Options left out, and why: what they do is not this test's to do.
SKIPPED = {
    "download": "fetches a dataset from the internet",
    "executor": "--executor ray starts a Ray cluster (tens of seconds)",
}
TRIALS = {"record": 24, "info": 6, "plot": 4, "summary": 12, "presets": 2, "surface": 12,
          "prune": 8, "report": 3, "export": 6}
DEFAULT_TRIALS = 6  # a command added later, with no baseline of its own
CONTEXT = click.Context(main)
COMMAND_NAMES = main.list_commands(CONTEXT)  # every command, the lazily imported ones too
SEED = 20241

RIGHT = {
    int: ["0", "1", "2", "3"],
    float: ["0.5", "0.01", "1", "2", "0"],
    str: ["final", "conv1", "lenet5", RUN, "cpu", "auto", "0", "fc1", "features.conv1.weight"],
}
WRONG = {
    int: ["-1", "x", "1.5", "nan", "", "99999999999999999999", "18446744073709551616", "1e3",
          "-9223372036854775809", "0x10"],
    float: ["nan", "inf", "-inf", "-1", "1e308", "-1e308", "1e-320", "x", "", "1,2"],
    str: ["", "a/b", ",", "nan", "\u00e9\u00e9", "x" * 300, "none", "-", "0,0", "final,final",
          "vgg,lenet5"],
}
LISTS = {
    int: ["0,1", "3", "1,1", ",", "1,,2", "x", "-1,2", "99999999999999999999", "2,1"],
    float: ["0.01,0.02", "0.5,4", "0.1", "10,10", "nan,1", "inf", "1,x", ",", "-1,1", "1,-1",
            "0,120", "1e308,1e308"],
    str: ["final", "0,final", "0,0", "final,final", "lenet5", f"{RUN},{RUN}", "conv1", "a,,b",
          ",", "nope", "fc9"],
}
PATHS = ["{record}", "{missing}/r.h5", "{text}", "{foreign}", "{folder}", "", "{new}"]


def _item_kind(param_type: click.ParamType):
    if isinstance(param_type, (click.IntRange, click.types.IntParamType)):
        return int
    if isinstance(param_type, (click.FloatRange, click.types.FloatParamType)):
        return float
    return str


def draw_value(param: click.Parameter, rng: random.Random) -> str:
    """A value for `param`: of its type (in or out of range) or of another type."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return rng.choice([*kind.choices, *kind.choices, "bogus", ""])
    if isinstance(kind, CommaList):
        return rng.choice(LISTS[kind.item])
    if isinstance(kind, click.Path):
        return rng.choice(PATHS)
    item = _item_kind(kind)
    pool = RIGHT[item] if rng.random() < 0.45 else WRONG[item] + WRONG[str][:4]
    return rng.choice(pool)


def draw_arguments(command: click.Command, name: str, rng: random.Random) -> list[str]:
    """1 to 3 fuzzed options (flags sometimes given), then the command's arguments."""
    options = [p for p in command.params if isinstance(p, click.Option)
               and p.name not in SKIPPED]
    args: list[str] = []
    for param in rng.sample(options, k=min(len(options), rng.randint(1, 3))):
        if param.is_flag:
            opts = param.opts + list(param.secondary_opts)
            args.append(rng.choice(opts))
            continue
        args += [rng.choice(param.opts), draw_value(param, rng)]
    for param in command.params:
        if isinstance(param, click.Argument):
            if name == "summary":
                values = [*rng.sample(list(MODELS), 2), "resnet99", ""]
            else:
                values = ["{record}"] * 6 + PATHS
            args.append(rng.choice(values))
    return [*BASELINE.get(name, []), *args]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny record that kept the weights of step 0 and its last, plus files that are not
    records."""
    root = tmp_path_factory.mktemp("fuzz-inputs")
    record = root / "record.h5"
    result = CliRunner().invoke(main, ["record", *BASELINE["record"][:-2], "--max-steps", "2",
                                       "--save-weights-at", "0,final", "-o", str(record)])
    assert result.exit_code == 0, result.output
    text = root / "notes.txt"
    text.write_text("not a record\n")
    foreign = root / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    return {"record": record, "text": text, "foreign": foreign}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_random_options_give_one_line_or_success(name, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty path is the current folder: keep what lands there
    command = main.get_command(CONTEXT, name)
    rng = random.Random(f"{SEED}-{name}")
    originals = {key: _digest(path) for key, path in inputs.items()}
    for trial in range(TRIALS.get(name, DEFAULT_TRIALS)):
        folder = tmp_path / f"t{trial}"
        folder.mkdir()
        record = folder / "record.h5"  # a copy per trial: a surface may be added to it
        shutil.copyfile(inputs["record"], record)
        places = {"record": record, "text": inputs["text"], "foreign": inputs["foreign"],
                  "folder": folder, "missing": folder / "missing", "new": folder / "new.h5"}
        args = [a.format(**places) for a in draw_arguments(command, name, rng)]
        before = _digest(record)
        result = CliRunner().invoke(main, [name, *args])
        shown = f"landscape {name} {' '.join(args)}\n{result.output}"
        # click's usage errors and our own errors end in SystemExit; anything else escaped.
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            shown + repr(result.exception)
        assert "Traceback" not in result.output, shown
        if result.exit_code not in (0, 130):
            errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1, shown
            assert _digest(record) == before, shown  # a refused command changed nothing
        if name not in ("record", "surface"):  # the commands that only read
            assert _digest(record) == before, shown
        assert {key: _digest(path) for key, path in inputs.items()} == originals, shown


# The Python API (issue 30): random values of the right and the wrong types for every field of
# RecordConfig (read from its flat keys, so a field added later is fuzzed too) and for the
# arguments of landscape.record. Each is accepted with values of the annotated types, or refused
# with one ConfigError line; never a TypeError, AttributeError or another error from inside.

API_SEED = 20301
API_TRIALS = 300
API_BASE = dict(models=("lenet5",), dataset="mnist", lrs=(0.01,), max_steps=1, width=0.125,
                batch_size=16, device="cpu")
API_VALUES = [None, True, False, 0, 1, -1, 3, 16, 0.5, 0.1, -0.5, 1.5, 1e308, float("nan"),
              float("inf"), "", "x", "none", "0.1", "vgg_light", "relu", "sgd", "cpu",
              "lenet5", [], [1], [0.1, 0.2], [0.5, 0.5, 0.5], ["a", "b"], (1, "x"), {},
              {"every": 2}, {"x": 1}, b"bytes", object()]


def _api_value(rng: random.Random, key: str = ""):
    """A value for flat key `key`: often of its type (its default, changed a little; a list for a
    tuple; a numpy scalar for a number), otherwise anything from API_VALUES."""
    import numpy as np
    from landscape.config import RecordConfig

    defaults = RecordConfig(**API_BASE).flat_values()
    if key in defaults and rng.random() < 0.4:
        value = defaults[key]
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, bool) or value is None:
            return value if rng.random() < 0.5 else not value if isinstance(value, bool) else 0
        if isinstance(value, int):
            return np.int64(value + rng.randint(0, 2)) if rng.random() < 0.3 else value + 1
        if isinstance(value, float):
            return np.float32(value) if rng.random() < 0.3 else value * rng.choice([0.5, 2])
        return value
    return rng.choice(API_VALUES)


def _assert_typed(config) -> None:
    """Every field of an accepted configuration holds a value of its annotated type."""
    import dataclasses
    import typing

    from landscape.config.field_types import conform

    for part in (config.model, config.data, config.optim, config.recording,
                 config.recording.probe, config.recording.hessian):
        hints = typing.get_type_hints(type(part))
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            assert conform(value, hints[f.name], f.name) == value, (f.name, value)
            assert not isinstance(value, list), (f.name, value)


def test_random_config_values_are_one_config_error():
    from landscape.config import RecordConfig
    from landscape.config.record import flat_keys
    from landscape.errors import ConfigError

    rng = random.Random(API_SEED)
    keys = [*flat_keys(), "seed", "model", "data", "optim", "recording"]
    accepted = 0
    for trial in range(API_TRIALS):
        changes = {key: _api_value(rng, key) for key in rng.sample(keys, rng.randint(1, 3))}
        if "seed" in changes and "seeds" in changes:
            changes.pop("seeds")
        shown = f"RecordConfig({changes})"
        try:
            config = RecordConfig(**{**API_BASE, **changes})
        except ConfigError as exc:
            text = str(exc)
            assert text and "\n" not in text, shown
            continue
        except TypeError as exc:  # only a keyword RecordConfig does not have
            assert "unexpected keyword argument" in str(exc), (shown, exc)
            continue
        accepted += 1
        _assert_typed(config)
        assert RecordConfig.from_dict(config.to_dict()) == config, shown
    assert 10 < accepted < API_TRIALS  # both kinds were drawn


def test_random_record_arguments_give_one_line_or_a_record(tmp_path, one_thread):
    """landscape.record with fuzzed configurations that are accepted (short runs only) and
    fuzzed arguments: a record, or one LandscapeError line; the inputs left as they were."""
    import landscape
    from landscape.config import RecordConfig
    from landscape.errors import ConfigError, LandscapeError

    rng = random.Random(API_SEED + 1)
    fields = ["probe", "ics_every", "mean", "std", "color_jitter", "rotation", "activation",
              "dropout", "flip", "crop_padding", "erase_prob", "optimizer", "momentum",
              "label_smoothing", "l1", "l2", "taps", "save_weights_at", "precision", "subset"]
    arguments = {"overwrite": [True, False, "yes", 1, None],
                 "executor": [None, None, "ray", 3, object()],
                 "should_stop": [None, lambda: False, "no", 0],
                 "progress": [None, None, "bar", 1]}
    records, refusals = 0, []
    for trial in range(12):
        changes = {key: _api_value(rng, key) for key in rng.sample(fields, 2)}
        try:
            config = RecordConfig(**{**API_BASE, **changes})
        except ConfigError:
            config = RecordConfig(**API_BASE)
        kwargs = {k: rng.choice(v) for k, v in arguments.items() if rng.random() < 0.15}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        out = rng.choice([tmp_path / f"r{trial}.h5"] * 3 + [str(tmp_path / f"s{trial}.h5"), 5,
                                                            None, tmp_path, ""])
        config_arg = rng.choice([config] * 6 + [config.to_dict(), "config"])
        shown = f"record({config_arg!r:.200}, {out!r}, {kwargs})"
        try:
            landscape.record(config_arg, out, **kwargs)
        except LandscapeError as exc:
            assert str(exc) and "\n" not in str(exc), shown
            refusals.append(str(exc))
            continue
        records += 1
        assert landscape.open_record(out).runs, shown
    assert records >= 2, refusals
