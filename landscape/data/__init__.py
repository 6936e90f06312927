"""Datasets: CIFAR-10, CIFAR-100, SVHN, MNIST and Fashion-MNIST in their official formats, the
embedded offline subsets, data sets from outside (an image folder, torchvision's classes, a
function of the user's), and on-device batches."""

from __future__ import annotations

from pathlib import Path

from landscape.data.batches import BatchOptions, BatchStream, DeviceImages, eval_batches
from landscape.data.cifar10 import load_cifar10, write_batches
from landscape.data.cifar100 import load_cifar100
from landscape.data.embedded import load_embedded
from landscape.data.mnist import load_embedded_mnist, load_mnist
from landscape.data.images import CLASSES, DataIdentity, ImageData, hold_out_validation
from landscape.data.images import take_subset, with_train_stats
from landscape.data.outside import FORMS, is_outside, load_outside
from landscape.data.svhn import load_svhn
from landscape.errors import ConfigError

# The data sets read by name (the first two also without --data-dir: embedded subsets), and
# those named by their form (landscape.data.outside).
DATASETS = ("cifar10", "mnist", "cifar100", "svhn", "fashion_mnist")
_NEEDS_FOLDER = {"cifar100": load_cifar100, "svhn": load_svhn,
                 "fashion_mnist": lambda path, **kw: load_mnist(path, kind="fashion_mnist", **kw)}


def check_dataset_name(name: str) -> None:
    """ConfigError in one line for a name that is no data set (its files are read later)."""
    if name not in DATASETS and not is_outside(name):
        raise ConfigError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}, or "
                          f"{FORMS}", field="data.dataset")


def load_dataset(data_dir: str | Path | None = None, *, download: bool = False,
                 verify_md5: bool = True, subset: int | None = None,
                 dataset: str = "cifar10") -> ImageData:
    """The data set `dataset` (DATASETS, or one from outside: `landscape.data.outside`) from
    `data_dir`; for cifar10 and mnist the embedded subset when `data_dir` is None. The first
    `subset` training images only, if given. See `hold_out_validation` for a validation
    split."""
    check_dataset_name(dataset)
    if is_outside(dataset) and dataset not in DATASETS:
        data = load_outside(dataset, data_dir, download=download)
    elif dataset in _NEEDS_FOLDER:
        if data_dir is None:
            raise ConfigError(f"--dataset {dataset} needs --data-dir (where its files are, or "
                              f"go with --download); only cifar10 and mnist have embedded "
                              f"subsets", field="data.data_dir")
        data = _NEEDS_FOLDER[dataset](Path(data_dir), download=download, verify_md5=verify_md5)
    elif dataset == "mnist":
        data = load_embedded_mnist() if data_dir is None else load_mnist(
            Path(data_dir), download=download, verify_md5=verify_md5)
    else:
        data = load_embedded() if data_dir is None else load_cifar10(
            Path(data_dir), download=download, verify_md5=verify_md5)
    return take_subset(data, subset)


__all__ = [
    "BatchOptions", "BatchStream", "CLASSES", "DATASETS", "DataIdentity", "DeviceImages",
    "ImageData", "check_dataset_name", "eval_batches", "hold_out_validation", "load_cifar10",
    "load_cifar100", "load_dataset", "load_embedded", "load_embedded_mnist", "load_mnist",
    "load_svhn", "take_subset", "with_train_stats", "write_batches",
]
