"""The Hessian probe: Lanczos, Hutchinson and stochastic Lanczos quadrature against known
spectra and dense float64 Hessians of tiny networks with and without BatchNorm, its relation to
the paper's β, proof that it leaves training untouched, its table in the record and its
options' errors."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.func import functional_call

from landscape.cli import main
from landscape.config import HessianConfig, ProbeConfig
from landscape.probes.curvature import lanczos, rademacher, slq_density, top_eigenvalues
from landscape.probes.trace import hutchinson
from landscape.data import BatchOptions, BatchStream, DeviceImages
from landscape.models import build_model
from landscape.probes import GradientProbe
from landscape.probes.hessian import HessianDensityProbe, HessianProbe
from landscape.training.recorder import MemoryRecorder
from landscape.store import open_record
from landscape.training.tensors import RngState
from landscape.training.loop import StepContext, train_run

F64 = dict(dtype=torch.float64, device=torch.device("cpu"))


def known_spectrum(values, seed=0):
    """A symmetric matrix with eigenvalues `values`, in a random orthonormal basis."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(len(values), len(values))))
    return q @ np.diag(values) @ q.T


def matrix_hvp(a):
    t = torch.from_numpy(a)
    return lambda v: t @ v


# ---- closed forms: matrices with a known spectrum ---------------------------------------

def test_lanczos_finds_the_top_eigenvalues_of_a_known_spectrum():
    values = np.concatenate([[50.0, 20.0, 10.0], np.linspace(-3.0, 2.0, 197)])
    a = known_spectrum(values)
    top = top_eigenvalues(matrix_hvp(a), 200, 3, max_steps=100, tol=1e-8,
                          generator=torch.Generator().manual_seed(0), **F64)
    np.testing.assert_allclose(top.values, [50.0, 20.0, 10.0], rtol=1e-7)
    assert top.converged and top.steps < 100  # well separated: far fewer steps than n
    assert np.all(top.residual <= 1e-8 * np.abs(top.values))


def test_lanczos_stops_on_an_invariant_space_with_exact_ritz_values():
    a = known_spectrum(np.array([4.0] * 5 + [1.0] * 5))  # two distinct eigenvalues
    result = lanczos(matrix_hvp(a), torch.ones(10, dtype=torch.float64), 10)
    assert result.steps == 2 and result.converged
    np.testing.assert_allclose(np.sort(result.ritz), [1.0, 4.0], rtol=1e-12)


def test_lanczos_tolerance_is_a_bound_on_the_error():
    values = np.linspace(1.0, 10.0, 300) ** 2  # clustered top: slow convergence
    a = known_spectrum(values, seed=3)
    top = top_eigenvalues(matrix_hvp(a), 300, 1, max_steps=300, tol=1e-4,
                          generator=torch.Generator().manual_seed(1), **F64)
    assert top.converged
    assert abs(top.values[0] - 100.0) <= top.residual[0] <= 1e-4 * top.values[0]


def test_lanczos_basis_stays_orthogonal_in_float32():
    # n steps in float32 on an n × n matrix: with an orthogonal basis T is similar to the
    # matrix and its Ritz values are the eigenvalues; a basis that loses orthogonality (plain
    # Lanczos, or a reorthogonalization that skips a needed pass) gives "ghost" copies of the
    # converged top eigenvalues instead and misses others.
    values = np.concatenate([[50.0, 30.0], np.linspace(-2.0, 5.0, 118)])
    a = torch.from_numpy(known_spectrum(values, seed=5)).float()
    result = lanczos(lambda v: a @ v, torch.ones(120), 120)
    assert result.steps == 120
    np.testing.assert_allclose(np.sort(result.ritz), np.sort(values), atol=1e-4 * 50)


def test_a_non_finite_hessian_gives_nan_not_an_error():
    """A diverging run's Hessian: NaN eigenvalues, trace and density, and training goes on to
    record the divergence."""
    nan_hvp = lambda v: v * float("nan")  # noqa: E731
    top = top_eigenvalues(nan_hvp, 10, 2, max_steps=5, tol=1e-3,
                          generator=torch.Generator().manual_seed(0), **F64)
    assert np.all(np.isnan(top.values)) and not top.converged
    density = slq_density(nan_hvp, 10, steps=4, vectors=1,
                          generator=torch.Generator().manual_seed(0), **F64)
    assert np.all(np.isnan(density.nodes))
    assert math.isnan(hutchinson(nan_hvp, 10, 3, generator=torch.Generator().manual_seed(0),
                                 **F64).trace)


def test_hutchinson_is_within_a_few_standard_errors_of_the_trace():
    a = known_spectrum(np.random.default_rng(4).normal(1.0, 3.0, 80), seed=4)
    est = hutchinson(matrix_hvp(a), 80, 400, generator=torch.Generator().manual_seed(2), **F64)
    assert abs(est.trace - np.trace(a)) < 4 * est.standard_error
    # The standard error is what it claims: Var(zᵀAz) = 2 Σ_{i≠j} a_ij² for Rademacher z.
    off = a - np.diag(np.diag(a))
    assert est.standard_error == pytest.approx(math.sqrt(2 * (off ** 2).sum() / 400), rel=0.15)


def test_slq_moments_equal_the_quadratic_forms_they_approximate():
    """With m Lanczos steps the quadrature is exact for polynomials of degree < 2m:
    Σ w θ^p = v̂ᵀA^p v̂ for the normalized start vector v̂ (same generator, same vector)."""
    n, steps = 60, 8
    a = known_spectrum(np.random.default_rng(5).normal(0.0, 2.0, n), seed=5)
    density = slq_density(matrix_hvp(a), n, steps=steps, vectors=1,
                          generator=torch.Generator().manual_seed(7), **F64)
    v = rademacher(n, 1, torch.Generator().manual_seed(7), **F64)[0].numpy()
    v /= np.linalg.norm(v)
    assert density.weights.sum() == pytest.approx(1.0, abs=1e-12)
    for p in range(2 * steps):
        exact = v @ np.linalg.matrix_power(a, p) @ v
        scale = np.abs(np.linalg.eigvalsh(a)).max() ** p
        assert (density.weights * density.nodes ** p).sum() == pytest.approx(exact,
                                                                              abs=1e-9 * scale)


def test_slq_mean_is_the_trace_over_n():
    n = 50
    a = known_spectrum(np.random.default_rng(6).uniform(-1.0, 5.0, n), seed=6)
    density = slq_density(matrix_hvp(a), n, steps=n, vectors=200,
                          generator=torch.Generator().manual_seed(3), **F64)
    mean = np.nansum(density.weights * density.nodes)
    per_vector = np.nansum((density.weights * density.nodes).reshape(200, n), axis=1) * 200
    se = per_vector.std(ddof=1) / math.sqrt(200)
    assert abs(mean - np.trace(a) / n) < 4 * se
    # With n steps from one vector the nodes are the eigenvalues themselves.
    one = slq_density(matrix_hvp(a), n, steps=n, vectors=1,
                      generator=torch.Generator().manual_seed(3), **F64)
    np.testing.assert_allclose(np.sort(one.nodes), np.sort(np.linalg.eigvalsh(a)), atol=1e-9)


# ---- the probe on quadratics: β along g and the Rayleigh quotient -------------------------

class Quadratic(nn.Module):
    """L(w) = ½ wᵀAw: its Hessian is A everywhere."""

    def __init__(self, a: np.ndarray, w0: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("a", torch.from_numpy(a))
        self.w = nn.Parameter(torch.from_numpy(w0.copy()))

    def forward(self, x):
        return self.w

    def loss(self, w, y):
        return 0.5 * w @ self.a @ w


def context_after_backward(model, loss_fn, x, y, lr=1.0):
    """The StepContext the training loop hands a before-update probe."""
    params = [p for p in model.parameters() if p.requires_grad]
    rng = RngState.capture(torch.device("cpu"))
    loss = loss_fn(model(x), y)
    for p in params:
        p.grad = None
    loss.backward()
    return StepContext(0, model, params, [n for n, p in model.named_parameters()
                                          if p.requires_grad], x, y, loss_fn, lr, rng,
                       [p.grad.clone() for p in params], [p.detach().clone() for p in params])


def test_probe_on_a_quadratic_gives_its_spectrum_and_beta_is_a_directional_curvature():
    values = np.array([9.0, 4.0, 2.5, 1.0, 0.5, 0.2])
    a, w0 = known_spectrum(values, seed=1), np.random.default_rng(1).normal(size=6)
    model = Quadratic(a, w0)
    ctx = context_after_backward(model, model.loss, torch.zeros(1), None)
    out = HessianProbe(HessianConfig(every=1, k=3, iters=6, tol=1e-8, trace_samples=2000,
                                     trace_method="hutchinson")).measure(ctx)
    np.testing.assert_allclose(out["eigenvalues"].numpy(), values[:3], rtol=1e-10)
    assert abs(out["trace"].item() - values.sum()) < 4 * out["trace_se"].item()
    # Deflated by a Lanczos basis that spans the whole space: the trace is exact.
    deflated = HessianProbe(HessianConfig(every=1, k=3, iters=6, trace_samples=3,
                                          trace_deflate=6)).measure(ctx)
    assert deflated["trace"].item() == pytest.approx(values.sum(), rel=1e-10)
    assert deflated["trace_se"].item() < 1e-10 * values.sum()
    # β along g (the paper's probe) = ‖Ag‖/‖g‖: at least the Rayleigh quotient gᵀAg/gᵀg, at
    # most λ_max.
    probe = GradientProbe(ProbeConfig(every=1, low=0.01, high=0.3, count=5, scale="absolute"),
                          names=ctx.names)
    beta = probe.measure(ctx)["beta"].item()
    g = a @ w0
    rayleigh = g @ a @ g / (g @ g)
    assert beta == pytest.approx(np.linalg.norm(a @ g) / np.linalg.norm(g), rel=1e-5)
    assert rayleigh * (1 - 1e-6) <= beta <= out["eigenvalues"][0].item() * (1 + 1e-6)
    assert beta > rayleigh * 1.01  # g is no eigenvector here: strictly between


def test_beta_along_the_top_eigenvector_equals_the_probed_lambda_max():
    values = np.array([7.0, 3.0, 1.0, 0.5])
    a = known_spectrum(values, seed=2)
    top_vector = np.linalg.eigh(a)[1][:, -1]
    model = Quadratic(a, 2.0 * top_vector)
    ctx = context_after_backward(model, model.loss, torch.zeros(1), None)
    lam = HessianProbe(HessianConfig(every=1, iters=4)).measure(ctx)["eigenvalues"][0].item()
    beta = GradientProbe(ProbeConfig(every=1), names=ctx.names).measure(ctx)["beta"].item()
    g = a @ (2.0 * top_vector)
    assert lam == pytest.approx(7.0, rel=1e-10)
    assert beta == pytest.approx(lam, rel=1e-5)
    assert g @ a @ g / (g @ g) == pytest.approx(lam, rel=1e-12)  # the Rayleigh quotient too


def test_a_linear_loss_and_an_unused_parameter_have_zero_curvature():
    model = Quadratic(np.eye(3), np.array([0.3, 0.1, -0.7]))
    model.unused = nn.Parameter(torch.ones(2, dtype=torch.float64))
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    params = list(model.parameters())
    loss = c @ model(None)
    loss.backward()
    ctx = StepContext(0, model, params, [n for n, _ in model.named_parameters()], torch.zeros(1),
                      None, lambda o, y: c @ o, 1.0, RngState.capture(torch.device("cpu")),
                      [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                       for p in params], [p.detach().clone() for p in params])
    for p, g in zip(params, ctx.grad_snapshot):
        p.grad = g.clone()
    out = HessianProbe(HessianConfig(every=1, k=1, iters=3)).measure(ctx)
    assert out["eigenvalues"][0].item() == 0.0 and out["trace"].item() == 0.0


# ---- tiny networks against a dense float64 Hessian ---------------------------------------

def tiny_network(norm: bool) -> nn.Module:
    """A conv layer and a two-layer head, with BatchNorm after both hidden layers or none
    (about 200 parameters: small enough for a dense Hessian)."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 3, padding=1), *([nn.BatchNorm2d(4)] if norm else []), nn.ReLU(),
              nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 8),
              *([nn.BatchNorm1d(8)] if norm else []), nn.Tanh(), nn.Linear(8, 3)]
    return nn.Sequential(*layers).double().train()


def dense_hessian(model, x, y, loss_fn) -> np.ndarray:
    """∇²L at the model's parameters by torch.autograd.functional.hessian, BatchNorm in
    training mode (batch statistics), on copies of its buffers."""
    named = [(n, p) for n, p in model.named_parameters()]
    sizes = [p.numel() for _, p in named]
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    def loss(flat):
        params = {n: piece.view(p.shape) for (n, p), piece in zip(named, flat.split(sizes))}
        return loss_fn(functional_call(model, (params, dict(buffers)), (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for _, p in named])
    return torch.autograd.functional.hessian(loss, flat).numpy()


@pytest.mark.parametrize("norm", [False, True], ids=["no BN", "BN"])
def test_probe_matches_a_dense_float64_hessian_of_a_tiny_network(embedded, norm):
    model = tiny_network(norm)
    x = (torch.from_numpy(embedded.train_x[:16]).double() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:16]) % 3

    def loss_fn(out, target):  # with an L2 penalty, as the loop's objective may have
        return nn.functional.cross_entropy(out, target) + 1e-3 * sum(
            (p ** 2).sum() for p in model.parameters())

    # The penalty's Hessian is 2·1e-3·I (functional_call's parameters are not the model's, so
    # it is added here rather than differentiated).
    h = dense_hessian(model, x, y, nn.functional.cross_entropy)
    h += 2e-3 * np.eye(len(h))
    exact = np.linalg.eigvalsh(h)[::-1]
    ctx = context_after_backward(model, loss_fn, x, y)
    buffers = [b.clone() for b in model.buffers()]
    out = HessianProbe(HessianConfig(every=1, k=3, iters=len(h), tol=1e-9,
                                     trace_samples=3000)).measure(ctx)
    np.testing.assert_allclose(out["eigenvalues"].numpy(), exact[:3], rtol=1e-7)
    assert out["converged"].item()
    assert 3000 + 3 <= out["hvps"].item() <= 3000 + len(h)  # Lanczos steps + trace samples
    assert abs(out["trace"].item() - np.trace(h)) < 4 * out["trace_se"].item()
    # The density: its mean is tr H / n up to sampling, its support within the spectrum.
    dens = HessianDensityProbe(HessianConfig(density_at=(0,), density_iters=30,
                                             density_vectors=20)).measure(ctx)
    nodes, weights = dens["nodes"].numpy(), dens["weights"].numpy()
    assert weights.sum() == pytest.approx(1.0, abs=1e-9)
    assert exact[-1] - 1e-9 <= np.nanmin(nodes) and np.nanmax(nodes) <= exact[0] + 1e-9
    assert np.nanmax(nodes) == pytest.approx(exact[0], rel=1e-6)  # Lanczos finds the top
    # Everything given back: weights, gradients, BatchNorm running statistics.
    for p, w, g in zip(ctx.params, ctx.param_snapshot, ctx.grad_snapshot):
        assert torch.equal(p.detach(), w) and torch.equal(p.grad, g)
    for b, saved in zip(model.buffers(), buffers):
        assert torch.equal(b, saved)


def test_bn_hessian_differs_from_the_eval_mode_hessian(embedded):
    """BatchNorm in training mode: the Hessian includes how the batch statistics move with
    the weights, which a dense Hessian in eval mode (running statistics) does not."""
    model = tiny_network(True)
    x = (torch.from_numpy(embedded.train_x[:16]).double() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:16]) % 3
    ctx = context_after_backward(model, nn.functional.cross_entropy, x, y)
    lam = HessianProbe(HessianConfig(every=1, iters=60, tol=1e-10)).measure(ctx)
    model.eval()
    lam_eval = np.linalg.eigvalsh(dense_hessian(model, x, y, nn.functional.cross_entropy))[-1]
    model.train()
    assert abs(lam["eigenvalues"][0].item() - lam_eval) > 1e-3 * abs(lam_eval)


# ---- training is untouched ---------------------------------------------------------------

def train_tiny(embedded, *, hessian: HessianConfig | None, steps=6):
    torch.manual_seed(0)
    model = build_model("vgg_bn", width=0.125).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images = DeviceImages(embedded.train_x[:128], embedded.train_y[:128], torch.device("cpu"))
    stream = BatchStream(images, BatchOptions(batch_size=32, flip=True, crop_padding=2), seed=0,
                         memory_format=torch.channels_last)
    recorder = MemoryRecorder()
    probes = [HessianProbe(hessian), HessianDensityProbe(hessian)] if hessian else []
    train_run(model, opt, stream.batches(), total_steps=steps,
              steps_per_epoch=stream.steps_per_epoch, recorder=recorder,
              evaluate=lambda m: (0.0, 0.0), probes=probes)
    return {k: v.clone() for k, v in model.state_dict().items()}, recorder, opt


def test_hessian_probing_leaves_training_bit_identical(embedded, one_thread):
    plain_state, plain_rec, plain_opt = train_tiny(embedded, hessian=None)
    config = HessianConfig(every=2, k=2, iters=6, trace_samples=3, density_at=(1, 5),
                           density_iters=5)
    state, rec, opt = train_tiny(embedded, hessian=config)
    hessian = rec.arrays("hessian")
    np.testing.assert_array_equal(hessian["step"], [0, 2, 4])
    assert np.all(np.isfinite(hessian["eigenvalues"])) and np.all(hessian["trace_se"] > 0)
    np.testing.assert_array_equal(rec.arrays("hessian_density")["step"], [1, 5])
    for key, value in plain_state.items():  # weights and BatchNorm running statistics
        assert torch.equal(value, state[key]), key
    for column in ("loss", "grad_norm", "grad_change", "update_norm"):
        np.testing.assert_array_equal(plain_rec.arrays("steps")[column],
                                      rec.arrays("steps")[column])
    for s_plain, s_probed in zip(plain_opt.state.values(), opt.state.values()):
        for key in s_plain:  # momentum buffers
            assert torch.equal(torch.as_tensor(s_plain[key]), torch.as_tensor(s_probed[key]))


def test_probe_results_are_reproducible(embedded):
    model = tiny_network(True)
    x = (torch.from_numpy(embedded.train_x[:16]).double() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:16]) % 3
    config = HessianConfig(every=1, k=2, iters=10, trace_samples=5)
    first = HessianProbe(config).measure(context_after_backward(
        model, nn.functional.cross_entropy, x, y))
    again = HessianProbe(config).measure(context_after_backward(
        model, nn.functional.cross_entropy, x, y))
    for key in first:
        assert torch.equal(first[key], again[key]), key


# ---- the record and the command line ------------------------------------------------------

def test_record_holds_the_hessian_tables(tmp_path, tiny_args, one_thread):
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, ["record", *tiny_args, "--model", "vgg_bn", "--lrs",
                                       "0.01", "--hessian-every", "3", "--hessian-k", "2",
                                       "--hessian-iters", "8", "--hessian-trace-samples", "4",
                                       "--hessian-density-at", "0,5",
                                       "--hessian-density-iters", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    record = open_record(out)
    assert record.config["hessian"]["every"] == 3
    data = record.load("vgg_bn_lr0.01")
    np.testing.assert_array_equal(data.hessian.step, [0, 3])
    assert data.hessian.eigenvalues.shape == (2, 2)
    assert np.all(data.hessian.eigenvalues[:, 0] >= data.hessian.eigenvalues[:, 1])
    np.testing.assert_array_equal(data.hessian.lr, 0.01)
    assert np.all(data.hessian.hvps >= 4 + 2)
    np.testing.assert_array_equal(data.hessian_density.step, [0, 5])
    assert data.hessian_density.nodes.shape == (2, 6)
    np.testing.assert_allclose(data.hessian_density.weights.sum(axis=1), 1.0)
    info = CliRunner().invoke(main, ["info", str(out)]).output
    assert "Hessian: top 2 eigenvalues (Lanczos, <= 8 steps, tol 0.001, warm starts) and trace " \
           "(4 vectors, deflated by >= 8 Lanczos vectors) every 3 steps; density at steps 0, 5" \
           in info
    # The first probed step has no Ritz vectors to start from; the second starts from them.
    np.testing.assert_array_equal(data.hessian.warm_start, [False, True])
    # A record without the probe has no tables, and reads as such.
    plain = tmp_path / "plain.h5"
    assert CliRunner().invoke(main, ["record", *tiny_args, "--model", "vgg", "--lrs", "0.01",
                                     "-o", str(plain)]).exit_code == 0
    data = open_record(plain).load("vgg_lr0.01")
    assert data.hessian is None and data.hessian_density is None


BAD_HESSIAN_OPTIONS = [
    (["--hessian-every", "-1"], "--hessian-every must be >= 0 (0 disables it), got -1"),
    (["--hessian-k", "0"], "--hessian-k must be at least 1, got 0"),
    (["--hessian-k", "5", "--hessian-iters", "3"],
     "--hessian-iters (3) must be at least --hessian-k (5)"),
    (["--hessian-tol", "0"], "--hessian-tol is a relative tolerance between 0 and 1"),
    (["--hessian-trace-samples", "1"],
     "--hessian-trace-samples must be at least 2 (the standard error needs two), got 1"),
    (["--hessian-density-at", "0,-5"], "--hessian-density-at takes step numbers >= 0"),
    (["--hessian-density-at", "5,5"], "a step is listed twice in --hessian-density-at: 5, 5"),
    (["--hessian-density-at", "5,x"], "--hessian-density-at: 'x' is not a whole number"),
    (["--hessian-density-iters", "1"], "--hessian-density-iters must be at least 2, got 1"),
]


@pytest.mark.parametrize("args, message", BAD_HESSIAN_OPTIONS,
                         ids=[" ".join(a) for a, _ in BAD_HESSIAN_OPTIONS])
def test_bad_hessian_options_give_one_line(tmp_path, args, message):
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, ["record", "--max-steps", "1", "--width", "0.125",
                                       "--device", "cpu", *args, "-o", str(out)])
    assert result.exit_code != 0
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.output
    assert "Traceback" not in result.output and not out.exists()


# ---- report, verdict and figures ----------------------------------------------------------

def test_broadened_density_integrates_to_one_and_keeps_the_mean():
    from analyses.spectrum import broadened_density, density_moment
    nodes, weights = np.array([-1.0, 0.5, 3.0, np.nan]), np.array([0.2, 0.5, 0.3, 0.0])
    grid = np.linspace(-5, 7, 20001)
    density = broadened_density(nodes, weights, grid, 0.1)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-9)
    assert np.trapezoid(grid * density, grid) == pytest.approx(density_moment(nodes, weights, 1),
                                                               abs=1e-9)
    assert density_moment(nodes, weights, 1) == pytest.approx(-0.2 + 0.25 + 0.9)


def test_verdict_and_figures_of_a_hessian_probed_record(tmp_path, tiny_args, one_thread):
    from landscape import report
    from landscape.plot import all_figures
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, ["record", *tiny_args, "--model", "vgg,vgg_bn", "--lrs",
                                       "0.05", "--optimizer", "sgd", "--seeds", "0,1",
                                       "--hessian-every", "2", "--hessian-iters", "6",
                                       "--hessian-trace-samples", "3", "--probe-every", "2",
                                       "--hessian-density-at", "0,4",
                                       "--hessian-density-iters", "5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    groups = report.group_by_model(report.load_runs([out]))
    verdict = report.verdict(groups, "vgg", "vgg_bn")
    row = verdict.row("hessian_lambda_max")
    # With 2 seeds the ratio is the median of the single-seed ratios (analyses.confidence), each
    # the median over its steps without BN / with BN, here recomputed.
    lam = {(m, r.seed): r.data.hessian.eigenvalues[:, 0] for m in ("vgg", "vgg_bn")
           for r in groups[m]}
    per_seed = [np.median(lam["vgg", s]) / np.median(lam["vgg_bn", s]) for s in (0, 1)]
    assert row.per_step.ratio == pytest.approx(np.median(per_seed))
    assert row.per_step.n_seeds == 2 and np.isfinite(row.per_step.low)
    assert "hessian_trace" in verdict.to_text()
    text = report.summary_text(groups)
    legend = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("hessian_lambda_max") and "largest eigenvalue" in line
               for line in legend)
    h = report.hessian_data(groups)[0]
    np.testing.assert_allclose(h.stability_threshold, 2 / 0.05)
    assert len(h.beta) == 3  # the gradient probe's β beside it
    figures = all_figures(report.load_runs([out]))
    assert {"hessian", "hessian_density"} <= set(figures)
    figures["hessian"].savefig(tmp_path / "hessian.png")
    figures["hessian_density"].savefig(tmp_path / "hessian_density.png")
    assert (tmp_path / "hessian_density.png").stat().st_size > 10_000
    densities = report.hessian_densities(groups)
    assert [d.seeds for d in densities] == [(0, 1), (0, 1)]
    np.testing.assert_allclose(densities[0].weights.sum(axis=1), 1.0)


def test_resumed_record_has_the_same_hessian_rows(tmp_path, cifar_dir, one_thread):
    """Stopped mid-run and resumed: the Hessian rows (random vectors seeded by the step, Lanczos
    warm-started from the previous probed step's Ritz vectors, which the checkpoint keeps)
    equal those of an uninterrupted record, with dropout, Adam, a schedule and penalties."""
    import landscape
    from landscape.sweep import record, resume
    from test_resume import StopAfter, busy_config
    hessian = HessianConfig(every=3, k=2, iters=5, trace_samples=3, density_at=(2, 9),
                            density_iters=4)
    config = busy_config(cifar_dir, max_steps=10, hessian=hessian)
    reference, path = tmp_path / "ref.h5", tmp_path / "r.h5"
    record(config, reference)
    record(config, path, should_stop=StopAfter(7))
    resume(path)
    ref, rec = landscape.open_record(reference), landscape.open_record(path)
    for run_id in ref.runs:
        a, b = ref.load(run_id), rec.load(run_id)
        for table in ("hessian", "hessian_density"):
            for name, value in vars(getattr(a, table)).items():
                np.testing.assert_array_equal(value, getattr(getattr(b, table), name),
                                              err_msg=f"{run_id} {table}/{name}")
        np.testing.assert_array_equal(a.hessian.step, [0, 3, 6, 9])
        # Step 9, after the resume at step 7, started from step 6's Ritz vectors. (Step 0's
        # Hessian is NaN here: the ℓ2 penalty, a squared norm, has no second derivative at the
        # zero biases of the initialization; so step 3 has nothing to start from.)
        np.testing.assert_array_equal(a.hessian.warm_start, [False, False, True, True])
