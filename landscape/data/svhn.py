"""SVHN (the cropped digits, format 2) in its official files `train_32x32.mat` and
`test_32x32.mat` (torchvision's `SVHN` root layout), read with scipy's `loadmat` as
torchvision reads them, checked against torchvision's MD5 table and downloaded through it.

The files hold `X`, uint8 [32, 32, 3, N], and `y`, [N, 1] labels 1 to 10 where 10 is the
digit 0; as torchvision does, the digit is the label (10 becomes 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landscape.data.images import DataIdentity, ImageData, file_md5, pixels_sha256
from landscape.errors import DataError

SPLITS = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
URL = "http://ufldl.stanford.edu/housenumbers/"


def official_md5() -> dict[str, str]:
    """MD5 sums of the official files (torchvision's table, not a copy of it)."""
    from torchvision.datasets import SVHN

    return {name: md5 for _, name, md5 in SVHN.split_list.values()}


def load_svhn(data_dir: Path, *, download: bool = False, verify_md5: bool = True) -> ImageData:
    """The 73,257 training and 26,032 test digits of SVHN (the `extra` split is not read),
    uint8 [N, 3, 32, 32], labels 0-9."""
    folder = Path(data_dir)
    missing = [f for f in SPLITS.values() if not (folder / f).is_file()]
    if missing and download:
        from torchvision.datasets import SVHN

        try:
            for split in SPLITS:
                SVHN(root=str(folder), split=split, download=True)
        except Exception as exc:  # network errors come in many types; all mean the same here
            raise DataError(f"downloading SVHN into {folder} failed ({exc}). Without "
                            f"internet, put {' and '.join(SPLITS.values())} from {URL} "
                            f"there.") from exc
        missing = [f for f in SPLITS.values() if not (folder / f).is_file()]
    if missing:
        raise DataError(f"SVHN not found: {folder} lacks {', '.join(missing)}. Add --download "
                        f"to fetch it (needs internet), or put the files from {URL} there.")
    if verify_md5:
        expected = official_md5()
        for name in SPLITS.values():
            actual = file_md5(folder / name)
            if actual != expected[name]:
                raise DataError(f"{folder / name} is not the official SVHN file (MD5 {actual}, "
                                f"expected {expected[name]}); re-download it, or pass "
                                f"--no-verify to read it anyway (the record says so).")
    train_x, train_y = read_mat(folder / SPLITS["train"])
    test_x, test_y = read_mat(folder / SPLITS["test"])
    identity = DataIdentity(
        name="svhn", source=str(folder.resolve()),
        train_split=f"official training file ({SPLITS['train']})",
        test_split=f"official test file ({SPLITS['test']})",
        n_train=len(train_y), n_test=len(test_y),
        train_sha256=pixels_sha256(train_x, train_y), test_sha256=pixels_sha256(test_x, test_y),
        md5_verified=verify_md5, num_classes=10,
        note="SVHN (cropped digits) files in the official .mat format; label 10 read as 0"
        + ("" if verify_md5 else " (not checked against the official MD5 sums)") + ".")
    return ImageData(train_x, train_y, test_x, test_y, identity)


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN file: images uint8 [N, 3, 32, 32] and labels int64 [N] (digits 0-9)."""
    import scipy.io

    try:
        entry = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a file that is not a .mat
        raise DataError(f"{path} is not a readable SVHN .mat file ({exc})") from exc
    x, y = entry.get("X"), entry.get("y")
    if x is None or y is None:
        raise DataError(f"{path} is not an SVHN file (no 'X' or 'y' variable)")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: 'X' should be uint8 [32, 32, 3, N], found {x.dtype} "
                        f"{list(x.shape)}")
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    if len(labels) != x.shape[3]:
        raise DataError(f"{path}: {len(labels)} labels for {x.shape[3]} images")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise DataError(f"{path}: labels outside 1-10")
    labels[labels == 10] = 0  # the digit 0 (torchvision does the same)
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels  # [N, C, H, W]


def write_svhn(data_dir: Path, train: tuple[np.ndarray, np.ndarray],
               test: tuple[np.ndarray, np.ndarray]) -> Path:
    """Write images uint8 [N, 3, 32, 32] and digits 0-9 as the official .mat files (X
    [32, 32, 3, N], y [N, 1] with 0 stored as 10). For tests."""
    import scipy.io

    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in (("train", train), ("test", test)):
        labels = np.where(np.asarray(y) == 0, 10, np.asarray(y)).astype(np.uint8)[:, None]
        scipy.io.savemat(str(folder / SPLITS[split]),
                         {"X": np.ascontiguousarray(np.asarray(x, np.uint8).transpose(2, 3, 1, 0)),
                          "y": labels})
    return folder
