"""The deep linear network experiment against closed forms computed in float64."""

import numpy as np
import pytest
import torch

import landscape
from landscape.config import PRESETS, ProbeConfig, RecordConfig
from landscape.data.gaussian import make_linear_regression
from landscape.models import build_model


def product(model) -> np.ndarray:
    """W_25 ... W_1 in float64."""
    p = np.eye(model.layers.fc1.in_features)
    for name, param in model.named_parameters():
        p = param.detach().double().numpy() @ p
    return p


def test_the_network_computes_the_product_of_its_matrices():
    torch.manual_seed(0)
    model = build_model("dln")
    assert len([m for m in model.modules() if isinstance(m, torch.nn.Linear)]) == 25
    assert sum(p.numel() for p in model.parameters()) == 25 * 10 * 10
    x = torch.randn(7, 10, dtype=torch.float64)
    np.testing.assert_allclose(model.double()(x).detach().numpy(), x.numpy() @ product(model).T,
                               rtol=1e-10)


def test_data_are_gaussian_samples_and_their_images_under_a():
    data = make_linear_regression(n_train=1000, n_test=1000, seed=3)
    np.testing.assert_allclose(data.train_y, data.train_x @ data.a.T, rtol=1e-5, atol=1e-5)
    assert abs(data.train_x.mean()) < 0.05 and abs(data.train_x.std() - 1) < 0.05
    assert data.a.shape == (10, 10) and abs(data.a.std() - 1) < 0.2
    again = make_linear_regression(n_train=1000, n_test=1000, seed=3)
    np.testing.assert_array_equal(again.train_x, data.train_x)


@pytest.fixture(scope="module")
def dln_record(tmp_path_factory):
    path = tmp_path_factory.mktemp("dln") / "dln.h5"
    config = RecordConfig(**{**PRESETS["paper-dln"], "max_steps": 3, "eval_every": 3,
                             "probe": ProbeConfig(every=1, low=0.01, high=30, count=4,
                                                  spacing="log"),
                             "device": "cpu"})
    landscape.record(config, path)
    return landscape.open_record(path), config


def test_recorded_loss_is_the_closed_form_sum_of_squares(dln_record):
    rec, config = dln_record
    data = make_linear_regression(n_train=1000, seed=config.seed)
    x, a = data.train_x.astype(np.float64), data.a.astype(np.float64)
    for model_name in ("dln",):
        torch.manual_seed(config.seed)
        model = build_model(model_name)
        w0 = product(model)
        # L(W) = Σ_i ‖(W − A) x_i‖² = ‖(W − A) Xᵀ‖²_F
        expected = np.sum(((w0 - a) @ x.T) ** 2)
        recorded = rec.load(f"{model_name}_lr1e-06").steps
        assert recorded.loss[0] == pytest.approx(expected, rel=1e-4)
        # Full-batch gradient descent: w_{t+1} − w_t = −lr g_t exactly.
        np.testing.assert_allclose(recorded.update_norm, 1e-6 * recorded.grad_norm, rtol=1e-4)


def test_the_probe_at_step_zero_matches_the_closed_form(dln_record):
    rec, config = dln_record
    data = make_linear_regression(n_train=1000, seed=config.seed)
    x, a = data.train_x.astype(np.float64), data.a.astype(np.float64)
    torch.manual_seed(config.seed)
    model = build_model("dln").double()
    xt = torch.from_numpy(x)
    loss = ((model(xt) - xt @ torch.from_numpy(a).T) ** 2).sum()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    probe = rec.load("dln_lr1e-06").probe
    for eta, recorded in zip(probe.eta[0], probe.loss[0]):
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= eta * g
            moved = np.sum(((product(model) - a) @ x.T) ** 2)
            for p, g in zip(model.parameters(), grads):
                p += eta * g
        assert recorded == pytest.approx(moved, rel=1e-4)
    np.testing.assert_allclose(probe.eta[0], 1e-6 * np.geomspace(0.01, 30, 4))


def test_batchnorm_variant_normalizes_between_layers_only(dln_record):
    model = build_model("dln_bn")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 24  # after every layer but the last
    rec, _ = dln_record
    assert rec.runs["dln_bn_lr1e-06"].status == "complete"
    assert np.isnan(rec.load("dln_bn_lr1e-06").eval.test_acc).all()  # no accuracy
