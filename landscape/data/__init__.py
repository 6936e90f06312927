"""Datasets: CIFAR-10 in its official format, the embedded offline subset, on-device batches."""

from __future__ import annotations

from pathlib import Path

from landscape.data.batches import BatchOptions, BatchStream, DeviceImages, eval_batches
from landscape.data.cifar10 import load_cifar10, write_batches
from landscape.data.embedded import load_embedded
from landscape.data.mnist import load_embedded_mnist, load_mnist
from landscape.data.images import CLASSES, DataIdentity, ImageData, hold_out_validation
from landscape.data.images import take_subset


def load_dataset(data_dir: str | Path | None = None, *, download: bool = False,
                 verify_md5: bool = True, subset: int | None = None,
                 dataset: str = "cifar10") -> ImageData:
    """CIFAR-10 (or MNIST with `dataset="mnist"`) from `data_dir`, or the embedded subset when
    `data_dir` is None (the first `subset` training images only, if given). See
    `hold_out_validation` for a validation split."""
    if dataset == "mnist":
        data = load_embedded_mnist() if data_dir is None else load_mnist(
            Path(data_dir), download=download, verify_md5=verify_md5)
        return take_subset(data, subset)
    data = load_embedded() if data_dir is None else load_cifar10(
        Path(data_dir), download=download, verify_md5=verify_md5)
    return take_subset(data, subset)


__all__ = [
    "BatchOptions", "BatchStream", "CLASSES", "DataIdentity", "DeviceImages", "ImageData",
    "eval_batches", "hold_out_validation", "load_cifar10", "load_dataset", "load_embedded",
    "load_embedded_mnist", "load_mnist",
    "take_subset", "write_batches",
]
