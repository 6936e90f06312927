"""`landscape record` end to end on a small CIFAR-format folder, checked against independent
recomputations."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from landscape import open_record
from landscape.cli import main
from landscape.data import load_cifar10
from landscape.models import build_model

from conftest import assert_records_equal


def run_cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def sgd_record(tmp_path_factory, cifar_dir):
    """vgg_bn and vgg at two learning rates, plain SGD, 12 steps (over an epoch boundary)."""
    out = tmp_path_factory.mktemp("rec") / "sgd.h5"
    result = run_cli("record", "--model", "vgg_bn,vgg", "--lrs", "0.05,0.01", "--optimizer",
                     "sgd", "--width", "0.125", "--batch-size", "32", "--max-steps", "12",
                     "--device", "cpu", "--data-dir", cifar_dir, "--no-verify", "-o", out)
    assert result.exit_code == 0, result.output
    return out, result


def reference_losses(cifar_dir, model_name, lr, steps, seed=0):
    """The same training as an independent plain loop: NCHW tensors, torch's SGD."""
    data = load_cifar10(cifar_dir, verify_md5=False)
    # mean 0.5, std 0.5 of [0, 1] pixels, in pixel units (the same rounding as the recorder)
    x_all = (torch.from_numpy(data.train_x).float() - 127.5) / 127.5
    x_all = x_all.contiguous(memory_format=torch.channels_last)
    y_all = torch.from_numpy(data.train_y)
    torch.manual_seed(seed)
    model = build_model(model_name, width=0.125).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    per_epoch = len(y_all) // 32
    losses, grad_norms = [], []
    for step in range(steps):
        if step % per_epoch == 0:
            perm = torch.randperm(len(y_all), generator=order)
        idx = perm[(step % per_epoch) * 32:(step % per_epoch + 1) * 32]
        loss = torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        grad_norms.append(torch.sqrt(sum((p.grad.double() ** 2).sum()
                                         for p in model.parameters())).item())
        losses.append(loss.item())
        opt.step()
    return np.array(losses), np.array(grad_norms), model


def test_record_writes_every_run_complete(sgd_record):
    out, result = sgd_record
    rec = open_record(out)
    assert list(rec.runs) == ["vgg_bn_lr0.05", "vgg_bn_lr0.01", "vgg_lr0.05", "vgg_lr0.01"]
    for run in rec.runs.values():
        assert run.status == "complete" and run.steps_done == 12
        data = rec.load(run.run_id)
        np.testing.assert_array_equal(data.steps.step, np.arange(12))
        assert np.isnan(data.steps.grad_change[0]) and np.all(data.steps.grad_change[1:] > 0)
        np.testing.assert_array_equal(data.steps.lr, run.lr)
        # 320 images / batch 32 = 10 steps per epoch: evaluations after epoch 1 and at the end.
        np.testing.assert_array_equal(data.eval.step, [10, 12])
        np.testing.assert_allclose(data.eval.epoch, [1.0, 1.2])
        assert np.all((data.eval.test_acc >= 0) & (data.eval.test_acc <= 1))
    assert rec.data["name"] == "cifar10" and rec.data["n_train"] == 320
    assert rec.data["md5_verified"] is False
    assert rec.config["optimizer"] == "sgd" and rec.config["lrs"] == [0.05, 0.01]
    assert "cifar10: 320 training images" in result.output


@pytest.mark.parametrize("model_name", ["vgg_bn", "vgg"])
def test_recorded_losses_match_an_independent_training_loop(sgd_record, cifar_dir, model_name):
    out, _ = sgd_record
    data = open_record(out).load(f"{model_name}_lr0.05")
    losses, grad_norms, _ = reference_losses(cifar_dir, model_name, 0.05, 12)
    # Same data order, initialization, arithmetic and updates: the instrumented loop trains
    # exactly like a plain one. (With BN at lr 0.05 this tiny net is chaotic: a 1e-7 difference
    # in rounding grows to 1e-2 within a few steps, so "close" would not be a meaningful test.)
    np.testing.assert_allclose(data.steps.loss, losses, rtol=1e-6)
    np.testing.assert_allclose(data.steps.grad_norm, grad_norms, rtol=1e-5)


def test_sgd_update_and_taps_follow_the_update_rule(sgd_record):
    rec = open_record(sgd_record[0])
    data = rec.load("vgg_lr0.05")
    # Plain SGD: w_{t+1} − w_t = −lr g_t, so ‖Δw‖ = lr ‖g‖, and per tapped tensor likewise.
    np.testing.assert_allclose(data.steps.update_norm, 0.05 * data.steps.grad_norm, rtol=1e-4)
    tap = rec.tap("vgg_lr0.05", "classifier.fc3.weight")
    np.testing.assert_array_equal(tap.step, np.arange(12))
    assert tap.grad.shape == (12, 10, 64)
    # The delta is a float32 difference of weights of size ~0.1-1: exact to ~1e-7 absolute.
    np.testing.assert_allclose(tap.weight_delta, -0.05 * tap.grad, rtol=1e-4, atol=2e-7)
    assert np.all(np.linalg.norm(tap.grad.reshape(12, -1), axis=1) <= data.steps.grad_norm)
    # grad_change is ‖g_t − g_{t−1}‖ over all parameters: at least that of one tensor.
    tapped_change = np.linalg.norm(np.diff(tap.grad.astype(np.float64), axis=0).reshape(11, -1),
                                   axis=1)
    assert np.all(tapped_change <= data.steps.grad_change[1:] * (1 + 1e-5))


def test_adam_first_update_has_its_closed_form(tmp_path, tiny_args):
    out = tmp_path / "adam.h5"
    result = run_cli("record", *tiny_args, "--model", "vgg", "--lrs", "0.001",
                     "--max-steps", "1", "-o", out)
    assert result.exit_code == 0, result.output
    rec = open_record(out)
    tap = rec.tap("vgg_lr0.001", "classifier.fc3.weight")
    g = tap.grad[0].astype(np.float64)
    # Adam's first step, bias-corrected: Δw = −lr · g / (|g| + eps).
    np.testing.assert_allclose(tap.weight_delta[0], -0.001 * g / (np.abs(g) + 1e-8),
                               rtol=1e-4, atol=1e-10)


def test_same_seed_gives_identical_records(tmp_path, tiny_args):
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for path in paths:
        result = run_cli("record", *tiny_args, "--lrs", "0.001,0.002", "-o", path)
        assert result.exit_code == 0, result.output
    assert_records_equal(open_record(paths[0]), open_record(paths[1]))
    other = tmp_path / "c.h5"
    run_cli("record", *tiny_args, "--lrs", "0.001,0.002", "--seed", "1", "-o", other)
    first = open_record(paths[0]).load("vgg_lr0.001").steps.loss
    assert not np.array_equal(first, open_record(other).load("vgg_lr0.001").steps.loss)


def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_args):
    out = tmp_path / "div.h5"
    result = run_cli("record", *tiny_args, "--model", "vgg", "--optimizer", "sgd",
                     "--lrs", "1e4,0.01", "-o", out)
    assert result.exit_code == 0, result.output
    rec = open_record(out)
    bad, good = rec.runs["vgg_lr10000"], rec.runs["vgg_lr0.01"]
    assert bad.status == "diverged" and bad.diverged_step is not None
    assert good.status == "complete" and good.steps_done == 6
    loss = rec.load("vgg_lr10000").steps.loss
    assert len(loss) == bad.diverged_step + 1 == bad.steps_done
    assert not np.isfinite(loss[-1]) and np.all(np.isfinite(loss[:-1]))
    assert "diverged" in result.output


def test_tap_every_keeps_consecutive_pairs(tmp_path, tiny_args):
    out = tmp_path / "thin.h5"
    result = run_cli("record", *tiny_args, "--model", "vgg_bn", "--lrs", "0.001",
                     "--max-steps", "12", "--tap-every", "5", "--tap-dtype", "float16",
                     "--tap", "classifier.fc3.weight", "--tap", "features.stage1.conv1.weight",
                     "-o", out)
    assert result.exit_code == 0, result.output
    rec = open_record(out)
    tap = rec.tap("vgg_bn_lr0.001", "features.stage1.conv1.weight")
    np.testing.assert_array_equal(tap.step, [0, 1, 5, 6, 10, 11])
    assert tap.grad.dtype == np.float16 and tap.grad.shape == (6, 8, 3, 3, 3)


def test_info_shows_runs_status_and_taps(sgd_record):
    out, _ = sgd_record
    result = run_cli("info", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("cifar10: 320 training / 64 held-out samples" in line for line in lines)
    row = next(line for line in lines if line.startswith("vgg_bn_lr0.05"))
    assert "complete" in row and "classifier.fc3.weight" in row and " 12 " in row
