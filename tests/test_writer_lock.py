"""One writer per record: a second `landscape record` on a record that a live process writes
(new, --overwrite or --resume) stops with one line naming that process; a killed writer
leaves no stale lock."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import landscape
from landscape.errors import RecordError
from landscape.store.lock import lock_path, writer_lock

ARGS = ["--model", "vgg", "--lrs", "0.001", "--width", "0.125", "--batch-size", "32",
        "--device", "cpu", "--no-verify", "--checkpoint-seconds", "0.2"]


def landscape_record(cifar_dir, *args):
    return [sys.executable, "-m", "landscape", "record", *ARGS, "--data-dir", str(cifar_dir),
            *args]


def start_writer(cifar_dir, out, steps):
    """A real `landscape record` process, returned once it holds the lock."""
    process = subprocess.Popen(landscape_record(cifar_dir, "--max-steps", str(steps), "-o",
                                                str(out), "--overwrite"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out.exists() and lock_path(out).exists()) and time.monotonic() < deadline:
        assert process.poll() is None, "the first writer ended before it was checked"
        time.sleep(0.02)
    return process


@pytest.mark.parametrize("second", [["--overwrite"], ["--resume"]])
def test_a_second_writer_is_refused_naming_the_first(tmp_path, cifar_dir, second):
    out = tmp_path / "same.h5"
    first = start_writer(cifar_dir, out, steps=100000)
    try:
        args = ["--max-steps", "2", "-o", str(out), "--overwrite"] if second == ["--overwrite"] \
            else []
        command = landscape_record(cifar_dir, *args) if args else \
            [sys.executable, "-m", "landscape", "record", "--resume", str(out)]
        other = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert other.returncode == 1, other.stderr
        errors = [line for line in other.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "Traceback" not in other.stderr, other.stderr
        assert errors[0].startswith(f"Error: {out} is being written by process {first.pid} "
                                    f"(")
        assert "wait for it to finish or stop it" in errors[0]
        assert first.poll() is None  # the first writer goes on
    finally:
        first.kill()
        first.wait()


def test_a_killed_writer_leaves_no_stale_lock(tmp_path, cifar_dir):
    """SIGKILL gives the writer no chance to clean up: its lock file stays, but the kernel has
    released the lock, and --resume completes the record."""
    out = tmp_path / "r.h5"
    first = start_writer(cifar_dir, out, steps=60)
    # Killed at once: on a fast machine 60 steps of this tiny net take well under a second, and a
    # writer that finished has released its lock file (as it should).
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL, "the writer ended before it was killed"
    assert lock_path(out).exists()
    assert json.loads(lock_path(out).read_text())["pid"] == first.pid
    resumed = subprocess.run([sys.executable, "-m", "landscape", "record", "--resume",
                              str(out)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert landscape.open_record(out).runs["vgg_lr0.001"].status == "complete"
    assert not lock_path(out).exists()


def test_the_lock_is_held_until_released(tmp_path):
    """In one process too: a second holder is refused while the first holds the lock (flock
    locks belong to open files), and takes it once the first let go."""
    record = tmp_path / "r.h5"
    with writer_lock(record):
        with pytest.raises(RecordError, match=f"is being written by process {os.getpid()} "):
            with writer_lock(record):
                pass
    with writer_lock(record):
        assert lock_path(record).exists()
    assert not lock_path(record).exists()


# Issue 30: the lock is keyed on the file itself. A second writer that reaches a record being
# written through a hard link or a symbolic link is refused, and a writer through a link
# leaves the link a link.

HOLD = ("import sys\nfrom landscape.store.lock import writer_lock\n"
        "with writer_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


@pytest.fixture
def held(tmp_path):
    """A record file whose writer lock another process holds (as a live writer does); yields
    (the record, that process)."""
    record = tmp_path / "live.h5"
    record.write_bytes(b"")
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(record)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "held\n"
        yield record, process
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def test_a_writer_through_a_hard_or_symbolic_link_is_refused(held, tmp_path):
    record, process = held
    hard, soft, folder = tmp_path / "hard.h5", tmp_path / "soft.h5", tmp_path / "through"
    os.link(record, hard)
    soft.symlink_to(record)
    folder.symlink_to(tmp_path, target_is_directory=True)
    for name in (hard, soft, folder / "live.h5"):
        with pytest.raises(RecordError, match="is being written by") as refused:
            with writer_lock(name):
                pass
        if name != hard:  # the same lock file: its holder is named
            assert f"process {process.pid} " in str(refused.value)
    assert soft.is_symlink() and os.stat(hard).st_nlink == 2
    assert not lock_path(hard).exists() or lock_path(hard) == lock_path(record)


def test_the_holder_is_seen_without_taking_the_lock(held, tmp_path):
    from landscape.store.lock import holder

    record, process = held
    hard = tmp_path / "hard.h5"
    os.link(record, hard)
    assert holder(record).startswith(f"process {process.pid} ")
    assert holder(hard) == "another process, through another name of the same file"
    free = tmp_path / "free.h5"
    free.write_bytes(b"")
    assert holder(free) is None and holder(tmp_path / "missing.h5") is None
    with writer_lock(free):  # asking took nothing: the lock is free to take
        assert holder(free) is not None
