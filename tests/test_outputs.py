"""Nothing lost (issue 30): every command that writes a file refuses, in one line and before it
writes anything, an output that is a record, one of its own inputs (by any name: a hard or
symbolic link), a file a live writer holds, a writer's side file or no regular file; it writes
whole files or none, never through a link planted at the name; `--resume` with another -o is
refused; exported CSV cells cannot run as spreadsheet formulas."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.store.frames import spreadsheet_safe

RUN = "lenet5_lr0.01"
RECORD = ["--dataset", "mnist", "--model", "lenet5", "--lrs", "0.01", "--batch-size", "16",
          "--width", "0.125", "--max-steps", "3", "--device", "cpu", "--save-weights-at",
          "0,end"]
HOLD = ("import sys\nfrom landscape.store.lock import writer_lock\n"
        "with writer_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def kept(tmp_path_factory, one_thread):
    """A complete record of lenet5 that kept its weights at step 0 and after its last."""
    out = tmp_path_factory.mktemp("outputs") / "kept.h5"
    result = run("record", *RECORD, "-o", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def folder(kept, tmp_path):
    """A folder with a copy of the record (r.h5), another record (other.h5) and a text file."""
    shutil.copyfile(kept, tmp_path / "r.h5")
    shutil.copyfile(kept, tmp_path / "other.h5")
    (tmp_path / "notes.txt").write_text("somebody's notes\n")
    return tmp_path


@pytest.fixture
def live(folder):
    """r.h5 held by another process, as a live writer holds it."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder / "r.h5")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "held\n"
        yield process
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def unchanged(folder: Path):
    """Digests of every regular file in `folder`, to compare before and after."""
    return {p.name: digest(p) for p in folder.iterdir() if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("target, says", [
    ("other.h5", "is a landscape record; this command never replaces one"),
    ("r.h5", "which this command reads"),
    ("hard.h5", "which this command reads"),
    ("soft.h5", "which this command reads"),
    ("r.h5.lock", "is a file landscape keeps beside the record"),
    ("fifo.html", "is not a regular file"),
])
def test_report_refuses_an_output_that_holds_data(folder, target, says):
    os.link(folder / "r.h5", folder / "hard.h5")
    (folder / "soft.h5").symlink_to(folder / "r.h5")
    os.mkfifo(folder / "fifo.html")
    before = unchanged(folder)
    line = error_line(run("report", folder / "r.h5", "-o", folder / target))
    assert f"-o {folder / target}" in line and says in line, line
    assert unchanged(folder) == before
    assert (folder / "soft.h5").is_symlink()


def test_every_output_of_a_live_writers_record_is_refused(folder, live):
    before = digest(folder / "r.h5")
    os.link(folder / "r.h5", folder / "live.png")  # a figure's name for the same file
    line = error_line(run("prune", folder / "other.h5", "--run", RUN, "--layer", "conv1",
                          "--device", "cpu", "--out", folder / "live.png"))
    assert "live.png is being written by another process, through another name" in line
    for args in (["report", folder / "other.h5", "-o", folder / "r.h5"],
                 ["record", *RECORD, "-o", folder / "r.h5", "--overwrite"],
                 ["record", "--resume", folder / "r.h5"],
                 ["surface", folder / "r.h5", "--run", RUN, "--step", "0", "--dims", "1",
                  "--points", "3"]):
        line = error_line(run(*args))
        assert "is being written by process" in line and str(live.pid) in line, (args, line)
    assert digest(folder / "r.h5") == before


def test_writers_through_links_to_a_live_record_are_refused(folder, live):
    """The lock is keyed on the file: a hard link and a symbolic link meet the live writer."""
    os.link(folder / "r.h5", folder / "hard.h5")
    (folder / "soft.h5").symlink_to("r.h5")
    for name in ("hard.h5", "soft.h5"):
        for args in (["record", "--resume", folder / name],
                     ["surface", folder / name, "--run", RUN, "--step", "0", "--dims", "1",
                      "--points", "3"]):
            assert "is being written by" in error_line(run(*args)), args
    assert (folder / "soft.h5").is_symlink() and os.stat(folder / "hard.h5").st_nlink == 2


def test_a_surface_through_a_symbolic_link_keeps_the_link(folder):
    link = folder / "soft.h5"
    link.symlink_to("r.h5")
    result = run("surface", link, "--run", RUN, "--step", "0", "--dims", "1", "--points", "3",
                 "--batch", "images", "--images", "16", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == "r.h5"
    assert list(landscape.open_record(folder / "r.h5").surfaces(RUN)) != []


def test_plot_checks_every_file_before_writing_one(folder):
    """A figure name that is a link to the input is refused before summary.txt or any other
    figure is written."""
    figures = folder / "figures"
    figures.mkdir()
    (figures / "training_curves.png").symlink_to(folder / "r.h5")
    before = digest(folder / "r.h5")
    line = error_line(run("plot", folder / "r.h5", "--out", figures))
    assert "training_curves.png is" in line and "which this command reads" in line
    assert sorted(p.name for p in figures.iterdir()) == ["training_curves.png"]
    assert digest(folder / "r.h5") == before


def test_export_replaces_a_planted_link_and_never_writes_its_target(folder):
    out = folder / "tables"
    out.mkdir()
    secret = folder / "notes.txt"
    (out / "r_steps.csv").symlink_to(secret)
    result = run("export", folder / "r.h5", "-o", out)
    assert result.exit_code == 0, result.output
    assert secret.read_text() == "somebody's notes\n"
    assert not (out / "r_steps.csv").is_symlink()
    assert next(csv.reader((out / "r_steps.csv").open()))[:2] == ["run_id", "model"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_into_a_folder_it_cannot_write_is_one_line(folder, fmt):
    (folder / "tables").mkdir()
    (folder / "tables" / f"r_steps.{fmt}").mkdir()  # a folder where a table goes
    line = error_line(run("export", folder / "r.h5", "-o", folder / "tables", "--format", fmt))
    assert f"r_steps.{fmt} is a folder" in line
    # /proc refuses new files whoever asks (root too, unlike permission bits).
    line = error_line(run("export", folder / "r.h5", "-o", "/proc", "--format", fmt))
    assert line.startswith(f"Error: cannot write /proc/r_steps.{fmt}:"), line


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(folder):
    """A crafted record whose run's model reads as a formula: quoted with a leading ' (as
    spreadsheet programs expect); numbers, negative ones too, are left as they are."""
    with h5py.File(folder / "r.h5", "r+") as f:
        f["runs"][RUN].attrs["model"] = '=HYPERLINK("http://x","y")'
    result = run("export", folder / "r.h5", "-o", folder, "--table", "steps")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((folder / "r_steps.csv").open()))
    assert rows[0]["model"] == '\'=HYPERLINK("http://x","y")'
    assert float(rows[0]["loss"]) > 0
    import pandas
    frame = pandas.DataFrame({"run_id": ["+1", "@a", "-x", "ok"], "v": [-1.5, 2.0, 3.0, 4.0]})
    safe = spreadsheet_safe(frame)
    assert list(safe["run_id"]) == ["'+1", "'@a", "'-x", "ok"]
    assert list(safe["v"]) == [-1.5, 2.0, 3.0, 4.0]


def test_record_never_replaces_the_record_it_starts_from(folder):
    before = digest(folder / "r.h5")
    line = error_line(run("record", *RECORD, "--init-from", f"{folder / 'r.h5'}:{RUN}@0",
                          "--overwrite", "-o", folder / "r.h5"))
    assert "which this command reads" in line
    assert digest(folder / "r.h5") == before


def test_resume_with_another_output_is_refused(folder):
    before = digest(folder / "r.h5")
    line = error_line(run("record", "--resume", folder / "r.h5", "-o", folder / "new.h5"))
    assert "continues that record in place; -o" in line and "would be ignored" in line
    line = error_line(run("record", "--resume", folder / "r.h5", "--overwrite"))
    assert "--overwrite would be ignored" in line
    assert digest(folder / "r.h5") == before and not (folder / "new.h5").exists()
