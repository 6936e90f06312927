"""The in-memory form of a dataset: uint8 images with labels, and where they came from."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from landscape.errors import ConfigError

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


@dataclass(frozen=True)
class DataIdentity:
    """What a record says about the data it was trained on (stored in the HDF5 root)."""

    name: str  # "cifar10" or "cifar10-embedded-subset"
    source: str  # the folder read, or "embedded"
    train_split: str
    test_split: str
    n_train: int
    n_test: int
    train_sha256: str  # over the training pixels (N, 3, 32, 32 uint8) then labels (int64)
    test_sha256: str
    md5_verified: bool  # files matched the official release's MD5 sums
    note: str

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.name}: {self.n_train:,} training images ({self.train_split}), "
            f"{self.n_test:,} held-out images ({self.test_split}). {self.note}"
        )


@dataclass(frozen=True)
class ImageData:
    """Images as uint8 [N, 3, 32, 32] (channel-major, as CIFAR-10 stores them) and int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    identity: DataIdentity


def pixels_sha256(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def take_subset(data: ImageData, n: int | None) -> ImageData:
    """The first `n` training images (held-out images unchanged); None keeps them all.

    The first images rather than a random draw: CIFAR-10's official order is already shuffled,
    and "images 0..n-1" is a subset anyone can name and reproduce.
    """
    if n is None:
        return data
    available = len(data.train_y)
    if n < 1:
        raise ConfigError(f"--subset must be a positive number of images, got {n}")
    if n > available:
        raise ConfigError(
            f"--subset {n} is larger than the {available:,} training images of "
            f"{data.identity.name}"
        )
    x, y = data.train_x[:n], data.train_y[:n]
    identity = DataIdentity(
        **{
            **data.identity.to_dict(),
            "train_split": f"first {n:,} of {data.identity.train_split}",
            "n_train": n,
            "train_sha256": pixels_sha256(x, y),
        }
    )
    return ImageData(x, y, data.test_x, data.test_y, identity)
