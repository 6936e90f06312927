"""The in-memory form of a dataset: uint8 images with labels, and where they came from."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace

import numpy as np

from landscape.data.split import stratified_split
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
    # A validation split carved from the training images (--val-split); never trained on.
    val_split: str = ""  # how it was drawn; "" without one
    n_val: int = 0
    val_sha256: str = ""
    # The labels run from 0 to num_classes - 1 (the models' outputs); 0 for regression.
    num_classes: int = 10
    # Per-channel mean and standard deviation of the training images' pixels scaled to
    # [0, 1] (`with_train_stats`, once the training split is final; --normalize train).
    train_mean: tuple[float, ...] = ()
    train_std: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        unit = "samples" if self.name == "gaussian-linear" else "images"
        val = (f", {self.n_val:,} validation {unit} ({self.val_split})" if self.n_val else "")
        return (
            f"{self.name}: {self.n_train:,} training {unit} ({self.train_split}){val}, "
            f"{self.n_test:,} held-out {unit} ({self.test_split}). {self.note}"
        )


@dataclass(frozen=True)
class ImageData:
    """Images as uint8 [N, C, H, W] (channel-major, as CIFAR-10 stores them: [N, 3, 32, 32])
    and int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    identity: DataIdentity
    val_x: np.ndarray | None = None  # the validation split, if one was held out
    val_y: np.ndarray | None = None


def file_md5(path) -> str:
    """The MD5 of a file, read in blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def with_train_stats(data: ImageData) -> ImageData:
    """`data` with the per-channel mean and standard deviation (population) of its training
    pixels, scaled to [0, 1], in its identity, rounded to 6 digits. From each channel's
    histogram of the 256 pixel values, so exact and without a float copy of the images."""
    x = data.train_x
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(x.shape[1]):
        counts = np.bincount(x[:, c].ravel(), minlength=256).astype(np.float64)
        m = float(counts @ values / counts.sum())
        mean.append(round(m, 6))
        std.append(round(float(np.sqrt(counts @ (values - m) ** 2 / counts.sum())), 6))
    identity = replace(data.identity, train_mean=tuple(mean), train_std=tuple(std))
    return replace(data, identity=identity)


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


def hold_out_validation(data: ImageData, fraction: float, *, seed: int) -> ImageData:
    """Move a stratified, seeded `fraction` of the training images into a validation split.

    From every class, round(fraction · count) images chosen at random (numpy's PCG64 seeded
    with `seed`) are held out; the remaining training images keep their order. The identity
    says so (train_split, n_train, train_sha256, and val_split, n_val, val_sha256).
    """
    if data.val_x is not None:
        raise ConfigError("these data already have a validation split")
    if not 0 < fraction < 1:
        raise ConfigError(f"--val-split must be a fraction in (0, 1), got {fraction}")
    train_idx, val_idx = stratified_split(data.train_y, fraction, seed=seed)
    n = len(data.train_y)
    if not len(val_idx):
        raise ConfigError(f"--val-split {fraction:g} holds out no image of the {n:,} training "
                          f"images; use a larger fraction")
    train_x, train_y = data.train_x[train_idx], data.train_y[train_idx]
    val_x, val_y = data.train_x[val_idx], data.train_y[val_idx]
    before = data.identity.train_split
    identity = DataIdentity(**{
        **data.identity.to_dict(),
        "train_split": f"{before}, minus the {len(val_idx):,} validation images",
        "n_train": len(train_idx),
        "train_sha256": pixels_sha256(train_x, train_y),
        "val_split": f"{fraction:g} of each class of {before} (seed {seed})",
        "n_val": len(val_idx),
        "val_sha256": pixels_sha256(val_x, val_y),
    })
    return ImageData(train_x, train_y, data.test_x, data.test_y, identity, val_x, val_y)
