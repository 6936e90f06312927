"""DessiLBI runs recorded like any other: the sparsity and Γ tables against the weights they
describe, the landscape probes on such runs, training untouched by the probes, resuming, and
`landscape prune` on a tiny record."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from landscape.cli import main
from landscape.config import RecordConfig
from landscape.optim import make_slbi
from landscape.probes.sparsity import slbi_probes
from landscape.kept.prune import prune_order, prune_run
from landscape.training.recorder import MemoryRecorder
from landscape.store import open_record
from landscape.sweep import record
from landscape.training.loop import train_run

from conftest import assert_records_equal

# LeNet-5 on the embedded MNIST subset, small μ so that Γ's support grows within a few steps.
MU = 0.5
SLBI = dict(models=("lenet5", "lenet5_bn"), dataset="mnist", lrs=(0.1,), optimizer="slbi",
            slbi_mu=MU, slbi_layers=("conv1", "conv3", "fc1"), batch_size=64, max_steps=40,
            save_weights_at=(), device="cpu")


def _config(**changes):
    values = {**SLBI, **changes}
    values["save_final_weights"] = True
    return RecordConfig(**values)


@pytest.fixture(scope="module")
def slbi_record(tmp_path_factory, one_thread):
    path = tmp_path_factory.mktemp("slbi") / "slbi.h5"
    config = _config(probe=dict(every=4, count=3), ics_every=4, ics_layers=("features.conv2",),
                     activation_every=4, activation_layers=("features.norm2",),
                     models=("lenet5_bn",))
    record(config, path)
    return path


def test_sparsity_and_gamma_describe_the_final_weights(slbi_record):
    rec = open_record(slbi_record)
    (run_id,) = rec.runs
    sparsity = rec.sparsity(run_id)
    assert sparsity.layers == ("features.conv1.weight", "features.conv3.weight",
                               "classifier.fc1.weight")
    assert sparsity.step.tolist() == list(range(40))
    assert sparsity.nonzero_fraction.shape == sparsity.residue.shape == (40, 3)
    gamma = rec.gamma(run_id)
    weights = rec.weights(run_id)
    assert weights.step == 40
    for i, layer in enumerate(sparsity.layers):
        g, w = gamma[layer].astype(np.float64), weights.state[layer].astype(np.float64)
        # Ground truth from the tensors themselves, in float64.
        residue = ((w - g) ** 2).sum() / (2 * MU)
        assert sparsity.residue[-1, i] == pytest.approx(residue, rel=1e-4)
        groups = np.abs(g.reshape(len(g), -1)).sum(1) if g.ndim == 4 else np.abs(g).ravel()
        assert sparsity.nonzero_fraction[-1, i] == pytest.approx(np.mean(groups != 0))
    # The path starts empty and Γ's support grows (a small μ makes it quick).
    assert (sparsity.nonzero_fraction[0] == 0).all()
    assert sparsity.nonzero_fraction[-1].max() > 0
    assert (np.diff(sparsity.nonzero_fraction.sum(1)) >= 0).mean() > 0.9


def test_landscape_probes_work_on_slbi_runs(slbi_record):
    rec = open_record(slbi_record)
    (run_id,) = rec.runs
    data = rec.load(run_id)
    assert rec.runs[run_id].attrs["probe_direction"] == "update"  # not plain SGD
    assert data.probe.step.tolist() == list(range(0, 40, 4))
    assert np.isfinite(data.probe.loss).all() and np.isfinite(data.probe.beta).all()
    assert data.ics.distance.shape == (10, 1) and np.isfinite(data.ics.distance).all()
    assert data.activations["features.norm2"].mean.shape == (10, 16)


def test_probes_leave_slbi_training_bit_identical(embedded, one_thread):
    """The same 6 steps with and without the sparsity, Γ, gradient and ICS probes."""
    from landscape.data.mnist import load_embedded_mnist
    from landscape.models import build_model
    from landscape.probes import GradientProbe, ICSProbe
    from landscape.config import ProbeConfig

    data = load_embedded_mnist()
    x = (torch.from_numpy(data.train_x[:192]).float() - 127.5) / 127.5
    y = torch.from_numpy(data.train_y[:192])
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 192, 32)]
    torch.manual_seed(0)
    initial = build_model("lenet5_bn")
    finals = []
    for probed in (False, True):
        model = copy.deepcopy(initial)
        opt = make_slbi(model, "lenet5_bn", adam=False, lr=0.1, kappa=1.0, mu=0.05,
                        layers=(), momentum=0.9)
        names = [n for n, _ in model.named_parameters()]
        probes = (slbi_probes(opt, 6) + [
            GradientProbe(ProbeConfig(every=2, count=3, direction="update"), names=names),
            ICSProbe(every=2, layers=("features.conv2",), names=names)] if probed else [])
        recorder = MemoryRecorder()
        train_run(model, opt, iter(batches), total_steps=6, steps_per_epoch=6,
                  recorder=recorder, evaluate=lambda m: (0.0, 0.0), probes=probes)
        finals.append((model.state_dict(), opt.gammas(), recorder))
    (s0, g0, _), (s1, g1, rec1) = finals
    for key in s0:
        assert torch.equal(s0[key], s1[key]), key
    for key in g0:
        assert torch.equal(g0[key], g1[key]), key
    assert any(g.abs().sum() > 0 for g in g1.values())
    assert rec1.arrays("sparsity")["step"].tolist() == list(range(6))
    np.testing.assert_array_equal(rec1.arrays("gamma/features.conv3.weight")["gamma"][0],
                                  g1["features.conv3.weight"].numpy())


def test_resumed_slbi_record_equals_an_uninterrupted_one(tmp_path, one_thread):
    config = _config(models=("lenet5",), optimizer="slbi_adam", lrs=(0.01,))
    whole = tmp_path / "whole.h5"
    record(config, whole)
    cut = tmp_path / "cut.h5"
    calls = {"n": 0}

    def stop_after_5():
        calls["n"] += 1
        return calls["n"] >= 5

    from landscape.sweep import resume
    record(config, cut, should_stop=stop_after_5)
    assert not open_record(cut).runs["lenet5_lr0.01"].finished
    resume(cut)
    a, b = open_record(whole), open_record(cut)
    assert_records_equal(a, b)
    sa, sb = a.sparsity("lenet5_lr0.01"), b.sparsity("lenet5_lr0.01")
    np.testing.assert_array_equal(sa.step, sb.step)
    np.testing.assert_array_equal(sa.residue, sb.residue)
    for layer, gamma in a.gamma("lenet5_lr0.01").items():
        np.testing.assert_array_equal(gamma, b.gamma("lenet5_lr0.01")[layer])


def test_prune_order_by_gamma_then_weight():
    w = np.array([[3.0, 0.1], [0.2, 5.0]])
    gamma = np.array([[0.0, 0.0], [0.0, 2.0]])
    # Γ zero for elements 0, 1, 2: among them the smallest |W| first; element 3 (Γ ≠ 0) last.
    assert prune_order(w, gamma).tolist() == [1, 2, 0, 3]
    assert prune_order(w, None).tolist() == [1, 2, 0, 3]
    conv = np.zeros((3, 1, 2, 2))
    conv[0] += 1.0
    conv[1] += 0.5
    conv[2] += 2.0
    g = np.zeros_like(conv)
    g[1] += 0.1  # filter 1 is in Γ's support: kept longest despite its small weights
    assert prune_order(conv, g).tolist() == [0, 2, 1]
    assert prune_order(conv, None).tolist() == [1, 0, 2]


def test_prune_on_a_tiny_record(tmp_path, one_thread):
    path = tmp_path / "p.h5"
    record(_config(models=("lenet5",), max_steps=30), path)
    sgd = tmp_path / "sgd.h5"
    record(_config(models=("lenet5",), max_steps=30, optimizer="sgd", slbi_mu=100.0,
                   slbi_layers=()), sgd)
    result = prune_run(path, "lenet5_lr0.1", "conv3", [0, 50, 100])
    assert result.criterion == "gamma" and result.groups == 120
    assert [r.zeroed for r in result.rows] == [0, 60, 120]
    # 0% is the trained model itself: the held-out accuracy of its own evaluation.
    final_eval = open_record(path).load("lenet5_lr0.1").eval
    assert result.rows[0].accuracy == pytest.approx(float(final_eval.test_acc[-1]))
    # 100%: conv3 outputs zero (weights and biases), so every image gets the same logits and
    # the accuracy is the share of one class among the held-out images.
    shares = np.bincount(_held_out_labels()) / 2000
    assert np.isclose(result.rows[2].accuracy, shares).any()
    plain = prune_run(sgd, "lenet5_lr0.1", "classifier.fc1.weight", [0, 10])
    assert plain.criterion == "weight" and plain.support == -1 and plain.groups == 120 * 84
    out = CliRunner().invoke(main, ["prune", str(path), "--run", "lenet5_lr0.1", "--layer",
                                    "conv3", "--fractions", "0,50", "--filters", "conv1",
                                    "--out", str(tmp_path / "fig.png")])
    assert out.exit_code == 0, out.output
    assert "weakest by Γ" in out.output and "50%" in out.output
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert (tmp_path / "p-filters-lenet5_lr0.1-conv1.png").stat().st_size > 0
    bad = CliRunner().invoke(main, ["prune", str(path), "--run", "lenet5_lr0.1", "--layer",
                                    "conv9"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "--layer: model 'lenet5' has no layer 'conv9'" in bad.output


def _held_out_labels():
    from landscape.data.mnist import load_embedded_mnist

    return load_embedded_mnist().test_y


def test_pruning_a_filter_before_batchnorm_removes_its_channel():
    """Zeroing a conv filter of a BN network zeroes the channel after BN (scale and shift),
    so the next layer sees 0 there, as without BN."""
    from landscape.models import build_model
    from landscape.kept.prune import zero_groups

    torch.manual_seed(0)
    model = build_model("lenet5_bn").eval()
    model.features.norm3.running_mean.uniform_(-1, 1)  # a BN that has seen data
    zero_groups(model, "features.conv3.weight", np.array([3, 7]))
    out = model.features(torch.randn(5, 1, 28, 28))
    assert (out[:, [3, 7]] == 0).all() and (out[:, 0] != 0).any()
    assert model.classifier.norm1.weight.ne(0).all()  # the BN after fc1 is left alone
