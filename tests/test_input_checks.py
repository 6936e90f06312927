"""Bad input refused in one line, also for Python callers (issue 24): non-finite and
out-of-range numbers, repeated list items, damaged checkpoints, data files whose headers
announce more than they hold, files that are not records, and figure paths prune cannot write.
The command-line messages are rows of docs/errors.md (tests/test_error_table.py)."""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from landscape.training.checkpoint import load_checkpoint
from landscape.cli import main
from landscape.config import MAX_SEED, ModelConfig, RecordConfig, RecordingConfig
from landscape.data.cifar10 import read_batch
from landscape.data.mnist import IMAGE_MAGIC, read_idx, write_idx
from landscape.errors import ConfigError, DataError, RecordError
from landscape.models import build_model
from landscape.kept.prune import prune_run
from landscape.store import check_replaceable

from conftest import TINY, huge_array_pickle


@pytest.mark.parametrize("name", ["flush_seconds", "checkpoint_seconds"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_seconds_are_refused_for_python_callers(name, value):
    with pytest.raises(ConfigError, match="must be positive and finite"):
        RecordingConfig(**{name: value}).validate()
    with pytest.raises(ConfigError, match="must be positive and finite"):
        RecordConfig(models=("lenet5",), dataset="mnist", **{name: value})


def test_a_step_listed_twice_is_refused_for_python_callers():
    with pytest.raises(ConfigError, match="a step is listed twice"):
        RecordConfig(models=("lenet5",), dataset="mnist", save_weights_at=(0, 5, 0))


@pytest.mark.parametrize("seeds", [(MAX_SEED + 1,), (0, 99999999999999999999), (2**64,)])
def test_seeds_beyond_the_generators_range_are_refused(seeds):
    with pytest.raises(ConfigError, match="must be at most 4,294,967,295"):
        RecordConfig(models=("lenet5",), dataset="mnist", seeds=seeds)
    RecordConfig(models=("lenet5",), dataset="mnist", seeds=(MAX_SEED,))  # the bound itself


@pytest.mark.parametrize("width", [math.inf, math.nan, 1e6, 8.5, 1e-9, 1 / 65])
def test_widths_out_of_range_are_refused_before_a_layer_is_built(width):
    with pytest.raises(ConfigError, match="width must be"):
        ModelConfig(models=("vgg",), width=width).validate()
    started = time.perf_counter()
    for name in ("vgg", "lenet5", "resnet20"):
        with pytest.raises(ConfigError, match="width must be"):
            build_model(name, width=width)
    assert time.perf_counter() - started < 1  # refused, not allocated
    ModelConfig(models=("vgg",), width=1 / 64).validate()  # the bounds themselves
    ModelConfig(models=("vgg",), width=8).validate()


def test_prune_refuses_a_percentage_listed_twice(tmp_path):
    with pytest.raises(ConfigError, match="a percentage is listed twice in --fractions"):
        prune_run(tmp_path / "absent.h5", "run", "conv1", [0, 10, 10])


def _checkpoints(tmp_path: Path):
    garbage = tmp_path / "garbage.h5.ckpt"
    garbage.write_bytes(b"\x80\x02not a checkpoint at all")
    # A payload torch refuses with weights_only=True: its message runs to many lines and
    # advises weights_only=False.
    tampered = tmp_path / "tampered.h5.ckpt"
    torch.save({"run_id": pathlib.PurePosixPath("/etc/passwd")}, tampered)
    other = tmp_path / "other.h5.ckpt"  # readable, but not a landscape checkpoint
    torch.save({"weights": torch.zeros(2)}, other)
    return [garbage, tampered, other]


def test_a_damaged_checkpoint_is_one_line_of_our_own(tmp_path):
    for path in _checkpoints(tmp_path):
        with pytest.raises(RecordError) as caught:
            load_checkpoint(path)
        message = str(caught.value)
        assert "\n" not in message, message
        assert "weights_only" not in message, message
        assert str(path) in message and "is damaged or was not written by landscape" in message
        assert "delete it to restart the unfinished run" in message


def test_a_pickle_declaring_ten_trillion_images_is_refused_without_allocating(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(huge_array_pickle())
    with pytest.raises(DataError, match="declares an array of 30,720,000,000,000,000 values"):
        read_batch(path)


def _gzip_bomb(path: Path, announced: int, zeros: int) -> Path:
    """An IDX image file announcing `announced` 28x28 images whose gzip holds `zeros` bytes."""
    with gzip.open(path, "wb") as f:
        f.write(b"".join(n.to_bytes(4, "big") for n in (IMAGE_MAGIC, announced, 28, 28)))
        block = bytes(1 << 20)
        for _ in range(zeros >> 20):
            f.write(block)
    return path


def test_an_idx_header_announcing_more_than_the_file_can_hold_is_refused_before_reading(
        tmp_path):
    # 40 MiB of zeros compress to about 40 KiB; the header announces 10**9 images (784 GB).
    bomb = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", 10**9, 40 << 20)
    assert bomb.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="more than the .*-byte file can hold"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak:,} bytes allocated to refuse the file"
    # Uncompressed: the file size itself bounds the header.
    plain = tmp_path / "plain-idx3-ubyte"
    write_idx(plain, np.zeros((3, 28, 28), np.uint8))
    data = bytearray(plain.read_bytes())
    data[4:8] = (10**9).to_bytes(4, "big")
    plain.write_bytes(bytes(data))
    with pytest.raises(DataError, match="more than the 2,368-byte file can hold"):
        read_idx(plain)


def test_an_idx_file_with_more_values_than_announced_is_refused(tmp_path):
    path = write_idx(tmp_path / "labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
    assert list(read_idx(path)) == [0, 1, 2, 3, 4]
    with gzip.open(path, "rb") as f:
        raw = f.read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:4] + (2).to_bytes(4, "big") + raw[8:])  # announces 2, holds 5
    with pytest.raises(DataError, match="announces 2 values but the file holds more than 2"):
        read_idx(path)


def test_overwrite_replaces_records_and_empty_files_only(tmp_path):
    empty = tmp_path / "empty.h5"
    empty.touch()
    check_replaceable(empty)
    check_replaceable(tmp_path / "absent.h5")
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    for path in (notes, foreign):
        with pytest.raises(RecordError, match="is not a landscape record"):
            check_replaceable(path)
    assert notes.read_text() == "keep me\n"


def test_record_overwrites_an_empty_file(tmp_path):
    out = tmp_path / "r.h5"
    out.touch()
    result = CliRunner().invoke(main, ["record", *TINY, "--model", "lenet5", "--dataset",
                                       "mnist", "--lrs", "0.01", "--max-steps", "1", "-o",
                                       str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    check_replaceable(out)  # now a record: --overwrite may replace it again


def test_prune_out_in_a_read_only_folder_is_one_line(tmp_path):
    # Root writes anywhere the permission bits forbid; sysfs refuses everyone.
    if os.geteuid() == 0:
        folder = Path("/sys")
    else:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
    record = tmp_path / "r.h5"
    made = CliRunner().invoke(main, ["record", *TINY, "--model", "lenet5", "--dataset", "mnist",
                                     "--lrs", "0.01", "--max-steps", "1", "--save-weights-at",
                                     "final", "-o", str(record)])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(main, ["prune", str(record), "--run", "lenet5_lr0.01",
                                       "--layer", "conv1", "--fractions", "0,50", "--out",
                                       str(folder / "p.png")])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert f"{folder}" in errors[0] and ("permission denied" in errors[0].lower())
    assert not (folder / "p.png").exists()
