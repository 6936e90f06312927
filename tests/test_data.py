import functools
import hashlib
import http.server
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch
import torchvision

from landscape.data import (BatchOptions, BatchStream, DeviceImages, load_cifar10, load_dataset,
                            load_embedded, take_subset)
from landscape.data.batches import random_crop, random_flip
from landscape.data.cifar10 import BASE_FOLDER, TEST_FILES, TRAIN_FILES, read_batch
from landscape.errors import ConfigError, DataError

from conftest import write_cifar_folder


def test_embedded_subset_is_the_documented_images(embedded):
    ident = embedded.identity
    assert (ident.n_train, ident.n_test) == (1599, 401)
    assert embedded.train_x.shape == (1599, 3, 32, 32) and embedded.train_x.dtype == np.uint8
    # The README's checksum is over the vendored file's (N, H, W, C) pixels in official order.
    from importlib import resources
    with resources.files("landscape.data").joinpath("embedded").joinpath(
            "cifar10_train_0-1999.npz").open("rb") as f:
        raw = np.load(f)["x"]
    assert hashlib.sha256(raw.tobytes()).hexdigest() == \
        "48bb9c317980e186b159dcfcb952fa1079e1aa552a1df3ea4b271375dfbe3207"
    # Held-out images are 20% of every class, never in training.
    all_x = np.concatenate([embedded.train_x, embedded.test_x]).reshape(2000, -1)
    assert len({row.tobytes() for row in all_x}) == 2000
    counts = np.bincount(embedded.test_y, minlength=10)
    totals = counts + np.bincount(embedded.train_y, minlength=10)
    assert np.all(np.abs(counts - 0.2 * totals) <= 0.5)
    assert "not CIFAR-10 results" in ident.note


def test_embedded_split_is_stable(embedded):
    again = load_embedded()
    assert again.identity.test_sha256 == embedded.identity.test_sha256


def test_cifar_format_round_trip(tmp_path, embedded):
    write_cifar_folder(tmp_path, embedded, n_train=50, n_test=10)
    data = load_cifar10(tmp_path, verify_md5=False)
    np.testing.assert_array_equal(data.train_x, embedded.train_x[:50])
    np.testing.assert_array_equal(data.train_y, embedded.train_y[:50])
    np.testing.assert_array_equal(data.test_x, embedded.test_x[:10])
    assert data.identity.name == "cifar10" and data.identity.md5_verified is False
    # The folder itself works as --data-dir too.
    assert load_cifar10(tmp_path / BASE_FOLDER, verify_md5=False).identity.n_train == 50


def test_torchvision_reads_our_files_identically(tmp_path, embedded, monkeypatch):
    """The files are in the real format: torchvision's own CIFAR10 (MD5 check bypassed, since
    these are not the official files) decodes the same pixels and labels."""
    write_cifar_folder(tmp_path, embedded, n_train=50, n_test=10)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    tv = torchvision.datasets.CIFAR10(str(tmp_path), train=True)
    np.testing.assert_array_equal(tv.data.transpose(0, 3, 1, 2), embedded.train_x[:50])
    assert tv.targets == embedded.train_y[:50].tolist()
    assert tv.classes[0] == "airplane"


def test_md5_verification_rejects_unofficial_files(cifar_dir):
    with pytest.raises(DataError, match="data_batch_1 is not the official CIFAR-10 file.*"
                                        "--no-verify"):
        load_cifar10(cifar_dir)


def test_missing_files_are_listed_with_instructions(tmp_path, embedded):
    write_cifar_folder(tmp_path, embedded, n_train=50, n_test=10)
    (tmp_path / BASE_FOLDER / "data_batch_3").unlink()
    (tmp_path / BASE_FOLDER / "test_batch").unlink()
    with pytest.raises(DataError) as err:
        load_cifar10(tmp_path, verify_md5=False)
    message = str(err.value)
    assert "data_batch_3, test_batch" in message and "--download" in message
    with pytest.raises(DataError, match="lacks data_batch_1"):
        load_cifar10(tmp_path / "nowhere")


def test_truncated_batch_is_a_data_error(tmp_path, embedded):
    folder = write_cifar_folder(tmp_path, embedded, n_train=50, n_test=10) / BASE_FOLDER
    path = folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="data_batch_2 is not a readable CIFAR-10 batch"):
        load_cifar10(tmp_path, verify_md5=False)


def test_pickles_naming_other_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(DataError, match="refusing to load .*print"):
        read_batch(path)


def test_wrong_shapes_are_reported(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": np.zeros((3, 100), np.uint8), "labels": [0, 1, 2]},
                                  protocol=2))
    with pytest.raises(DataError, match=r"uint8 \[N, 3072\]"):
        read_batch(path)


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on the loopback interface serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_goes_through_torchvision(tmp_path, embedded, monkeypatch, local_server):
    """--download fetches and MD5-checks the archive with torchvision. Here the archive is
    served over HTTP from this machine, with its MD5 sums patched into torchvision's table."""
    www, base_url = local_server
    source = write_cifar_folder(tmp_path / "src", embedded, n_train=50, n_test=10)
    archive = www / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / BASE_FOLDER, arcname=BASE_FOLDER)

    def md5(path):
        return hashlib.md5(path.read_bytes()).hexdigest()

    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "url", f"{base_url}/cifar-10-python.tar.gz")
    monkeypatch.setattr(cls, "tgz_md5", md5(archive))
    monkeypatch.setattr(cls, "train_list",
                        [[n, md5(source / BASE_FOLDER / n)] for n in TRAIN_FILES])
    monkeypatch.setattr(cls, "test_list", [[n, md5(source / BASE_FOLDER / n)] for n in TEST_FILES])
    monkeypatch.setattr(cls, "meta",
                        {**cls.meta, "md5": md5(source / BASE_FOLDER / "batches.meta")})
    target = tmp_path / "downloaded"
    data = load_cifar10(target, download=True)  # and MD5-verified against the patched table
    assert data.identity.md5_verified is True
    np.testing.assert_array_equal(data.train_x, embedded.train_x[:50])
    assert (target / "cifar-10-python.tar.gz").is_file()


def test_failed_download_says_what_to_do(tmp_path, monkeypatch, local_server):
    _, base_url = local_server
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", f"{base_url}/absent.tar.gz")
    with pytest.raises(DataError, match="downloading CIFAR-10 into .* failed"):
        load_cifar10(tmp_path, download=True)


def test_subset_takes_the_first_images(embedded):
    sub = take_subset(embedded, 100)
    np.testing.assert_array_equal(sub.train_x, embedded.train_x[:100])
    assert sub.identity.n_train == 100 and sub.identity.train_sha256 != \
        embedded.identity.train_sha256
    with pytest.raises(ConfigError, match="--subset 5000 is larger than the 1,599"):
        take_subset(embedded, 5000)
    assert load_dataset(subset=64).identity.n_train == 64


def stream_for(embedded, seed, **options):
    images = DeviceImages(embedded.train_x[:100], embedded.train_y[:100], torch.device("cpu"))
    return BatchStream(images, BatchOptions(batch_size=32, **options), seed=seed)


def test_batches_are_seeded_normalized_and_complete(embedded):
    a = [(x.clone(), y.clone()) for x, y in stream_for(embedded, 3).epoch()]
    b = [(x.clone(), y.clone()) for x, y in stream_for(embedded, 3).epoch()]
    assert len(a) == 3  # 100 // 32, the last incomplete batch is dropped
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = next(stream_for(embedded, 4).epoch())
    assert not torch.equal(a[0][1], c[1])
    # mean 0.5 / std 0.5 maps pixel 0 to -1 and 255 to +1; the first batch is images
    # randperm(100)[:32] of a generator seeded with 3.
    idx = torch.randperm(100, generator=torch.Generator().manual_seed(3))[:32]
    expected = torch.from_numpy(embedded.train_x[:100][idx.numpy()]).float() / 255 * 2 - 1
    torch.testing.assert_close(a[0][0], expected, rtol=0, atol=1e-6)
    assert torch.equal(a[0][1], torch.from_numpy(embedded.train_y[:100][idx.numpy()]))


def test_every_epoch_is_a_new_order(embedded):
    stream = stream_for(embedded, 0)
    first = torch.cat([y for _, y in stream.epoch()])
    second = torch.cat([y for _, y in stream.epoch()])
    assert not torch.equal(first, second)


def test_random_crop_matches_per_image_crops():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    g = torch.Generator().manual_seed(1)
    dy = torch.randint(0, 5, (6,), generator=g)
    dx = torch.randint(0, 5, (6,), generator=g)
    out = random_crop(x, 2, dy, dx)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8])


def test_augmentation_is_seeded_flips_about_half_and_keeps_labels(embedded):
    x = torch.from_numpy(embedded.train_x[:400])
    mask = torch.rand(400, generator=torch.Generator().manual_seed(0)) < 0.5
    out = random_flip(x, mask)
    for i in range(400):
        assert torch.equal(out[i], x[i].flip(2) if mask[i] else x[i])
    assert 150 < int(mask.sum()) < 250
    a = [(x.clone(), y.clone()) for x, y in stream_for(embedded, 0, flip=True,
                                                        crop_padding=4).epoch()]
    b = [(x.clone(), y.clone()) for x, y in stream_for(embedded, 0, flip=True,
                                                        crop_padding=4).epoch()]
    plain = [y for _, y in stream_for(embedded, 0).epoch()]
    for (xa, ya), (xb, yb), y in zip(a, b, plain):
        assert xa.shape == (32, 3, 32, 32) and torch.equal(xa, xb)
        assert torch.equal(ya, y)  # augmentation changes pixels, never which image or label
