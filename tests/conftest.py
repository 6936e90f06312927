"""Shared fixtures: small CIFAR-10 folders in the official format, written from real images."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.data import load_embedded, write_batches


@pytest.fixture(scope="session", autouse=True)
def tuning_cache(tmp_path_factory):
    """Records measure their memory format (landscape.training.tuning) and cache the answer: tests use a
    cache of their own, empty at the start, never the user's.

    They also train in one format, channels-last, whatever this machine measures: the tests that
    compare a record bit for bit with an independent loop build that loop in channels-last, and
    which format times faster differs between machines (on the CI machine it chose NCHW for
    vgg_bn, and BN's chaos grew the rounding difference to 8% in 12 steps). The tests of the
    measuring itself (test_speed_choices.py) set the variable themselves."""
    saved = {name: os.environ.get(name) for name in ("LANDSCAPE_CACHE_DIR",
                                                     "LANDSCAPE_MEMORY_FORMAT")}
    os.environ["LANDSCAPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("tuning-cache"))
    os.environ["LANDSCAPE_MEMORY_FORMAT"] = "channels_last"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train fastest on one thread; on a busy machine, threads that wait for each
    other make them many times slower. Restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def embedded():
    return load_embedded()


def write_cifar_folder(root: Path, embedded, n_train: int = 320, n_test: int = 64) -> Path:
    """A cifar-10-batches-py folder holding real CIFAR-10 images from the embedded subset."""
    write_batches(root, (embedded.train_x[:n_train], embedded.train_y[:n_train]),
                  (embedded.test_x[:n_test], embedded.test_y[:n_test]))
    return root


def huge_array_pickle(images: int = 10**13) -> bytes:
    """A CIFAR-10 batch pickle whose 'data' array declares `images` images (numpy allocates an
    array of the declared shape before it reads the data), holding none of them."""
    reconstruct = np.empty(0).__reduce__()[0]  # numpy's _reconstruct, wherever numpy keeps it

    class Declared:
        def __reduce__(self):
            return reconstruct, (np.ndarray, (images, 3072), b"b")  # as numpy pickles it

    return pickle.dumps({"data": Declared(), "labels": [0]}, protocol=2)


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory, embedded) -> Path:
    return write_cifar_folder(tmp_path_factory.mktemp("cifar"), embedded)


def recorded(out: Path, args: list[str]) -> Path:
    """`landscape record ARGS -o OUT`, in process; OUT once it succeeded."""
    from click.testing import CliRunner
    from landscape.cli import main

    result = CliRunner().invoke(main, [*map(str, args), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


# Options that make a record in about a second on a CPU: 1/8-width VGG, 32-image batches.
TINY = ["--width", "0.125", "--batch-size", "32", "--max-steps", "6", "--device", "cpu"]


@pytest.fixture
def tiny_args(cifar_dir) -> list[str]:
    return [*TINY, "--data-dir", str(cifar_dir), "--no-verify"]


def assert_records_equal(a, b) -> None:
    """Every array of every run in two records is identical."""
    assert list(a.runs) == list(b.runs)
    for run_id in a.runs:
        da, db = a.load(run_id), b.load(run_id)
        for table in ("steps", "eval", "probe"):
            ta, tb = getattr(da, table), getattr(db, table)
            if ta is None:
                assert tb is None
                continue
            for name, value in vars(ta).items():
                np.testing.assert_array_equal(value, getattr(tb, name), err_msg=f"{run_id} {name}")
        for param in a.runs[run_id].taps:
            pa, pb = a.tap(run_id, param), b.tap(run_id, param)
            np.testing.assert_array_equal(pa.grad, pb.grad)
            np.testing.assert_array_equal(pa.weight_delta, pb.weight_delta)
