"""CIFAR-100 in its official on-disk form (`cifar-100-python/`: pickles `train` and `test`),
read by the CIFAR-10 reader (which refuses a pickle that names anything but numpy arrays),
checked against torchvision's MD5 table and downloaded through torchvision's `CIFAR100`."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from landscape.data.cifar10 import read_batch
from landscape.data.images import DataIdentity, ImageData, file_md5, pixels_sha256
from landscape.errors import DataError

BASE_FOLDER = "cifar-100-python"
TRAIN_FILE, TEST_FILE = "train", "test"
CLASSES = 100
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"


def official_md5() -> dict[str, str]:
    """MD5 sums of the official files (torchvision's table, not a copy of it)."""
    from torchvision.datasets import CIFAR100

    return {name: md5 for name, md5 in CIFAR100.train_list + CIFAR100.test_list}


def _folder(data_dir: Path) -> Path:
    """torchvision's root (holding cifar-100-python/) or that folder itself."""
    data_dir = Path(data_dir)
    return data_dir if data_dir.name == BASE_FOLDER else data_dir / BASE_FOLDER


def load_cifar100(data_dir: Path, *, download: bool = False, verify_md5: bool = True
                  ) -> ImageData:
    """The 50,000 training and 10,000 test images of CIFAR-100 with their fine labels (100
    classes), uint8 [N, 3, 32, 32]."""
    folder = _folder(data_dir)
    missing = [n for n in (TRAIN_FILE, TEST_FILE) if not (folder / n).is_file()]
    if missing and download:
        from torchvision.datasets import CIFAR100

        try:
            CIFAR100(root=str(data_dir), train=True, download=True)
        except Exception as exc:  # network errors come in many types; all mean the same here
            raise DataError(f"downloading CIFAR-100 into {data_dir} failed ({exc}). Without "
                            f"internet, extract {ARCHIVE_URL} into {data_dir}.") from exc
        missing = [n for n in (TRAIN_FILE, TEST_FILE) if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-100 not found: {folder} lacks {', '.join(missing)}. Add "
                        f"--download to fetch it (needs internet), or extract {ARCHIVE_URL} "
                        f"into {Path(data_dir)}.")
    if verify_md5:
        expected = official_md5()
        for name in (TRAIN_FILE, TEST_FILE):
            actual = file_md5(folder / name)
            if actual != expected[name]:
                raise DataError(f"{folder / name} is not the official CIFAR-100 file (MD5 "
                                f"{actual}, expected {expected[name]}); re-download it, or "
                                f"pass --no-verify to read it anyway (the record says so).")
    train_x, train_y = _read(folder / TRAIN_FILE)
    test_x, test_y = _read(folder / TEST_FILE)
    identity = DataIdentity(
        name="cifar100", source=str(folder.resolve()),
        train_split="official training file (train)", test_split="official test file (test)",
        n_train=len(train_y), n_test=len(test_y),
        train_sha256=pixels_sha256(train_x, train_y), test_sha256=pixels_sha256(test_x, test_y),
        md5_verified=verify_md5, num_classes=CLASSES,
        note="CIFAR-100 files in the official format, fine labels (100 classes)"
        + ("" if verify_md5 else " (not checked against the official MD5 sums)") + ".")
    return ImageData(train_x, train_y, test_x, test_y, identity)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    return read_batch(path, labels_key="fine_labels", classes=CLASSES, what="CIFAR-100")


def write_cifar100(data_dir: Path, train: tuple[np.ndarray, np.ndarray],
                   test: tuple[np.ndarray, np.ndarray]) -> Path:
    """Write images in the official format: `data_dir/cifar-100-python/` with `train`, `test`
    (dicts of 'data' uint8 [N, 3072], 'fine_labels', 'coarse_labels', 'filenames',
    'batch_label', Python 2 protocol) and `meta`. For tests: files the reader, and
    torchvision's own CIFAR100, read like the release."""
    folder = Path(data_dir) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in ((TRAIN_FILE, train), (TEST_FILE, test)):
        entry = {"batch_label": f"{name}ing batch 1 of 1",
                 "fine_labels": [int(v) for v in y],
                 "coarse_labels": [int(v) // 5 for v in y],
                 "data": np.ascontiguousarray(x, dtype=np.uint8).reshape(len(x), -1),
                 "filenames": [f"image_{i}.png" for i in range(len(x))]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {"fine_label_names": [f"class_{i}" for i in range(CLASSES)],
            "coarse_label_names": [f"superclass_{i}" for i in range(20)]}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder
