"""The paper's probe along the gradient: ground truth on quadratics, an independent float64
recomputation on a real network, and proof that probing leaves training untouched."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from landscape.config import ProbeConfig
from landscape.data import BatchOptions, BatchStream, DeviceImages
from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.probes import GradientProbe, eta_grid, select_parameters
from landscape.training.recorder import MemoryRecorder
from landscape.training.tensors import RngState
from landscape.training.loop import StepContext, train_run
from landscape.training.loop_settings import TapPlan


class Quadratic(nn.Module):
    """L(w) = ½ wᵀAw, independent of the batch: the probe's β must be ‖Ag‖/‖g‖."""

    def __init__(self, a: np.ndarray, w0: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("a", torch.from_numpy(a))
        self.w = nn.Parameter(torch.from_numpy(w0.copy()))

    def forward(self, x):
        return self.w

    @staticmethod
    def loss(w, y, *, model):
        return 0.5 * w @ model.a @ w


def probe_once(model, loss_fn, config, lr=1.0):
    """Run GradientProbe.measure at w as the training loop would (after backward)."""
    params = list(model.parameters())
    x = torch.zeros(1)
    rng = RngState.capture(torch.device("cpu"))
    loss = loss_fn(model(x), None)
    for p in params:
        p.grad = None
    loss.backward()
    snapshot_g = [p.grad.clone() for p in params]
    snapshot_w = [p.detach().clone() for p in params]
    ctx = StepContext(0, model, params, [n for n, _ in model.named_parameters()], x, None,
                      loss_fn, lr, rng, snapshot_g, snapshot_w)
    probe = GradientProbe(config, names=ctx.names)
    return probe, {k: v.numpy() for k, v in probe.measure(ctx).items()}, snapshot_g


def spd(n, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(rng.uniform(0.5, 10.0, n)) @ q.T


def test_beta_on_a_quadratic_is_the_rayleigh_quotient_of_the_gradient():
    a, w0 = spd(6, 0), np.random.default_rng(1).normal(size=6)
    model = Quadratic(a, w0)
    _, out, _ = probe_once(model, lambda o, y: Quadratic.loss(o, y, model=model),
                           ProbeConfig(every=1, low=0.01, high=0.3, count=5, scale="absolute"))
    g = a @ w0
    assert out["beta"] == pytest.approx(np.linalg.norm(a @ g) / np.linalg.norm(g), rel=1e-5)
    assert out["beta"] <= np.linalg.eigvalsh(a).max() * (1 + 1e-6)
    for eta, loss, diff in zip(out["eta"], out["loss"], out["grad_diff"]):
        w = w0 - eta * g
        assert loss == pytest.approx(0.5 * w @ a @ w, rel=1e-5)
        assert diff == pytest.approx(eta * np.linalg.norm(a @ g), rel=1e-5)
    assert out["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-6)
    # The probe leaves w where it was.
    np.testing.assert_array_equal(model.w.detach().numpy(), w0)


def test_beta_along_the_top_eigenvector_is_lambda_max():
    a = spd(5, 2)
    vals, vecs = np.linalg.eigh(a)
    model = Quadratic(a, vecs[:, -1] * 3.0)
    _, out, _ = probe_once(model, lambda o, y: Quadratic.loss(o, y, model=model),
                           ProbeConfig(every=1))
    assert out["beta"] == pytest.approx(vals[-1], rel=1e-5)


def test_a_linear_loss_has_no_gradient_change():
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    model = Quadratic(np.eye(3), np.array([0.3, 0.1, -0.7]))
    _, out, _ = probe_once(model, lambda o, y: c @ o, ProbeConfig(every=1))
    np.testing.assert_array_equal(out["grad_diff"], 0.0)
    assert out["beta"] == 0.0


def test_probe_on_a_network_matches_a_float64_recomputation(embedded):
    """VGG-BN (1/8 width) at a real batch: loss and gradient at w_t − η g_t recomputed in
    float64 with a deep copy and autograd, BN in training mode."""
    torch.manual_seed(0)
    model = build_model("vgg_bn", width=0.125)
    x = (torch.from_numpy(embedded.train_x[:32]).float() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:32])
    loss_fn = nn.functional.cross_entropy
    params = list(model.parameters())
    rng = RngState.capture(torch.device("cpu"))
    loss_fn(model(x), y).backward()
    g_t = [p.grad.clone() for p in params]
    ctx = StepContext(0, model, params, [n for n, _ in model.named_parameters()], x, y, loss_fn,
                      0.1, rng, g_t, [p.detach().clone() for p in params])
    probe = GradientProbe(ProbeConfig(every=1, count=4), names=ctx.names)
    out = {k: v.numpy() for k, v in probe.measure(ctx).items()}

    reference = copy.deepcopy(model).double()
    ref_params = list(reference.parameters())
    with torch.no_grad():
        for p, g in zip(ref_params, g_t):
            p.grad = None
    g64 = [g.double() for g in g_t]
    w64 = [p.detach().clone() for p in ref_params]
    np.testing.assert_allclose(out["eta"], np.linspace(0.05, 0.4, 4), rtol=1e-12)  # [1/2, 4] x lr
    for k, eta in enumerate(out["eta"]):
        with torch.no_grad():
            for p, w, g in zip(ref_params, w64, g64):
                p.copy_(w - eta * g)
        loss = loss_fn(reference(x.double()), y)
        grads = torch.autograd.grad(loss, ref_params)
        diff = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(grads, g64))).item()
        assert out["loss"][k] == pytest.approx(loss.item(), rel=1e-4)
        assert out["grad_diff"][k] == pytest.approx(diff, rel=1e-3)
    g_norm = torch.sqrt(sum((g ** 2).sum() for g in g64)).item()
    assert out["grad_norm"] == pytest.approx(g_norm, rel=1e-5)
    assert out["beta"] == pytest.approx(
        max(out["grad_diff"] / (out["eta"] * g_norm)), rel=1e-5)


def test_probe_norms_can_be_restricted_to_a_layer(embedded):
    torch.manual_seed(0)
    model = build_model("vgg", width=0.125)
    x = (torch.from_numpy(embedded.train_x[:16]).float() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:16])
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    nn.functional.cross_entropy(model(x), y).backward()
    g_t = [p.grad.clone() for p in params]
    ctx = StepContext(0, model, params, names, x, y, nn.functional.cross_entropy, 0.1,
                      RngState.capture(torch.device("cpu")), g_t,
                      [p.detach().clone() for p in params])
    probe = GradientProbe(ProbeConfig(every=1, params=("classifier.fc3",)), names=names)
    out = probe.measure(ctx)
    fc3 = [g for n, g in zip(names, g_t) if n.startswith("classifier.fc3")]
    expected = torch.sqrt(sum((g.double() ** 2).sum() for g in fc3)).item()
    assert out["grad_norm"].item() == pytest.approx(expected, rel=1e-6)


def test_probe_param_prefix_must_match_something():
    with pytest.raises(ConfigError, match="--probe-params 'classifier.fc9' matches no parameter"):
        select_parameters(["classifier.fc3.weight"], ["classifier.fc9"])


def test_eta_grids():
    np.testing.assert_allclose(eta_grid(ProbeConfig(), 0.1), np.linspace(0.05, 0.4, 8))
    np.testing.assert_allclose(
        eta_grid(ProbeConfig(low=0.01, high=30, count=4, spacing="log"), 1e-6),
        [1e-8, 1e-8 * 3000 ** (1 / 3), 1e-8 * 3000 ** (2 / 3), 3e-5])
    np.testing.assert_allclose(
        eta_grid(ProbeConfig(low=0.1, high=0.2, count=2, scale="absolute"), 5.0), [0.1, 0.2])


def train_tiny(model_name, embedded, *, probe_every, optimizer="sgd", steps=8):
    """Train a 1/8-width model for `steps` steps with the instrumented loop; return the final
    state, the recorder and the model."""
    torch.manual_seed(0)
    model = build_model(model_name, width=0.125).to(memory_format=torch.channels_last)
    opt = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    images = DeviceImages(embedded.train_x[:128], embedded.train_y[:128], torch.device("cpu"))
    stream = BatchStream(images, BatchOptions(batch_size=32, flip=True, crop_padding=2), seed=0,
                         memory_format=torch.channels_last)
    recorder = MemoryRecorder()
    names = [n for n, _ in model.named_parameters()]
    probes = [GradientProbe(ProbeConfig(every=probe_every), names=names)] \
        if probe_every else []
    train_run(model, opt, stream.batches(), total_steps=steps, steps_per_epoch=stream.steps_per_epoch,
              recorder=recorder, evaluate=lambda m: (0.0, 0.0), probes=probes,
              taps=TapPlan(("classifier.fc3.weight",)))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, recorder, opt


@pytest.mark.parametrize("model_name, optimizer", [
    ("vgg_bn", "sgd"),  # BatchNorm running statistics must not see the probe's batches
    ("vgg_dropout", "adam"),  # dropout draws random numbers; Adam has per-parameter state
])
def test_probing_every_step_leaves_training_bit_identical(embedded, model_name, optimizer):
    plain_state, plain_rec, plain_opt = train_tiny(model_name, embedded, probe_every=0,
                                                   optimizer=optimizer)
    probed_state, probed_rec, probed_opt = train_tiny(model_name, embedded, probe_every=1,
                                                      optimizer=optimizer)
    assert len(probed_rec.arrays("probe")["step"]) == 8
    for key, value in plain_state.items():
        assert torch.equal(value, probed_state[key]), key
    for column in ("loss", "grad_norm", "grad_change", "update_norm"):
        np.testing.assert_array_equal(plain_rec.arrays("steps")[column],
                                      probed_rec.arrays("steps")[column])
    np.testing.assert_array_equal(plain_rec.arrays("taps/classifier.fc3.weight")["grad"],
                                  probed_rec.arrays("taps/classifier.fc3.weight")["grad"])
    for s_plain, s_probed in zip(plain_opt.state.values(), probed_opt.state.values()):
        for key in s_plain:
            assert torch.equal(torch.as_tensor(s_plain[key]), torch.as_tensor(s_probed[key]))
    # And the probe really moved the weights: its losses differ from the step's loss.
    probe = probed_rec.arrays("probe")
    assert not np.allclose(probe["loss"][:, 0], probed_rec.arrays("steps")["loss"])


def test_probe_replays_the_dropout_mask(embedded):
    """With dropout, L(·; B_t) includes the step's mask; at the smallest η the probed loss is
    close to the step's loss only if the same mask is used."""
    torch.manual_seed(0)
    model = build_model("vgg_dropout", width=0.25, dropout=0.5)
    x = (torch.from_numpy(embedded.train_x[:64]).float() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:64])
    params = list(model.parameters())
    rng = RngState.capture(torch.device("cpu"))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    ctx = StepContext(0, model, params, [n for n, _ in model.named_parameters()], x, y,
                      nn.functional.cross_entropy, 1e-3, rng, [p.grad.clone() for p in params],
                      [p.detach().clone() for p in params])
    probe = GradientProbe(ProbeConfig(every=1, low=1e-6, high=1e-6, count=1, scale="absolute"),
                          names=ctx.names)
    out = probe.measure(ctx)
    assert out["loss"][0].item() == pytest.approx(loss.item(), rel=1e-5)
