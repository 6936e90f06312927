"""Data sets from outside the built-in readers, through torchvision's own dataset classes or a
function of the user's, turned into uint8 arrays once (then on the device like CIFAR-10):

- `imagefolder:PATH`: `torchvision.datasets.ImageFolder` over PATH/train/<class>/ and
  PATH/test/<class>/ (or PATH/val/<class>/), or PATH/<class>/ alone, of which a fixed 20% of
  each class is held out (seed HOLD_OUT_SEED);
- `torchvision:NAME`: `torchvision.datasets.NAME(root=--data-dir, train=True/False or
  split="train"/"test", download=--download)`; one without a split is held out as above;
- `package.module:factory`: `factory()` (or `factory(root=--data-dir)` if it takes `root`)
  returning (train, test), each a dataset of (image, label) items or a pair of arrays
  (uint8 images [N, C, H, W], labels [N]).

Images are kept as they are (no resizing): every image of a data set must have one size, and
grayscale ("L") images one channel, every other mode three (RGB).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np

from landscape.data.images import DataIdentity, ImageData, pixels_sha256
from landscape.data.split import stratified_split
from landscape.errors import ConfigError, DataError

IMAGEFOLDER, TORCHVISION = "imagefolder:", "torchvision:"
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
FORMS = "imagefolder:PATH, torchvision:NAME or package.module:factory"
HOLD_OUT_FRACTION = 0.2
# Fixed forever: the held-out images of a folder without a test split stay the same.
HOLD_OUT_SEED = 20240601
_HELD_OUT_FOLDERS = ("test", "val")


def is_outside(name: str) -> bool:
    return name.startswith((IMAGEFOLDER, TORCHVISION)) or bool(_FACTORY.match(name))


def load_outside(name: str, data_dir: str | Path | None, *, download: bool) -> ImageData:
    """The data set `name` (one of FORMS) as uint8 arrays with its identity."""
    if name.startswith(IMAGEFOLDER):
        return _image_folder(Path(name[len(IMAGEFOLDER):]).expanduser())
    if name.startswith(TORCHVISION):
        return _torchvision(name[len(TORCHVISION):], data_dir, download)
    if _FACTORY.match(name):
        return _factory(name, data_dir)
    raise ConfigError(f"unknown dataset {name!r}; give {FORMS}")


def _image_folder(root: Path) -> ImageData:
    from torchvision.datasets import ImageFolder

    if not root.is_dir():
        raise DataError(f"imagefolder:{root}: no such folder")
    held_out = next((root / f for f in _HELD_OUT_FOLDERS if (root / "train").is_dir()
                     and (root / f).is_dir()), None)
    try:
        train = ImageFolder(str(root / "train" if held_out else root))
        test = ImageFolder(str(held_out)) if held_out else None
    except (FileNotFoundError, RuntimeError) as exc:  # no class folder, no image file
        raise DataError(f"imagefolder:{root}: {exc}") from None
    if test is not None:
        unknown = sorted(set(test.classes) - set(train.classes))
        if unknown:
            raise DataError(f"imagefolder:{root}: {held_out.name}/ has classes train/ lacks: "
                            f"{', '.join(unknown[:5])}")
    name, source = f"imagefolder:{root.name}", str(root.resolve())
    x, y = _arrays(train, name)
    if test is None:
        return _held_out(x, y, name, source, len(train.classes),
                         "the images of PATH/<class>/")
    tx, ty = _arrays(test, name)
    ty = np.array([train.class_to_idx[test.classes[t]] for t in ty], dtype=np.int64)
    return _identified(x, y, tx, ty, name=name, source=source, classes=len(train.classes),
                       train_split="PATH/train/<class>/",
                       test_split=f"PATH/{held_out.name}/<class>/",
                       note="an image folder read by torchvision.datasets.ImageFolder")


def _torchvision(cls_name: str, data_dir, download: bool) -> ImageData:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, cls_name, None)
    if not (isinstance(cls, type) and hasattr(cls, "__getitem__")):
        raise ConfigError(f"torchvision has no dataset {cls_name!r} (torchvision.datasets)")
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    if "root" in params:
        if data_dir is None:
            raise ConfigError(f"--dataset torchvision:{cls_name} needs --data-dir (its root)")
        kwargs["root"] = str(data_dir)
    if "download" in params:
        kwargs["download"] = download
    splits = ([{"train": True}, {"train": False}] if "train" in params else
              [{"split": "train"}, {"split": "test"}] if "split" in params else [])
    made = []
    try:
        for split in splits or [{}]:
            made.append(cls(**kwargs, **split))
    except (RuntimeError, FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"torchvision.datasets.{cls_name} cannot read {data_dir} ({exc}); "
                        f"add --download where it can fetch it") from None
    name, source = f"torchvision:{cls_name}", str(Path(data_dir).resolve()) if data_dir \
        else "torchvision"
    classes = _class_count(made[0])
    x, y = _arrays(made[0], name)
    note = f"read by torchvision.datasets.{cls_name}"
    if len(made) == 1:
        return _held_out(x, y, name, source, classes or int(y.max()) + 1, note)
    tx, ty = _arrays(made[1], name)
    return _identified(x, y, tx, ty, name=name, source=source,
                       classes=classes or int(max(y.max(), ty.max())) + 1,
                       train_split=f"{cls_name} {splits[0]}", test_split=f"{cls_name} "
                       f"{splits[1]}", note=note)


def _factory(name: str, data_dir) -> ImageData:
    module_name, _, function = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function)
    except Exception as exc:  # importing runs the user's module: any error means the same
        raise ConfigError(f"cannot load dataset factory {name!r} ({type(exc).__name__}: "
                          f"{exc}); put its module's folder on PYTHONPATH") from None
    takes_root = "root" in inspect.signature(factory).parameters
    parts = factory(root=str(data_dir)) if takes_root and data_dir else factory()
    if not (isinstance(parts, (tuple, list)) and len(parts) == 2):
        raise DataError(f"dataset factory {name!r} must return (train, test), got "
                        f"{type(parts).__name__}")
    (x, y), (tx, ty) = (_arrays(part, name) for part in parts)
    classes = _class_count(parts[0]) or int(max(y.max(), ty.max())) + 1
    return _identified(x, y, tx, ty, name=name, source=str(name), classes=classes,
                       train_split="the factory's train part", test_split="its test part",
                       note=f"returned by {name}")


def _class_count(dataset) -> int | None:
    classes = getattr(dataset, "classes", None)
    return len(classes) if classes is not None and len(classes) else None


def _arrays(part, name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, C, H, W] and int64 labels [N] from a pair of arrays or a dataset of
    (image, label) items (PIL images, uint8 arrays [H, W] or [H, W, C], uint8 tensors
    [C, H, W])."""
    if isinstance(part, (tuple, list)) and len(part) == 2 and hasattr(part[0], "shape"):
        x, y = np.asarray(part[0]), np.asarray(part[1]).astype(np.int64).reshape(-1)
        if x.dtype != np.uint8 or x.ndim != 4 or len(x) != len(y):
            raise DataError(f"dataset {name}: arrays must be uint8 images [N, C, H, W] and N "
                            f"labels, got {x.dtype} {list(x.shape)} and {len(y)} labels")
        return np.ascontiguousarray(x), y
    if not len(part):
        raise DataError(f"dataset {name} has no images")
    images, labels = [], []
    for i in range(len(part)):
        image, label = part[i]
        images.append(_image(image, name))
        labels.append(int(label))
        if images[-1].shape != images[0].shape:
            raise DataError(f"dataset {name}: image {i} is {_shape(images[-1])}, image 0 "
                            f"{_shape(images[0])}; every image must have one size (landscape "
                            f"does not resize)")
    y = np.asarray(labels, dtype=np.int64)
    if y.min() < 0:
        raise DataError(f"dataset {name}: negative labels")
    return np.stack(images), y


def _image(image, name: str) -> np.ndarray:
    """One image as uint8 [C, H, W]."""
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL
        image = np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB"))
    elif hasattr(image, "numpy") and getattr(image, "ndim", 0) == 3:  # a CHW tensor
        image = image.numpy().transpose(1, 2, 0)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise DataError(f"dataset {name}: items must be PIL images or uint8 images, got "
                        f"{image.dtype} {list(image.shape)}")
    return (image[None] if image.ndim == 2 else image.transpose(2, 0, 1)).copy()


def _shape(image: np.ndarray) -> str:
    return "x".join(map(str, image.shape))


def _held_out(x, y, name, source, classes, what) -> ImageData:
    train_idx, test_idx = stratified_split(y, HOLD_OUT_FRACTION, seed=HOLD_OUT_SEED)
    return _identified(x[train_idx], y[train_idx], x[test_idx], y[test_idx], name=name,
                       source=source, classes=classes,
                       train_split=f"{what}, minus the held-out {len(test_idx)}",
                       test_split=f"{len(test_idx)} of them (20% of each class, seed "
                                  f"{HOLD_OUT_SEED})",
                       note=f"{what}, without a test split of its own")


def _identified(x, y, tx, ty, *, name, source, classes, train_split, test_split,
                note) -> ImageData:
    if y.max() >= classes or (len(ty) and ty.max() >= classes):
        raise DataError(f"dataset {name}: labels up to {max(y.max(), ty.max())} for "
                        f"{classes} classes")
    identity = DataIdentity(name=name, source=source, train_split=train_split,
                            test_split=test_split, n_train=len(y), n_test=len(ty),
                            train_sha256=pixels_sha256(x, y), test_sha256=pixels_sha256(tx, ty),
                            md5_verified=False, num_classes=int(classes), note=note + ".")
    return ImageData(x, y, tx, ty, identity)
