"""CIFAR-10 in its official on-disk form (`cifar-10-batches-py`), read without torchvision's
per-image Dataset, and downloaded through torchvision when the user asks for it.

The official files are pickles. Unpickling runs code named in the file, so the reader only lets
through the numpy globals an array needs: a file that names anything else is refused.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
from pathlib import Path

import numpy as np

from landscape.data.images import DataIdentity, ImageData, file_md5, pixels_sha256
from landscape.errors import DataError

BASE_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 pickles spell bytes in protocol 2
}


def official_md5() -> dict[str, str]:
    """MD5 sums of the official release's batch files (torchvision's table, not a copy of it)."""
    from torchvision.datasets import CIFAR10

    return {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}


def batches_folder(data_dir: Path) -> Path:
    """Accept either torchvision's root (holding cifar-10-batches-py/) or that folder itself."""
    data_dir = Path(data_dir)
    return data_dir if data_dir.name == BASE_FOLDER else data_dir / BASE_FOLDER


def download_cifar10(data_dir: Path) -> None:
    """Download and extract the official archive into `data_dir` (torchvision checks its MD5)."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(root=str(data_dir), train=True, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same here
        raise DataError(
            f"downloading CIFAR-10 into {data_dir} failed ({exc}). Without internet, download "
            f"{ARCHIVE_URL} elsewhere and extract it into {data_dir}."
        ) from exc


def load_cifar10(data_dir: Path, *, download: bool = False, verify_md5: bool = True) -> ImageData:
    """The 50,000 training and 10,000 test images from `data_dir`.

    Args:
        data_dir: the folder holding `cifar-10-batches-py/` (or that folder itself).
        download: fetch the official archive first when files are missing.
        verify_md5: refuse files whose MD5 differs from the official release. Turning it off reads
            any files in the official format (e.g. ones written by tests); the record then says
            the data was not verified.
    """
    folder = batches_folder(data_dir)
    names = TRAIN_FILES + TEST_FILES
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and download:
        download_cifar10(Path(data_dir))
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}. Add --download to fetch "
            f"it (needs internet), or extract {ARCHIVE_URL} into {Path(data_dir)}; without "
            f"--data-dir, landscape uses its embedded 2,000-image subset."
        )
    if verify_md5:
        expected = official_md5()
        for name in names:
            actual = file_md5(folder / name)
            if actual != expected[name]:
                raise DataError(
                    f"{folder / name} is not the official CIFAR-10 file (MD5 {actual}, expected "
                    f"{expected[name]}); it may be truncated or modified. Re-download it, or pass "
                    f"--no-verify to read it anyway (the record will say it was not verified)."
                )
    train_x, train_y = _read_batches(folder, TRAIN_FILES)
    test_x, test_y = _read_batches(folder, TEST_FILES)
    identity = DataIdentity(
        name="cifar10",
        source=str(folder.resolve()),
        train_split=f"training batches {', '.join(TRAIN_FILES)}",
        test_split="official test batch",
        n_train=len(train_y),
        n_test=len(test_y),
        train_sha256=pixels_sha256(train_x, train_y),
        test_sha256=pixels_sha256(test_x, test_y),
        md5_verified=verify_md5,
        note="CIFAR-10 files in the official format"
        + ("" if verify_md5 else " (not checked against the official MD5 sums)")
        + ".",
    )
    return ImageData(train_x, train_y, test_x, test_y, identity)



class _ArrayOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, *, size: int, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._size = size  # bytes in the file: no array it describes can hold more

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        found = super().find_class(module, name)
        if name == "_reconstruct":
            return functools.partial(_reconstruct_within, found, self._size)
        return found


def _reconstruct_within(reconstruct, size: int, cls, shape, dtype):
    """numpy's `_reconstruct`, which allocates an array of the shape the pickle declares before
    its data are read: a declared shape larger than the whole file (10**13 images) is refused
    instead of allocated."""
    try:
        count = math.prod(int(n) for n in shape)
        nbytes = count * np.dtype(dtype).itemsize
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"an array of shape {shape!r}, dtype {dtype!r}") from exc
    if count < 0 or nbytes > size:
        raise pickle.UnpicklingError(f"it declares an array of {count:,} values ({nbytes:,} "
                                     f"bytes) in a file of {size:,} bytes")
    return reconstruct(cls, shape, dtype)


def _read_batches(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        x, y = read_batch(folder / name)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def read_batch(path: Path, *, labels_key: str = "labels", classes: int = 10,
               what: str = "CIFAR-10") -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images uint8 [N, 3, 32, 32] and labels int64 [N] (CIFAR-100's files:
    `labels_key="fine_labels"`, `classes=100`)."""
    try:
        with open(path, "rb") as f:
            # latin1, as torchvision does: the official files are Python 2 pickles.
            entry = _ArrayOnlyUnpickler(f, size=os.fstat(f.fileno()).st_size,
                                        encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a readable {what} batch file ({exc})") from exc
    if not isinstance(entry, dict):
        raise DataError(f"{path} is not a {what} batch file (it holds no dictionary)")
    data = entry.get("data")
    labels = entry.get(labels_key)
    if data is None or labels is None:
        raise DataError(f"{path} is not a {what} batch file (no 'data' or '{labels_key}' "
                        f"entry)")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: 'data' should be uint8 [N, 3072], found {data.dtype} {list(data.shape)}"
        )
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {len(labels)} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > classes - 1):
        raise DataError(f"{path}: labels outside 0-{classes - 1}")
    # Each row is 1024 red, then 1024 green, then 1024 blue values, row-major within a channel.
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def write_batches(data_dir: Path, train: tuple[np.ndarray, np.ndarray],
                  test: tuple[np.ndarray, np.ndarray]) -> Path:
    """Write images in the official format: `data_dir/cifar-10-batches-py/` with five training
    batches (the training images split as evenly as possible), a test batch and batches.meta.

    `train` and `test` are (uint8 [N, 3, 32, 32], labels [N]). Used by the tests and benchmarks
    to make small folders that the reader handles exactly like the real release.
    """
    folder = Path(data_dir) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = train
    parts = np.array_split(np.arange(len(train_y)), len(TRAIN_FILES))
    for i, (name, idx) in enumerate(zip(TRAIN_FILES, parts), start=1):
        _write_batch(folder / name, train_x[idx], train_y[idx], f"training batch {i} of 5")
    _write_batch(folder / TEST_FILES[0], *test, "testing batch 1 of 1")
    from landscape.data.images import CLASSES

    meta = {"label_names": list(CLASSES), "num_cases_per_batch": 10000, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


def _write_batch(path: Path, x: np.ndarray, y: np.ndarray, label: str) -> None:
    entry = {
        "batch_label": label,
        "labels": [int(v) for v in y],
        "data": np.ascontiguousarray(x, dtype=np.uint8).reshape(len(x), -1),
        "filenames": [f"image_{i}.png" for i in range(len(x))],
    }
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)
