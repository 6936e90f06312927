"""Crafted and damaged records (issue 30): each command that reads one says in one line which
record, which run and what is wrong, never a traceback, a hang or an allocation of what a
crafted header declares; text drawn from records is never read as mathtext.

Each case edits a copy of one tiny real record with h5py the way a damaged file or another
program might, then runs the command that used to fail on it (in process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from landscape.cli import main

from conftest import recorded

RUN = "lenet5_lr0.01"
RECORD = ["record", "--dataset", "mnist", "--model", "lenet5", "--lrs", "0.01", "--batch-size",
          "16", "--width", "0.125", "--max-steps", "3", "--device", "cpu", "--save-weights-at",
          "0,end"]


@pytest.fixture(scope="module")
def base(tmp_path_factory, one_thread):
    return recorded(tmp_path_factory.mktemp("crafted") / "base.h5", RECORD)


def config(change):
    def edit(f):
        values = json.loads(f.attrs["config"])
        change(values)
        f.attrs["config"] = json.dumps(values)
    return edit


def run_attr(name, value):
    def edit(f):
        f["runs"][RUN].attrs[name] = value
    return edit


def replace(path, data):
    def edit(f):
        folder, _, name = path.rpartition("/")
        group = f["runs"][RUN][folder] if folder else f["runs"][RUN]
        del group[name]
        if data.ndim:
            group.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]))
        else:
            group[name] = data
    return edit


def drop_weight(name):
    def edit(f):
        table = f["runs"][RUN]["weights"]
        table.attrs["columns"] = [c for c in table.attrs["columns"] if c != name]
        del table[name]
    return edit


def grow(table, rows):
    def edit(f):
        group = f["runs"][RUN][table]
        for column in group.attrs["columns"]:
            group[column].resize((rows, *group[column].shape[1:]))
    return edit


COMMANDS = {
    "info": lambda r, d: ["info", r],
    "plot": lambda r, d: ["plot", r, "-o", d / "figures"],
    "report": lambda r, d: ["report", r, "-o", d / "r.html"],
    "export": lambda r, d: ["export", r, "-o", d],
    "prune": lambda r, d: ["prune", r, "--run", RUN, "--layer", "conv1", "--fractions", "0,50",
                           "--device", "cpu", "--out", d / "p.png"],
    "surface": lambda r, d: ["surface", r, "--run", RUN, "--step", "0", "--dims", "1",
                             "--points", "3", "--batch", "images", "--images", "16",
                             "--device", "cpu"],
    "resume": lambda r, d: ["record", "--resume", r],
    "init-from": lambda r, d: [*RECORD, "--max-steps", "1", "--init-from", f"{r}:{RUN}@0",
                               "-o", d / "new.h5"],
}
HUGE = 10**11  # rows a crafted table declares: 745 GiB of steps
CASES = [
    # (what is edited, the edit, the command, what the line says)
    ("a configuration without keys", config(lambda c: c.clear()), "info",
     "its configuration or data description cannot be shown (it has no 'optimizer')"),
    ("axes as a list of pairs", config(lambda c: c.update(axes=[["batch_size", [16, 32]]])),
     "report", "axes must be a mapping of field names to lists of values"),
    ("axes as a list of pairs", config(lambda c: c.update(axes=[["batch_size", [16, 32]]])),
     "info", "cannot be shown"),
    ("an axis of no field", config(lambda c: c.update(axes={"nosuch": [1, 2]})), "plot",
     "cannot vary 'nosuch'"),
    ("lrs as text", config(lambda c: c.update(lrs="abc")), "surface",
     "optim.lrs must be a list of numbers, got 'abc'"),
    ("an axis that gained a level", config(lambda c: c.update(axes={"batch_size": [16, 32]})),
     "resume", "its configuration plans runs it does not hold"),
    ("a data description without keys", lambda f: f.attrs.__setitem__("data", "{}"), "info",
     "it has no 'name'"),
    ("run ids twice", lambda f: f.attrs.__setitem__("run_ids", json.dumps([RUN, RUN])), "info",
     "its 'run_ids' attribute is not a list of distinct run names"),
    ("factors not JSON", run_attr("factors", "{not json"), "plot",
     f"run '{RUN}' cannot be read: its 'factors' attribute is not a JSON object"),
    ("factors a list", run_attr("factors", "[1, 2]"), "report",
     "its 'factors' attribute is not a JSON object"),
    ("a level that is an object", run_attr("factors", json.dumps({"batch_size": {"a": 1}})),
     "plot", "its level of 'batch_size' is not a setting's value"),
    ("a model that is a number", run_attr("model", 5), "plot", "is not a name"),
    ("a learning rate of NaN", run_attr("lr", float("nan")), "report",
     "its learning rate nan is not a positive number"),
    ("a seed as text", run_attr("seed", "x"), "export", "its seed 'x' is not a whole number"),
    ("a status as a number", replace("status", np.int64(5)), "info", "is not text"),
    ("no steps table", lambda f: f["runs"][RUN].__delitem__("steps"), "info",
     f"run '{RUN}' (its tables) cannot be read"),
    ("a steps table of 10^11 rows", grow("steps", HUGE), "export",
     "its table 'steps' declares 100,000,000,000 rows"),
    ("losses as text", replace("steps/loss", np.array([b"a"] * 3)), "plot",
     "its table 'steps' has a column 'loss' of |S1 values, not numbers"),
    ("steps as fractions", replace("steps/step", np.array([0.5, 1, 2])), "report",
     "has steps that are not whole numbers"),
    ("a kept tensor missing", drop_weight("features.conv1.weight"), "prune",
     "do not fit its model 'lenet5' (it lacks features.conv1.weight)"),
    ("a kept tensor missing", drop_weight("features.conv1.weight"), "surface",
     "do not fit its model 'lenet5' (it lacks features.conv1.weight)"),
    ("a kept tensor of another shape",
     replace("weights/features.conv1.weight", np.zeros((2, 3), np.float32)), "surface",
     "features.conv1.weight is (3,), not (1, 1, 5, 5)"),
    ("a kept tensor of text", replace("weights/features.conv1.weight", np.array([b"a", b"b"])),
     "init-from", "its kept tensor 'features.conv1.weight' at step 0 holds |S1 values"),
    ("a kept tensor of text", replace("weights/features.conv1.weight", np.array([b"a", b"b"])),
     "prune", "holds |S1 values, not numbers"),
    ("kept weights of 10^11 rows", grow("weights", HUGE), "surface",
     "its table 'weights' declares 100,000,000,000 rows"),
]


@pytest.mark.parametrize("what, edit, command, says", CASES,
                         ids=[f"{c[2]}: {c[0]}" for c in CASES])
def test_a_crafted_record_is_one_line(base, tmp_path, what, edit, command, says):
    record = tmp_path / "r.h5"
    shutil.copyfile(base, record)
    with h5py.File(record, "r+") as f:
        edit(f)
    before = record.read_bytes()
    result = CliRunner().invoke(main, [str(a) for a in COMMANDS[command](record, tmp_path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{what}: {result.exception!r}"
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert says in errors[0], errors[0]
    assert str(record) in errors[0] or command == "resume" and "r.h5" in errors[0]
    assert record.read_bytes() == before  # nothing written into it


def test_dollars_in_names_are_drawn_as_dollars(base, tmp_path):
    """A record named like mathtext: plot and report succeed (no ParseFatalException) and draw
    the name as it is; a log axis keeps its powers of ten as mathtext."""
    from landscape.plot._style import literal_text

    record = tmp_path / "d$x^$.h5"
    shutil.copyfile(base, record)
    for args in (["plot", record, "-o", tmp_path / "figures"],
                 ["report", record, "-o", tmp_path / "r.html"]):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    @literal_text
    def draw():
        fig = Figure()
        ax = fig.subplots()
        ax.hist([1, 2, 3, 30, 300], log=True)
        ax.set_title("run $x^$ at level $\\frac{1$")
        ax.legend(["a$b$"])
        return fig

    fig = draw()
    fig.savefig(tmp_path / "t.png")  # mathtext would fail to parse both texts
    ax = fig.axes[0]
    assert not ax.title.get_parse_math()
    assert not ax.get_legend().get_texts()[0].get_parse_math()
    ticks = [t.label1 for t in ax.yaxis.get_major_ticks() if t.label1.get_text()]
    assert ticks and all(t.get_parse_math() for t in ticks)
    assert any("10^" in t.get_text() for t in ticks)
