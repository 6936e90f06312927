"""Fault injection: `landscape record` as a real process, killed (SIGKILL), stopped (SIGTERM) or
starved of disk, must leave a record that opens, holds a prefix of the uninterrupted record, and
that `--resume` completes to exactly the uninterrupted record."""

import os
import random
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import landscape
from landscape.sweep import resume

from conftest import assert_records_equal

RUN_ARGS = ["--model", "vgg_bn,vgg_dropout", "--lrs", "0.001", "--width", "0.125",
            "--batch-size", "32", "--max-steps", "120", "--flip", "--crop-padding", "2",
            "--probe-every", "7", "--probe-count", "2", "--device", "cpu", "--no-verify",
            "--flush-seconds", "0.05", "--checkpoint-seconds", "0.2"]


def command(cifar_dir, out):
    return [sys.executable, "-m", "landscape", "record", *RUN_ARGS, "--data-dir",
            str(cifar_dir), "-o", str(out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar_dir):
    """The uninterrupted record, and how long its training took (seconds)."""
    out = tmp_path_factory.mktemp("faults") / "reference.h5"
    subprocess.run(command(cifar_dir, out), check=True, capture_output=True)
    rec = landscape.open_record(out)
    return rec, sum(r.seconds for r in rec.runs.values())


def start_and_wait_for_training(cifar_dir, out, **popen):
    """Start `landscape record` and return once its record exists (training has begun)."""
    process = subprocess.Popen(command(cifar_dir, out), **popen)
    deadline = time.monotonic() + 120
    while not out.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return process


def assert_prefix_of(partial, reference) -> None:
    """Every row in `partial` equals the same row of `reference`."""
    for run_id, info in partial.runs.items():
        got, want = partial.load(run_id), reference.load(run_id)
        n = len(got.steps.step)
        assert info.status in ("pending", "running", "interrupted", "complete")
        for name, values in vars(got.steps).items():
            np.testing.assert_array_equal(values, getattr(want.steps, name)[:n], err_msg=name)
        if got.probe is not None:
            p = len(got.probe.step)
            np.testing.assert_array_equal(got.probe.loss, want.probe.loss[:p])


def kill_when(process, out, target_steps: int) -> int:
    """SIGKILL `process` once its record shows at least `target_steps` steps (read live, in
    SWMR mode, while it writes); returns the steps it showed, or -1 if it finished first."""
    seen = 0
    while process.poll() is None:
        try:
            seen = sum(r.steps_done for r in landscape.open_record(out).runs.values())
        except landscape.RecordError:
            pass  # caught between its creation and its first flush
        if seen >= target_steps:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return seen
        time.sleep(0.01)
    return -1


def test_sigkill_at_random_moments_loses_nothing_but_the_tail(tmp_path, cifar_dir, reference):
    ref, _ = reference
    total = sum(r.steps_done for r in ref.runs.values())
    rng = random.Random(20181203)
    # Kill points spread over the training of both runs, picked by progress (not by time) so
    # that they land inside training on fast and slow machines alike.
    targets = sorted(rng.randrange(0, int(0.9 * total)) for _ in range(4))
    killed_at = []
    for i, target in enumerate(targets):
        out = tmp_path / f"killed{i}.h5"
        process = start_and_wait_for_training(cifar_dir, out, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
        killed_at.append(kill_when(process, out, target))
        partial = landscape.open_record(out)  # opens, whatever the moment of the kill
        assert_prefix_of(partial, ref)
        resume(out)
        assert_records_equal(landscape.open_record(out), ref)
    assert any(0 <= k < total for k in killed_at), killed_at


def test_sigterm_stops_cleanly_and_resume_completes(tmp_path, cifar_dir, reference):
    ref, _ = reference
    out = tmp_path / "stopped.h5"
    process = start_and_wait_for_training(cifar_dir, out, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
    total = sum(r.steps_done for r in ref.runs.values())
    while process.poll() is None:  # SIGTERM once the first run is a quarter done
        try:
            if sum(r.steps_done for r in landscape.open_record(out).runs.values()) >= total // 8:
                break
        except landscape.RecordError:
            pass
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"landscape record --resume {out}" in stdout
    partial = landscape.open_record(out)
    assert "interrupted" in {r.status for r in partial.runs.values()}
    assert_prefix_of(partial, ref)
    done = subprocess.run([sys.executable, "-m", "landscape", "record", "--resume", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_records_equal(landscape.open_record(out), ref)


def test_a_failed_write_is_one_clear_line(tmp_path, cifar_dir, reference):
    """A write that fails although the free-space check passed (here a file-size limit with
    the check switched off, as a disk quota would slip past it): one clear line and exit code
    1, no traceback, no crash, and the record opens (tests/test_failed_writes.py: at several
    sizes, and resumed)."""
    out = tmp_path / "full.h5"

    def small_disk():
        # Writes past 400 kB fail with EFBIG, as they would on a full disk (ENOSPC).
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))

    unchecked = [sys.executable, "-c", "import landscape.training.recorder as r; "
                 "r.free_bytes = lambda path: 1 << 50; from landscape.cli import main; "
                 "main(prog_name='landscape')"]
    done = subprocess.run(unchecked + command(cifar_dir, out)[3:] + ["--no-taps"],
                          preexec_fn=small_disk, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    # The first write past the limit is the record's or its checkpoint's (which comes first
    # depends on the record's chunk sizes): either way one line naming the file and the cause.
    assert len(errors) == 1, errors
    assert (f"cannot write to {out}: File too large" in errors[0]
            or (f"cannot write the checkpoint {out}.ckpt" in errors[0]
                and ("File too large" in errors[0] or "stopped short" in errors[0]))), errors
    assert "Traceback" not in done.stderr
    partial = landscape.open_record(out)
    assert any(r.status == "running" for r in partial.runs.values())
