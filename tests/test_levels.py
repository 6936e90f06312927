"""Levels and combinations (issue 30): counted before they are enumerated, refused past the
limit in one line; a report over records that differ in many settings builds only the
combinations the runs hold; levels that mean the same setting, run ids too long for a file
name and one run held by two records are refused."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time
import tracemalloc
from types import SimpleNamespace

import h5py
import pytest
from click.testing import CliRunner

from landscape.cli import main

from conftest import recorded
from landscape.config import RecordConfig
from landscape.errors import ConfigError

RECORD = ["record", "--dataset", "mnist", "--model", "lenet5", "--lrs", "0.01", "--batch-size",
          "16", "--width", "0.125", "--max-steps", "1", "--device", "cpu"]


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail (instead of hanging the suite) when the block takes longer than `seconds`."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code != 0 and len(errors) == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return errors[0]


@pytest.fixture(scope="module")
def base(tmp_path_factory, one_thread):
    return recorded(tmp_path_factory.mktemp("levels") / "base.h5", RECORD)


def test_many_axes_are_counted_not_enumerated():
    """5 axes of 30 levels: 24 M runs, refused in one line in seconds and a few MB (the levels
    were built before they were counted, and the process died of memory)."""
    axes = [f"--vary={name}={','.join(values)}" for name, values in (
        ("batch_size", [str(16 + i) for i in range(30)]),
        ("l1", [f"{i}e-7" for i in range(30)]),
        ("l2", [f"{i}e-6" for i in range(30)]),
        ("weight_decay", [f"{i}e-5" for i in range(30)]),
        ("label_smoothing", [f"{i / 100}" for i in range(30)]))]
    tracemalloc.start()
    start = time.monotonic()
    with time_limit(60):
        result = CliRunner().invoke(main, [*RECORD, *axes, "-o", "never.h5"])
    seconds = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    line = error_line(result)
    assert "24,300,000 runs" in line and "is more than 1,000" in line, line
    assert seconds < 30 and peak < 200 * 2**20, (seconds, peak)


@pytest.mark.parametrize("axis, says", [
    ({"activation": ("relu", None)}, "relu and none are the same setting for model vgg_light"),
    ({"activation": ("silu", "swish")}, "silu and swish are the same setting"),
    ({"norm_placement": ("all", None)}, "all and none are the same setting for model "
                                        "vgg_light_bn"),
    ({"dropout": (0.0, None)}, "0 and none are the same setting"),
])
def test_levels_that_mean_the_same_setting_are_refused(axis, says):
    with pytest.raises(ConfigError, match=says):
        RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.1,), max_steps=2, axes=axis)
    RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.1,), max_steps=2,
                 axes={"activation": ("relu", "tanh")})  # different settings are levels


def test_the_same_setting_from_the_command_line():
    line = error_line(CliRunner().invoke(main, [*RECORD, "--vary", "activation=relu,none",
                                                "-o", "never.h5"]))
    assert "--vary activation: relu and none are the same setting for model lenet5" in line


def test_run_ids_too_long_for_a_file_name_are_refused():
    long = "x" * 130
    line = error_line(CliRunner().invoke(main, [
        *RECORD, "--vary", f"init_from=a{long}.h5:r,b{long}.h5:r", "-o", "never.h5"]))
    assert "make run ids of up to" in line and "more than 150" in line, line


def test_records_that_differ_in_seven_settings_make_only_their_combinations(base, tmp_path):
    """12 records differing in 7 settings: 12 cells, not the 12^7 combinations that were
    enumerated (no output after minutes)."""
    from landscape.report import load_runs
    from landscape.report.factors import factor_cells

    settings = {"l1": lambda i: i * 1e-6, "l2": lambda i: i * 1e-5,
                "label_smoothing": lambda i: i * 0.01, "weight_decay": lambda i: i * 1e-4,
                "eval_every": lambda i: i + 1, "crop_padding": lambda i: i,
                "erase_prob": lambda i: i * 0.05}
    paths = []
    for i in range(12):
        path = tmp_path / f"r{i}.h5"
        shutil.copyfile(base, path)
        with h5py.File(path, "r+") as f:
            for holder in (f, *f["runs"].values()):
                values = json.loads(holder.attrs["config"])
                values.update({key: value(i) for key, value in settings.items()})
                holder.attrs["config"] = json.dumps(values)
        paths.append(path)
    with time_limit(60):
        cells = factor_cells(load_runs(paths))
    assert len(cells) == 12 and all(len(cell.runs) == 1 for cell in cells)
    assert set(cells[0].levels) == set(settings)


def test_more_combinations_than_the_limit_are_refused():
    from landscape.report.factors import MAX_CELLS, factor_cells

    record = SimpleNamespace(config={})
    runs = [SimpleNamespace(record=record, factors={"a": i, "b": i % 7})
            for i in range(MAX_CELLS + 1)]
    with time_limit(30), pytest.raises(ConfigError, match="more than 1,000 combinations"):
        factor_cells(runs)


def test_one_run_in_two_records_is_not_two_seeds(tmp_path, one_thread):
    both = tmp_path / "both.h5"
    assert CliRunner().invoke(main, [*RECORD, "--vary", "batch_size=16,32", "-o",
                                     str(both)]).exit_code == 0
    one = tmp_path / "one.h5"
    assert CliRunner().invoke(main, [*RECORD, "--batch-size", "32", "-o",
                                     str(one)]).exit_code == 0
    line = error_line(CliRunner().invoke(main, ["plot", str(both), str(one), "-o",
                                                str(tmp_path / "figures")]))
    assert (f"{both}:lenet5_lr0.01_batch_size=32 and {one}:lenet5_lr0.01 are the same run "
            f"(lenet5, lr 0.01, seed 0, batch_size=32); together they would count as two "
            f"seeds") in line
    assert not (tmp_path / "figures").exists()
