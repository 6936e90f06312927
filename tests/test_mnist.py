"""The MNIST IDX reader against torchvision's own MNIST class, the embedded split of the
official test set, and LeNet-5 training on it."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from landscape.data import load_dataset
from landscape.data.mnist import (
    IMAGE_MAGIC, LABEL_MAGIC, TEST_FILES, TRAIN_FILES, load_embedded_mnist, load_mnist, read_idx,
    write_idx,
)
from landscape.errors import DataError
from landscape.models import build_model


def _write_raw(root, rng, n_train=30, n_test=12, *, gz=True, plain=True):
    """Small IDX files in torchvision's layout: root/MNIST/raw/, gzip and/or uncompressed."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for (images, labels), n in ((TRAIN_FILES, n_train), (TEST_FILES, n_test)):
        arrays[images] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[labels] = rng.integers(0, 10, size=n, dtype=np.uint8)
    for name, array in arrays.items():
        if gz:
            write_idx(raw / f"{name}.gz", array)
        if plain:
            write_idx(raw / name, array)
    return raw, arrays


def test_written_files_have_the_official_magic_numbers(tmp_path):
    _, arrays = _write_raw(tmp_path, np.random.default_rng(0))
    raw = tmp_path / "MNIST" / "raw"
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz", "rb") as f:
        head = f.read(16)
    assert int.from_bytes(head[:4], "big") == IMAGE_MAGIC == 2051
    assert [int.from_bytes(head[i:i + 4], "big") for i in (4, 8, 12)] == [12, 28, 28]
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        assert int.from_bytes(f.read(4), "big") == LABEL_MAGIC == 2049


@pytest.mark.parametrize("train", [True, False])
def test_reader_matches_torchvision(tmp_path, train):
    """torchvision's MNIST reads the uncompressed files, ours the gzip ones: same arrays."""
    _write_raw(tmp_path, np.random.default_rng(1))
    theirs = MNIST(root=str(tmp_path), train=train, download=False)
    ours = load_mnist(tmp_path, verify_md5=False)
    x, y = (ours.train_x, ours.train_y) if train else (ours.test_x, ours.test_y)
    assert x.shape == (len(theirs.data), 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0], theirs.data.numpy())
    np.testing.assert_array_equal(y, theirs.targets.numpy())
    assert not ours.identity.md5_verified


def test_raw_folder_itself_and_uncompressed_files(tmp_path):
    raw, arrays = _write_raw(tmp_path, np.random.default_rng(2), gz=False)
    data = load_mnist(raw, verify_md5=False)
    np.testing.assert_array_equal(data.test_x[:, 0], arrays["t10k-images-idx3-ubyte"])
    with pytest.raises(DataError, match="uncompressed, so its MD5 cannot be checked"):
        load_mnist(raw, verify_md5=True)


def test_md5_check_refuses_files_that_are_not_official(tmp_path):
    _write_raw(tmp_path, np.random.default_rng(3), plain=False)
    with pytest.raises(DataError, match="is not the official MNIST file"):
        load_mnist(tmp_path)


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(DataError, match="MNIST not found.*--download"):
        load_mnist(tmp_path / "nothing")
    raw, _ = _write_raw(tmp_path, np.random.default_rng(4), plain=False)
    path = raw / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        content = f.read()
    with gzip.open(path, "wb") as f:
        f.write(content[:1000])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(path)
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x02" + content[4:])
    with pytest.raises(DataError, match="magic number"):
        read_idx(path)


def test_embedded_subset_is_the_official_test_set_split():
    data = load_embedded_mnist()
    assert data.identity.md5_verified
    assert (data.identity.n_train, data.identity.n_test) == (8000, 2000)
    assert "test set" in data.identity.note and "not MNIST" in data.identity.note
    # Together the two parts are the official test set's 10,000 images (README's class counts).
    y = np.concatenate([data.train_y, data.test_y])
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    pixels = np.concatenate([data.train_x, data.test_x])
    assert pixels.mean() == pytest.approx(33.79, abs=0.01)
    # The held-out images never enter training: no image is in both parts.
    train = {hashlib.sha1(im.tobytes()).digest() for im in data.train_x}
    assert not any(hashlib.sha1(im.tobytes()).digest() in train for im in data.test_x)
    same = load_dataset(dataset="mnist")
    assert same.identity.test_sha256 == data.identity.test_sha256


def test_lenet5_takes_mnist_images():
    for name in ("lenet5", "lenet5_bn"):
        model = build_model(name)
        assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    names = [n for n, _ in build_model("lenet5").named_parameters()]
    assert "features.conv3.weight" in names and "classifier.fc1.weight" in names
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in build_model("lenet5_bn").modules())
