"""Data sets from outside CIFAR-10 and MNIST, in their official formats, written small by the
tests: each reader against torchvision's own dataset class reading the same files, each
through `landscape record`, the training split's mean and std computed and stored, and bad
files refused in one line."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from landscape.cli import main
from landscape.config import RecordConfig
from landscape.data import load_dataset
from landscape.data.cifar100 import write_cifar100
from landscape.data.mnist import write_idx
from landscape.data.svhn import write_svhn
from landscape.errors import DataError
from landscape.store import open_record
from landscape.training.tasks import make_task


@pytest.fixture(scope="module")
def images(embedded):
    """200 training and 60 held-out real CIFAR-10 images, labels spread over 100 classes."""
    x, y = embedded.train_x[:260], embedded.train_y[:260]
    fine = (y * 10 + np.arange(260) % 10).astype(np.int64)  # 0-99, as CIFAR-100's fine labels
    return (x[:200], fine[:200]), (x[200:], fine[200:])


def _record(*args):
    result = CliRunner().invoke(main, ["record", "--max-steps", "2", "--batch-size", "16",
                                       "--lrs", "0.01", "--device", "cpu", "--no-taps",
                                       *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_cifar100_reads_as_torchvision_reads_it(tmp_path, images, monkeypatch, one_thread):
    write_cifar100(tmp_path, *images)
    data = load_dataset(tmp_path, dataset="cifar100", verify_md5=False)
    import torchvision.datasets.cifar
    from torchvision.datasets import CIFAR100

    # Not the release: torchvision's MD5 checks would refuse the files (ours too, below).
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    for ours, split in (((data.train_x, data.train_y), True),
                        ((data.test_x, data.test_y), False)):
        theirs = CIFAR100(str(tmp_path), train=split)
        np.testing.assert_array_equal(ours[0], theirs.data.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(ours[1], theirs.targets)
    assert data.identity.num_classes == 100 and len(theirs.classes) == 100
    with pytest.raises(DataError, match="is not the official CIFAR-100 file"):
        load_dataset(tmp_path, dataset="cifar100")  # MD5 checked unless --no-verify
    out = tmp_path / "c100.h5"
    _record("--model", "vgg_light", "--width", "0.125", "--dataset", "cifar100", "--data-dir",
            tmp_path, "--no-verify", "-o", out)
    rec = open_record(out)
    (run,) = rec.runs.values()
    assert rec.data["name"] == "cifar100" and rec.data["num_classes"] == 100
    assert run.attrs["build_options"]["num_classes"] == 100  # from the data


def test_svhn_reads_as_torchvision_reads_it(tmp_path, images, monkeypatch, one_thread):
    (x, y), (tx, ty) = images
    write_svhn(tmp_path, (x, y % 10), (tx, ty % 10))
    data = load_dataset(tmp_path, dataset="svhn", verify_md5=False)
    from torchvision.datasets import SVHN

    monkeypatch.setattr(SVHN, "_check_integrity", lambda self: True)
    theirs = SVHN(str(tmp_path), split="train")
    np.testing.assert_array_equal(data.train_x, theirs.data)
    np.testing.assert_array_equal(data.train_y, theirs.labels)
    assert (data.train_y == 0).any()  # the digit 0, stored as 10
    np.testing.assert_array_equal(data.test_x, tx)
    out = tmp_path / "svhn.h5"
    _record("--model", "vgg_light", "--width", "0.125", "--dataset", "svhn", "--data-dir",
            tmp_path, "--no-verify", "--subset", "96", "--seeds", "3", "--crop-padding", "2",
            "--flip", "-o", out)
    assert open_record(out).data["n_train"] == 96


def _write_fashion(root, images):
    """Fashion-MNIST's four files, gzipped (as released) and unpacked (as torchvision keeps
    them after a download), from 28x28 crops of real images."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (x, y), (tx, ty) = images
    for name, array in (("train-images-idx3-ubyte", x[:, 0, :28, :28]),
                        ("train-labels-idx1-ubyte", y % 10),
                        ("t10k-images-idx3-ubyte", tx[:, 1, 2:30, 2:30]),
                        ("t10k-labels-idx1-ubyte", ty % 10)):
        write_idx(raw / f"{name}.gz", array)
        with gzip.open(raw / f"{name}.gz") as packed, open(raw / name, "wb") as plain:
            shutil.copyfileobj(packed, plain)


def test_fashion_mnist_reads_as_torchvision_reads_it(tmp_path, images, one_thread):
    _write_fashion(tmp_path, images)
    ours = load_dataset(tmp_path, dataset="fashion_mnist", verify_md5=False)
    theirs = load_dataset(tmp_path, dataset="torchvision:FashionMNIST")  # torchvision's class
    for name in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
    assert ours.train_x.shape[1:] == (1, 28, 28) and theirs.identity.num_classes == 10
    out = tmp_path / "fashion.h5"
    _record("--model", "lenet5", "--width", "0.5", "--dataset", "fashion_mnist", "--data-dir",
            tmp_path, "--no-verify", "--normalize", "train", "-o", out)
    data = open_record(out).data
    assert data["name"] == "fashion_mnist"
    pixels = ours.train_x.astype(np.float64) / 255
    np.testing.assert_allclose(data["train_mean"], [pixels.mean()], atol=1e-6)
    np.testing.assert_allclose(data["train_std"], [pixels.std()], atol=1e-6)


def _write_folder(root, x, y, classes=("cat", "dog", "ship")):
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:04d}.png")


def test_an_image_folder_of_pngs(tmp_path, images, monkeypatch, one_thread):
    (x, y), (tx, ty) = images
    _write_folder(tmp_path / "shapes" / "train", x[:90], y[:90] % 3)
    _write_folder(tmp_path / "shapes" / "test", tx[:30], ty[:30] % 3)
    data = load_dataset(dataset=f"imagefolder:{tmp_path / 'shapes'}")
    order = np.lexsort((np.arange(90), y[:90] % 3))  # ImageFolder: by class, then file name
    np.testing.assert_array_equal(data.train_x, x[:90][order])  # PNG keeps every pixel
    np.testing.assert_array_equal(data.train_y, (y[:90] % 3)[order])
    assert data.identity.num_classes == 3 and len(data.test_y) == 30
    config = RecordConfig(dataset=f"imagefolder:{tmp_path / 'shapes'}", batch_size=16,
                          normalize_from="train")
    task = make_task(config, torch.device("cpu"))
    pixels = task.train.x.double() / 255
    expected = pixels.mean(dim=(0, 2, 3))
    np.testing.assert_allclose(task.options.mean, expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(task.options.std, pixels.std(dim=(0, 2, 3), unbiased=False),
                               atol=1e-6)
    out = tmp_path / "folder.h5"
    monkeypatch.chdir(tmp_path)
    _record("--model", "vgg_light", "--width", "0.125", "--dataset", "imagefolder:shapes",
            "-o", out)
    rec = open_record(out)
    (run,) = rec.runs.values()
    assert run.attrs["build_options"]["num_classes"] == 3
    assert rec.config["dataset"] == f"imagefolder:{tmp_path / 'shapes'}"  # for --resume


def test_a_folder_without_test_split_holds_out_a_fifth(tmp_path, images):
    (x, y), _ = images
    _write_folder(tmp_path / "flat", x[:50], y[:50] % 2, classes=("a", "b"))
    data = load_dataset(dataset=f"imagefolder:{tmp_path / 'flat'}")
    assert len(data.train_y) + len(data.test_y) == 50
    for label in (0, 1):  # 20% of each class
        assert (data.test_y == label).sum() == round(0.2 * ((y[:50] % 2) == label).sum())


def test_bad_data_are_one_line(tmp_path, images):
    (x, y), _ = images
    _write_folder(tmp_path / "mixed", x[:2], [0, 0], classes=("a",))
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "mixed" / "a" / "z.png")
    runner = CliRunner()
    for args, message in (
            (["--dataset", f"imagefolder:{tmp_path / 'mixed'}"],
             "image 2 is 3x20x24, image 0 3x32x32; every image must have one size"),
            (["--dataset", "svhn"], "--dataset svhn needs --data-dir"),
            (["--dataset", "cifar100", "--data-dir", tmp_path / "no"], "CIFAR-100 not found"),
            (["--dataset", "torchvision:Imagenette2"], "torchvision has no dataset"),
            (["--normalize", "train", "--mean", "0.4"],
             "give --normalize or --mean, not both")):
        result = runner.invoke(main, ["record", "--max-steps", "1", "--device", "cpu",
                                      *map(str, args), "-o", str(tmp_path / "x.h5")])
        errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
        assert result.exit_code != 0 and len(errors) == 1 and message in errors[0], \
            result.output
