"""MNIST in its official IDX files (torchvision's `MNIST/raw/` layout), read without
torchvision's Dataset, downloaded through torchvision when asked; and the embedded offline
default, a split of the official *test* set (see embedded/mnist_t10k/README.md). Fashion-MNIST
(Xiao et al. 2017) has the same files, names and format (`FashionMNIST/raw/`, torchvision's
`FashionMNIST` for its MD5 sums and downloads): `load_mnist(..., kind="fashion_mnist")`.

IDX (LeCun's format): a big-endian header, magic 0x00000801 for a label file (then the count)
or 0x00000803 for an image file (then count, rows, columns), followed by uint8 values.
"""

from __future__ import annotations

import gzip
import math
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from landscape.data.images import DataIdentity, ImageData, file_md5, pixels_sha256
from landscape.data.split import stratified_split
from landscape.errors import DataError

RAW_FOLDER = Path("MNIST") / "raw"
# kind -> (torchvision's class, which is also its folder under the root; the data's name)
KINDS = {"mnist": ("MNIST", "MNIST"), "fashion_mnist": ("FashionMNIST", "Fashion-MNIST")}
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
LABEL_MAGIC, IMAGE_MAGIC = 0x801, 0x803
EMBEDDED_FOLDER = "mnist_t10k"
HELD_OUT_FRACTION = 0.2
# Fixed forever: the held-out images must be the same in every record made from this subset.
SPLIT_SEED = 19981101


def official_md5(kind: str = "mnist") -> dict[str, str]:
    """MD5 sums of the official .gz files (torchvision's table, not a copy of it)."""
    import torchvision.datasets

    resources = getattr(torchvision.datasets, KINDS[kind][0]).resources
    return {url.rsplit("/", 1)[-1]: md5 for url, md5 in resources}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip-compressed if its name ends in .gz): uint8 labels [N] or images
    [N, rows, cols]. Refuses a file whose header or length is not IDX's."""
    path = Path(path)
    try:
        compressed = path.suffix == ".gz"
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            header = f.read(16)
            dims, offset = _idx_header(path, header)
            expected = math.prod(dims)
            # The header is checked against the file before its values are read: a gzip file
            # cannot expand more than DEFLATE_MAX_RATIO times, so a header announcing more
            # values than that (a damaged or crafted file) is refused without allocating them.
            most = path.stat().st_size * (DEFLATE_MAX_RATIO if compressed else 1)
            if expected > most:
                raise DataError(f"{path}: the header announces {'x'.join(map(str, dims))} "
                                f"values, more than the {path.stat().st_size:,}-byte file can "
                                f"hold; it is corrupt")
            raw = header[offset:] + f.read(max(0, expected + 1 - (len(header) - offset)))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path} ({exc})") from exc
    if len(raw) != expected:
        held = f"{len(raw)}" if len(raw) <= expected else f"more than {expected}"
        raise DataError(f"{path}: the header announces {'x'.join(map(str, dims))} values but "
                        f"the file holds {held}; it is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims).copy()


# DEFLATE (gzip) encodes at most 258 bytes in about 2 bits, a ratio of 1032:1 at best.
DEFLATE_MAX_RATIO = 1032


def _idx_header(path: Path, header: bytes) -> tuple[list[int], int]:
    """The dimensions an IDX header announces and where its values start."""
    if len(header) < 8:
        raise DataError(f"{path} is not an MNIST IDX file (only {len(header)} bytes)")
    magic = int.from_bytes(header[:4], "big")
    if magic == LABEL_MAGIC:
        return [int.from_bytes(header[4:8], "big")], 8
    if magic == IMAGE_MAGIC and len(header) >= 16:
        return [int.from_bytes(header[i:i + 4], "big") for i in (4, 8, 12)], 16
    raise DataError(f"{path} is not an MNIST IDX file (magic number {magic:#010x}, "
                    f"expected {LABEL_MAGIC:#010x} or {IMAGE_MAGIC:#010x})")


def raw_folder(data_dir: Path, kind: str = "mnist") -> Path:
    """Accept torchvision's root (holding MNIST/raw/ or FashionMNIST/raw/) or the raw folder
    itself."""
    data_dir = Path(data_dir)
    nested = data_dir / KINDS[kind][0] / "raw"
    return nested if nested.is_dir() else data_dir


def _find(folder: Path, name: str) -> Path | None:
    """The .gz file (whose MD5 can be checked) if present, else the uncompressed one."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def download_mnist(data_dir: Path, kind: str = "mnist") -> None:
    """Download the official files into `data_dir/MNIST/raw` (torchvision checks their MD5)."""
    import torchvision.datasets

    cls, name = KINDS[kind]
    try:
        getattr(torchvision.datasets, cls)(root=str(data_dir), train=True, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same here
        raise DataError(
            f"downloading {name} into {data_dir} failed ({exc}). Without internet, put the four "
            f"official files (train-/t10k- images and labels, .gz) into "
            f"{Path(data_dir) / cls / 'raw'}"
            + ("; without --data-dir, landscape uses its embedded subset of the MNIST test set."
               if kind == "mnist" else ".")
        ) from exc


def _load_pair(folder: Path, names: tuple[str, str], verify_md5: bool, kind: str = "mnist"
               ) -> tuple[np.ndarray, np.ndarray]:
    paths = [_find(folder, n) for n in names]
    if verify_md5:
        expected = official_md5(kind)
        for path in paths:
            if path.suffix != ".gz":
                raise DataError(f"{path} is uncompressed, so its MD5 cannot be checked against "
                                f"the official .gz file's; add {path.name}.gz, or pass "
                                f"--no-verify to read it anyway")
            actual = file_md5(path)
            if actual != expected[path.name]:
                raise DataError(
                    f"{path} is not the official {KINDS[kind][1]} file (MD5 {actual}, expected "
                    f"{expected[path.name]}); it may be truncated or modified. Re-download it, "
                    f"or pass --no-verify to read it anyway (the record will say so).")
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{paths[0]} must hold images and {paths[1]} labels")
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} "
                        f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"{paths[1]}: labels outside 0-9")
    return images[:, None], labels.astype(np.int64)  # [N, 1, 28, 28]


def load_mnist(data_dir: Path, *, download: bool = False, verify_md5: bool = True,
               kind: str = "mnist") -> ImageData:
    """The 60,000 official training and 10,000 official test images from `data_dir` (torchvision's
    root holding MNIST/raw/, or the raw folder), uint8 [N, 1, 28, 28]; Fashion-MNIST's
    (FashionMNIST/raw/) with `kind="fashion_mnist"`."""
    folder = raw_folder(data_dir, kind)
    names = TRAIN_FILES + TEST_FILES
    label = KINDS[kind][1]
    missing = [n for n in names if _find(folder, n) is None]
    if missing and download:
        download_mnist(Path(data_dir), kind)
        folder = raw_folder(data_dir, kind)
        missing = [n for n in names if _find(folder, n) is None]
    if missing:
        raise DataError(
            f"{label} not found: {folder} lacks {', '.join(n + '.gz' for n in missing)}. Add "
            f"--download to fetch it (needs internet)"
            + ("; without --data-dir, landscape uses its embedded subset of the MNIST test set."
               if kind == "mnist" else "."))
    train_x, train_y = _load_pair(folder, TRAIN_FILES, verify_md5, kind)
    test_x, test_y = _load_pair(folder, TEST_FILES, verify_md5, kind)
    identity = DataIdentity(
        name=kind,
        source=str(folder.resolve()),
        train_split="official training files (train-*-idx*-ubyte)",
        test_split="official test files (t10k-*-idx*-ubyte)",
        n_train=len(train_y),
        n_test=len(test_y),
        train_sha256=pixels_sha256(train_x, train_y),
        test_sha256=pixels_sha256(test_x, test_y),
        md5_verified=verify_md5,
        note=f"{label} files in the official IDX format"
        + ("" if verify_md5 else " (not checked against the official MD5 sums)") + ".",
    )
    return ImageData(train_x, train_y, test_x, test_y, identity)


def load_embedded_mnist() -> ImageData:
    """The official MNIST test set shipped with the package (MD5 checked), split 8,000 train /
    2,000 held out (20% of each class, fixed seed): a subset of MNIST's test set, never MNIST."""
    folder = resources.files("landscape.data").joinpath("embedded").joinpath(EMBEDDED_FOLDER)
    with resources.as_file(folder) as path:
        x, y = _load_pair(Path(path), TEST_FILES, verify_md5=True)
    train_idx, test_idx = stratified_split(y, HELD_OUT_FRACTION, seed=SPLIT_SEED)
    identity = DataIdentity(
        name="mnist-t10k-embedded-subset",
        source="embedded",
        train_split=f"official MNIST test images minus the held-out {len(test_idx)}",
        test_split=f"{len(test_idx)} of the official MNIST test images (20% of each class, "
        f"seed {SPLIT_SEED})",
        n_train=len(train_idx),
        n_test=len(test_idx),
        train_sha256=pixels_sha256(x[train_idx], y[train_idx]),
        test_sha256=pixels_sha256(x[test_idx], y[test_idx]),
        md5_verified=True,
        note="A split of the 10,000-image official MNIST test set shipped with landscape "
        "(MD5-verified); training and held-out images both come from MNIST's test set, so "
        "results on it are not MNIST (test) results.",
    )
    return ImageData(x[train_idx], y[train_idx], x[test_idx], y[test_idx], identity)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write uint8 labels [N] or images [N, rows, cols] as an IDX file (gzip if the name ends in
    .gz): used by the tests to make files that the reader and torchvision both read."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: LABEL_MAGIC, 3: IMAGE_MAGIC}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
    return Path(path)

