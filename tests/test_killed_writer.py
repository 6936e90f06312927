"""A writer SIGKILLed while HDF5's superblock says the record is open for writing (creating it,
or reopening it for --resume, before SWMR mode) must leave a record that `info`, `plot` and
`--resume` open, with every row up to its last flush: its status flags are cleared when no
writer holds the lock (what `h5clear --status` does), and a record only takes its name once it
is in SWMR mode."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.errors import RecordError
from landscape.store.lock import writer_lock
from landscape.sweep import resume

from conftest import assert_records_equal

ARGS = ["--model", "vgg_bn,vgg", "--lrs", "0.002", "--width", "0.125", "--batch-size", "16",
        "--subset", "64", "--max-steps", "12", "--probe-every", "5", "--probe-count", "2",
        "--device", "cpu", "--no-verify", "--flush-seconds", "0.01", "--checkpoint-seconds", "0.05"]


def record_command(cifar_dir, out, *extra):
    return [sys.executable, "-m", "landscape", "record", *ARGS, "--data-dir", str(cifar_dir),
            "-o", str(out), *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar_dir):
    out = tmp_path_factory.mktemp("killed") / "reference.h5"
    subprocess.run(record_command(cifar_dir, out), check=True, capture_output=True)
    return out


def left_open_for_writing(path):
    """The record as a writer killed between reopening it and SWMR mode leaves it once HDF5
    has written the superblock (its first flush): RecordWriter.reopen, flush, SIGKILL."""
    code = ("import os, signal, sys; from landscape.store import RecordWriter; "
            "writer = RecordWriter.reopen(sys.argv[1]); writer.flush(); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r", libver="latest").close()  # the flags are set: the state to fix


def assert_opens_for_info_and_plot(path, tmp_path):
    """`info` and `plot` open the record (a record killed before its first step has nothing
    to plot, and `plot` says so in one line)."""
    info = CliRunner().invoke(main, ["info", str(path)])
    assert info.exit_code == 0, info.output
    plot = CliRunner().invoke(main, ["plot", str(path), "-o", str(tmp_path / "plot")])
    assert plot.exit_code == 0 or plot.output.strip().endswith(
        "Error: nothing to plot: no run has a recorded step"), plot.output


def test_a_record_left_open_for_writing_opens_with_every_row(tmp_path, reference):
    out = tmp_path / "r.h5"
    shutil.copy(reference, out)
    left_open_for_writing(out)
    assert_opens_for_info_and_plot(out, tmp_path)
    assert_records_equal(landscape.open_record(out), landscape.open_record(reference))
    assert resume(out) == []  # every run was finished: nothing to continue, and it opens


def test_a_live_writers_flags_are_left_alone(tmp_path, reference):
    """While a process holds the writer lock, the flags may be its own: the reader is told
    whom to wait for, and the file is not touched."""
    out = tmp_path / "r.h5"
    shutil.copy(reference, out)
    left_open_for_writing(out)
    before = out.read_bytes()
    with writer_lock(out):
        with pytest.raises(RecordError, match=f"is being written by process {os.getpid()}"):
            landscape.open_record(out)
    assert out.read_bytes() == before


def kill_soon_after(process, *paths, rng, within: float) -> None:
    """SIGKILL `process` at a random moment up to `within` seconds after one of `paths`
    appears (or at once if it ends first)."""
    while process.poll() is None and not any(p.exists() for p in paths):
        time.sleep(0.0005)
    time.sleep(rng.uniform(0, within))
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_while_creating_or_reopening_leaves_a_record_that_resumes(tmp_path, cifar_dir,
                                                                         reference):
    """Kills at random moments around the two times a writer holds the file outside SWMR
    mode: while `landscape record` creates it and while `--resume` reopens it. Whatever the
    moment, the record is either absent (killed before it took its name) or opens for `info`
    and `plot`, and `--resume` completes it to the uninterrupted record."""
    rng = random.Random(20181204)
    ref = landscape.open_record(reference)
    opened = 0
    # While it creates the record (its file just appeared: RECORD.h5.creating, or RECORD.h5
    # in versions that created it in place), then once the record has its name.
    for i, moment in enumerate([".creating", "", ""]):
        out = tmp_path / f"k{i}.h5"
        writer = subprocess.Popen(record_command(cifar_dir, out), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        kill_soon_after(writer, out, out.with_name(out.name + moment), rng=rng, within=0.01)
        if not out.exists():
            continue  # killed before the record existed: nothing was recorded
        resumer = subprocess.Popen([sys.executable, "-m", "landscape", "record", "--resume",
                                    str(out)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        kill_soon_after(resumer, out.with_name(out.name + ".resume-tmp"), rng=rng,
                        within=0.01)
        assert_opens_for_info_and_plot(out, tmp_path)
        resume(out)
        assert_records_equal(landscape.open_record(out), ref)
        opened += 1
    assert opened, "every kill came before the record existed: nothing was tested"
