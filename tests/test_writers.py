"""Every writer of a record takes the one writer lock, and no writer writes through a symbolic
link planted at one of the record's side files (issue 24).

The lock is tested with real processes: a `landscape surface` that holds it refuses a second
surface, `record --resume` and `record --overwrite` of the same record, each in one line naming
it. Each planted link must leave its target unchanged and the record a regular file."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import landscape
from landscape.training.checkpoint import checkpoint_path
from landscape.cli import main
from landscape.store import RecordWriter
from landscape.store.lock import lock_path

RECORD = ["--dataset", "mnist", "--model", "lenet5", "--lrs", "0.01", "--batch-size", "16",
          "--max-steps", "6", "--device", "cpu", "--save-weights-at", "0,3"]
SECRET = b"somebody else's file\n"


def record_cli(*args):
    return CliRunner().invoke(main, ["record", *RECORD, *map(str, args)])


@pytest.fixture(scope="module")
def kept(tmp_path_factory, one_thread):
    """A complete record of lenet5 that kept its weights at steps 0 and 3."""
    out = tmp_path_factory.mktemp("writers") / "kept.h5"
    result = record_cli("-o", out)
    assert result.exit_code == 0, result.output
    return out


def copy_of(record: Path, folder: Path) -> Path:
    path = folder / "r.h5"
    path.write_bytes(record.read_bytes())
    return path


def error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_a_surface_holds_the_lock_against_every_other_writer(kept, tmp_path):
    """While a surface is computed, a second surface, `record --resume` and `record -o same.h5
    --overwrite` are each refused in one line naming the surface's process; a surface killed
    half way leaves the record exactly as it was (it writes into a copy)."""
    path = copy_of(kept, tmp_path)
    before = path.read_bytes()
    surface = [sys.executable, "-m", "landscape", "surface", str(path), "--run",
               "lenet5_lr0.01", "--step", "3"]
    first = subprocess.Popen([*surface, "--points", "301", "--chunk", "1", "--name", "A"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert first.poll() is None, "the surface ended before it was checked"
            try:
                if json.loads(lock_path(path).read_text())["pid"] == first.pid:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        others = [[*surface, "--points", "3", "--name", "B"],
                  [sys.executable, "-m", "landscape", "record", "--resume", str(path)],
                  [sys.executable, "-m", "landscape", "record", *RECORD, "-o", str(path),
                   "--overwrite"]]
        running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for c in others]
        for other in running:
            _, stderr = other.communicate(timeout=300)
            assert other.returncode == 1, stderr
            line = error_line(stderr)
            assert line.startswith(f"Error: {path} is being written by process {first.pid} "
                                   f"(landscape surface"), line
            assert "wait for it to finish or stop it" in line
        assert first.poll() is None  # the first writer goes on
    finally:
        first.kill()
        first.wait()
    assert path.read_bytes() == before
    assert landscape.open_record(path).surfaces("lenet5_lr0.01") == {}


def plant(link: Path, target: Path) -> None:
    target.write_bytes(SECRET)
    link.symlink_to(target)


def test_a_link_at_the_lock_is_refused(tmp_path):
    target, out = tmp_path / "target", tmp_path / "r.h5"
    plant(lock_path(out), target)
    result = record_cli("-o", out)
    assert result.exit_code == 1
    assert f"the lock file {lock_path(out)} is a symbolic link" in result.output
    assert target.read_bytes() == SECRET and not out.exists()


@pytest.mark.parametrize("command", ["resume", "surface"])
def test_a_link_at_a_temporary_copy_is_not_followed(kept, tmp_path, command):
    """`--resume` (R.h5.resume-tmp) and `surface` (R.h5.add-tmp; R.h5.resume-tmp before issue
    24) copy the record next to it and rename the copy over it: a link at either name is
    replaced, its target untouched, and the record is a regular file afterwards."""
    path = copy_of(kept, tmp_path)
    targets = [tmp_path / f"target-{side}" for side in ("resume-tmp", "add-tmp")]
    for target, side in zip(targets, ("resume-tmp", "add-tmp")):
        plant(path.with_name(path.name + "." + side), target)
    if command == "resume":
        result = CliRunner().invoke(main, ["record", "--resume", str(path)])
    else:
        result = CliRunner().invoke(main, ["surface", str(path), "--run", "lenet5_lr0.01",
                                           "--step", "3", "--dims", "1", "--points", "3"])
    assert result.exit_code == 0, result.output
    assert all(target.read_bytes() == SECRET for target in targets)
    assert not path.is_symlink() and path.is_file()
    assert landscape.open_record(path).runs["lenet5_lr0.01"].status == "complete"


def test_a_link_at_the_checkpoint_tmp_is_not_followed(tmp_path):
    out, target = tmp_path / "r.h5", tmp_path / "target"
    tmp = checkpoint_path(out).with_name(checkpoint_path(out).name + ".tmp")
    plant(tmp, target)
    # A checkpoint at every host sync, and a stop after the first step: the checkpoint stays.
    calls = []
    from landscape.sweep import record
    from landscape.config import RecordConfig
    config = RecordConfig(models=("lenet5",), lrs=(0.01,), dataset="mnist", batch_size=16,
                          max_steps=6, device="cpu", checkpoint_seconds=1e-9)
    record(config, out, should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert target.read_bytes() == SECRET
    assert checkpoint_path(out).is_file() and not checkpoint_path(out).is_symlink()
    assert not tmp.exists() and not tmp.is_symlink()


def test_a_record_or_shard_is_never_created_through_a_link(kept, tmp_path):
    """RecordWriter.create (a record, and each Ray worker's shard) makes a new file: a link
    at the name, even one to nowhere, is replaced, never written through."""
    rec = landscape.open_record(kept)
    for name, exists in (("dangling", False), ("existing", True)):
        target, path = tmp_path / f"{name}-target", tmp_path / f"{name}.h5"
        if exists:  # a record elsewhere (--overwrite replaces only records)
            target.write_bytes(kept.read_bytes())
        path.symlink_to(target)
        RecordWriter.create(path, config=rec.config, data=rec.data, runs=[],
                            versions={}, overwrite=exists).close()
        assert not path.is_symlink() and landscape.open_record(path).runs == {}
        assert target.read_bytes() == kept.read_bytes() if exists else not target.exists()


def test_progress_files_of_ray_workers_are_not_written_through_links(tmp_path):
    from landscape.sweep.ray_progress import FileProgress, progress_path

    shard = tmp_path / "run.h5"
    target = tmp_path / "target"
    plant(progress_path(shard).with_name(progress_path(shard).name + ".tmp"), target)
    FileProgress(shard, 10).advance(3, loss=1.0, images_per_second=5.0)
    assert target.read_bytes() == SECRET
    assert json.loads(progress_path(shard).read_text())[:2] == [3, 10]
