"""The CIFAR-10 subset vendored in the package: the offline default (see embedded/README.md)."""

from __future__ import annotations

from importlib import resources

import numpy as np

from landscape.data.images import DataIdentity, ImageData, pixels_sha256
from landscape.data.split import stratified_split

EMBEDDED_FILE = "cifar10_train_0-1999.npz"
HELD_OUT_FRACTION = 0.2
# Fixed forever: the held-out images must be the same in every record made from this subset.
SPLIT_SEED = 20181203


def load_embedded() -> ImageData:
    """Official CIFAR-10 training images 0-1999, split 1,599 train / 401 held out (20% of each class)."""
    with resources.files("landscape.data").joinpath("embedded").joinpath(EMBEDDED_FILE).open("rb") as f:
        with np.load(f) as archive:
            x = archive["x"].transpose(0, 3, 1, 2).copy()  # (N, H, W, C) -> (N, C, H, W)
            y = archive["y"].astype(np.int64)
    train_idx, test_idx = stratified_split(y, HELD_OUT_FRACTION, seed=SPLIT_SEED)
    identity = DataIdentity(
        name="cifar10-embedded-subset",
        source="embedded",
        train_split=f"official training images 0-1999 minus the held-out {len(test_idx)}",
        test_split=f"{len(test_idx)} of official training images 0-1999 (20% of each class, "
        f"seed {SPLIT_SEED})",
        n_train=len(train_idx),
        n_test=len(test_idx),
        train_sha256=pixels_sha256(x[train_idx], y[train_idx]),
        test_sha256=pixels_sha256(x[test_idx], y[test_idx]),
        md5_verified=False,
        note="A 2,000-image subset of the CIFAR-10 training set shipped with landscape; "
        "results on it are not CIFAR-10 results.",
    )
    return ImageData(x[train_idx], y[train_idx], x[test_idx], y[test_idx], identity)

