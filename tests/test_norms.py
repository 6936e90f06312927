"""Normalization variants: noisy BatchNorm (Algorithm 1) and ℓp normalization.

The noise is checked against the distributions of Santurkar et al.'s Algorithm 1 over many
draws (tolerances of 5 standard errors); the ℓp layers against the formula recomputed here in
float64 numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.models.norms import (
    AlgorithmOneNoiseOnly, NORM_KINDS, LpNorm, NoisyBatchNorm1d, NoisyBatchNorm2d, make_norm,
)

Z = 5.0  # tolerance in standard errors


def assert_moments(samples, mean, var, fourth_central, what):
    """Sample mean and variance of iid `samples` against the distribution's, within Z s.e."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((fourth_central - var**2) / n)
    assert abs(x.mean() - mean) < Z * se_mean, (what, "mean", x.mean(), mean, se_mean)
    assert abs(x.var() - var) < Z * se_var, (what, "var", x.var(), var, se_var)


def uniform_moments(low, high):
    """(mean, variance, fourth central moment) of U(low, high)."""
    a = (high - low) / 2
    return (low + high) / 2, a**2 / 3, a**4 / 5


def normal_moments(mean, std):
    return mean, std**2, 3 * std**4


def balanced_signs(n, c, h, w, seed):
    """±1 input with exactly half +1 per channel: batch mean 0, biased variance 1."""
    rng = np.random.default_rng(seed)
    per_channel = n * h * w
    signs = np.tile(np.repeat([1.0, -1.0], per_channel // 2), (c, 1))  # (c, n*h*w)
    signs = rng.permuted(signs, axis=1)
    return torch.tensor(signs.reshape(c, n, h, w).transpose(1, 0, 2, 3), dtype=torch.float32)


def recover_noise(layer, x, seed):
    """(m, s) of one noisy step, found from outputs alone: with γ = 1, β = 0 and the same RNG
    state, inputs x and −x normalize to ±x̂ and give y± = ±s·x̂ + m."""
    xhat = x / math.sqrt(1 + layer.eps)  # x has batch mean 0 and biased variance 1 per channel
    with torch.no_grad():
        torch.manual_seed(seed)
        y_plus = layer(x)
        torch.manual_seed(seed)
        y_minus = layer(-x)
    return (y_plus + y_minus) / 2, (y_plus - y_minus) / (2 * xhat)


def test_noisy_bn_draws_follow_algorithm_1():
    n, c, h, w, steps = 8, 32, 4, 4, 150
    layer = NoisyBatchNorm2d(c).train()
    layer.record_noise = True
    mus, sigmas, offsets, scales = [], [], [], []
    for step in range(steps):
        x = balanced_signs(n, c, h, w, seed=step)
        m, s = recover_noise(layer, x, seed=step)
        drawn = layer.last_noise  # from the second (replayed) pass: the same draws
        torch.testing.assert_close(drawn.m, m, atol=1e-5, rtol=0)
        torch.testing.assert_close(drawn.s, s, atol=1e-5, rtol=0)
        mus.append(drawn.mu.numpy())
        sigmas.append(drawn.sigma.numpy())
        # deviations from the unit's parameters, per sample and position: (n, c, h, w)
        offsets.append((m - drawn.mu.view(1, c, 1, 1)).numpy())
        scales.append((s - drawn.sigma.view(1, c, 1, 1)).numpy())
    mu, sigma = np.stack(mus), np.stack(sigmas)  # (steps, c)
    dm, ds = np.stack(offsets), np.stack(scales)  # (steps, n, c, h, w)

    # per unit and step: μ ~ U(−0.5, 0.5), σ ~ U(1, 1.25)
    assert mu.min() >= -0.5 and mu.max() <= 0.5
    assert sigma.min() >= 1.0 and sigma.max() <= 1.25
    assert_moments(mu, *uniform_moments(-0.5, 0.5), "mu")
    assert_moments(sigma, *uniform_moments(1.0, 1.25), "sigma")
    # a fresh distribution at every step: consecutive steps' μ, σ are uncorrelated
    for values in (mu, sigma):
        r = np.corrcoef(values[:-1].ravel(), values[1:].ravel())[0, 1]
        assert abs(r) < Z / math.sqrt(values[1:].size)

    # per sample and position: m ~ U(μ − 0.1, μ + 0.1), s ~ N(σ, 0.1) (0.1 is the std)
    assert np.abs(dm).max() <= 0.1 + 1e-5
    assert_moments(dm, *uniform_moments(-0.1, 0.1), "m - mu")
    assert_moments(ds, *normal_moments(0.0, 0.1), "s - sigma")
    inside = (np.abs(ds) < 0.1).mean()  # P(|Z| < 1) for a normal
    p = math.erf(1 / math.sqrt(2))
    assert abs(inside - p) < Z * math.sqrt(p * (1 - p) / ds.size)

    # height and width are batch dimensions: m, s vary across the positions of one sample
    for dev, var in ((dm, 0.2**2 / 12), (ds, 0.01)):
        within = dev.reshape(steps, n, c, h * w).var(axis=-1, ddof=1)  # (steps, n, c)
        se = within.std() / math.sqrt(within.size)
        assert abs(within.mean() - var) < Z * se


def test_noisy_bn_1d_uses_its_constants():
    layer = NoisyBatchNorm1d(64, n_mu=2.0, n_sigma=3.0, r_mu=0.5, r_sigma=0.2).train()
    layer.record_noise = True
    mus, sigmas, dm, ds = [], [], [], []
    for step in range(100):
        torch.manual_seed(step)
        layer(torch.randn(16, 64))
        d = layer.last_noise
        assert d.m.shape == d.s.shape == (16, 64)
        mus.append(d.mu.numpy())
        sigmas.append(d.sigma.numpy())
        dm.append((d.m - d.mu).numpy())
        ds.append((d.s - d.sigma).numpy())
    assert_moments(mus, *uniform_moments(-2.0, 2.0), "mu")
    assert_moments(sigmas, *uniform_moments(1.0, 3.0), "sigma")
    assert_moments(dm, *uniform_moments(-0.5, 0.5), "m - mu")
    assert_moments(ds, *normal_moments(0.0, 0.2), "s - sigma")


@pytest.mark.parametrize("noisy, plain, shape", [
    (NoisyBatchNorm2d, nn.BatchNorm2d, (6, 5, 4, 4)),
    (NoisyBatchNorm1d, nn.BatchNorm1d, (6, 5)),
])
def test_noisy_bn_is_batchnorm_plus_training_noise(noisy, plain, shape):
    torch.manual_seed(0)
    layer, bn = noisy(5), plain(5)
    assert isinstance(layer, plain)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in bn.named_parameters()]
    assert [n for n, _ in layer.named_buffers()] == [n for n, _ in bn.named_buffers()]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    layer.load_state_dict(bn.state_dict())

    x = torch.randn(shape) * 3 + 1
    noisy_out = layer(x)
    bn_out = bn(x)
    assert not torch.allclose(noisy_out, bn_out, atol=1e-2)  # training: noise
    # the noise leaves BatchNorm's running statistics alone
    torch.testing.assert_close(layer.running_mean, bn.running_mean)
    torch.testing.assert_close(layer.running_var, bn.running_var)
    layer.eval(), bn.eval()
    state = torch.get_rng_state()
    torch.testing.assert_close(layer(x), bn(x), rtol=0, atol=0)  # eval: plain BatchNorm
    assert torch.equal(torch.get_rng_state(), state)  # and draws nothing


@pytest.mark.parametrize("shape", [(6, 5, 4, 4), (6, 5)])
def test_noise_only_control_is_algorithm_1_without_batchnorm(shape):
    x = torch.randn(shape) * 3 + 1
    control = make_norm("noise", 5, spatial=len(shape) == 4)
    assert isinstance(control, AlgorithmOneNoiseOnly)
    assert not list(control.parameters()) and not list(control.buffers())
    noisy = (NoisyBatchNorm2d if len(shape) == 4 else NoisyBatchNorm1d)(5)
    control.record_noise = noisy.record_noise = True
    torch.manual_seed(7)
    y = control.train()(x)
    torch.manual_seed(7)
    noisy.train()(x)
    # The same draws as noisy BatchNorm from the same random state, applied to x itself.
    for a, b in zip(control.last_noise, noisy.last_noise):
        assert torch.equal(a, b)
    n = control.last_noise
    torch.testing.assert_close(y, n.s * x + n.m, rtol=1e-6, atol=1e-6)  # a ← s·a + m, fused
    state = torch.get_rng_state()
    assert torch.equal(control.eval()(x), x)  # eval: the identity, and no draws
    assert torch.equal(torch.get_rng_state(), state)


def test_noisy_bn_replays_from_the_rng_state():
    layer = NoisyBatchNorm2d(4).train()
    x = torch.randn(3, 4, 5, 5)
    state = torch.get_rng_state()
    first = layer(x)
    assert not torch.equal(torch.get_rng_state(), state)  # it drew from the global RNG
    second = layer(x)
    assert not torch.equal(first, second)  # a new step, new noise
    torch.set_rng_state(state)
    torch.testing.assert_close(layer(x), first, rtol=0, atol=0)


def test_noisy_bn_gradients_reach_weight_and_bias():
    layer = NoisyBatchNorm2d(3).train()
    layer(torch.randn(4, 3, 2, 2)).pow(2).sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.bias.grad.abs().sum() > 0


def test_noisy_bn_rejects_bad_constants():
    with pytest.raises(ConfigError, match="n_sigma"):
        NoisyBatchNorm2d(3, n_sigma=0.5)
    with pytest.raises(ConfigError, match="r_sigma"):
        NoisyBatchNorm1d(3, r_sigma=-0.1)


# ---- ℓp normalization -----------------------------------------------------------------------


def lp_reference(x, weight, bias, p, eps, running=None):
    """y = γ (x − mean)/(scale + ε) + β per channel, recomputed in float64, with the scale the
    average ℓp norm of x BEFORE the mean is removed (the paper's Section 3.3); returns
    (y, mean, scale) with the batch statistics, or uses `running` = (mean, scale)."""
    x = x.detach().double().numpy()
    axes = (0,) + tuple(range(2, x.ndim))
    unit = (1, -1) + (1,) * (x.ndim - 2)
    if running is None:
        mean = x.mean(axis=axes)
        centered = x - mean.reshape(unit)
        if p == math.inf:
            scale = np.abs(x).max(axis=axes)
        else:
            scale = (np.abs(x) ** p).mean(axis=axes) ** (1 / p)
    else:
        mean, scale = running
        centered = x - mean.reshape(unit)
    y = centered / (scale + eps).reshape(unit)
    w = weight.detach().double().numpy().reshape(unit)
    b = bias.detach().double().numpy().reshape(unit)
    return y * w + b, mean, scale


SHAPES = [(6, 5, 3, 4), (7, 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind, p", [("l1", 1.0), ("l2", 2.0), ("linf", math.inf)])
def test_lp_norm_matches_the_formula(kind, p, shape):
    torch.manual_seed(1)
    layer = make_norm(kind, 5, spatial=len(shape) == 4)
    assert isinstance(layer, LpNorm) and layer.p == p
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2)
        layer.bias.uniform_(-1, 1)
    x = torch.randn(shape) * 2 + 3

    y = layer(x)  # training mode: batch statistics
    expected, mean, scale = lp_reference(x, layer.weight, layer.bias, p, layer.eps)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    # running estimates: momentum 0.1 from 0 (mean) and 1 (scale)
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_scale.numpy(), 0.9 + 0.1 * scale, rtol=1e-5)

    layer.eval()  # eval mode: the running estimates, not the batch's
    x2 = torch.randn(shape) - 1
    running = (layer.running_mean.double().numpy(), layer.running_scale.double().numpy())
    expected, _, _ = lp_reference(x2, layer.weight, layer.bias, p, layer.eps, running)
    np.testing.assert_allclose(layer(x2).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    before = layer.running_mean.clone()
    layer(x2)
    assert torch.equal(layer.running_mean, before)


def _l2_and_bn(spatial: bool):
    lp = LpNorm(5, p=2, eps=0.0)
    # torch refuses eps = 0 in training; 1e-12 on a variance of ~4 is below float32 resolution
    bn = (nn.BatchNorm2d if spatial else nn.BatchNorm1d)(5, eps=1e-12)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
        lp.weight.copy_(bn.weight)
        lp.bias.copy_(bn.bias)
    return lp, bn


@pytest.mark.parametrize("shape", SHAPES)
def test_l2_is_not_batchnorm_on_activations_with_a_mean(shape):
    # The paper divides by the ℓ2 average of the activations before the mean is removed:
    # √(E[x²]) = √(var + mean²). On activations with a non-zero mean that is not BN's std.
    torch.manual_seed(2)
    lp, bn = _l2_and_bn(len(shape) == 4)
    x = torch.randn(shape) * 2 + 3  # channel means ≈ 3, std ≈ 2
    y_lp, y_bn = lp(x), bn(x)
    assert not torch.allclose(y_lp, y_bn, rtol=1e-2, atol=1e-2)
    dims = [0, *range(2, x.dim())]
    var, mean = torch.var_mean(x.double(), dim=dims, correction=0)
    # Centred like BN, divided by √(var + mean²) instead of √var: (y − β)/γ scales by √var/√(..).
    unit = (1, 5) + (1,) * (x.dim() - 2)
    ratio = ((y_lp - lp.bias.view(unit)) / (y_bn - bn.bias.view(unit))).double()
    expected = (var.sqrt() / (var + mean ** 2).sqrt()).view(unit).expand_as(ratio)
    torch.testing.assert_close(ratio, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", SHAPES)
def test_l2_is_batchnorm_on_zero_mean_activations(shape):
    # Where every channel's batch mean is zero the two divisors agree, values and gradients.
    torch.manual_seed(2)
    lp, bn = _l2_and_bn(len(shape) == 4)
    x = torch.randn(shape, dtype=torch.float64) * 2 + 3
    dims = [0, *range(2, x.dim())]
    x = (x - x.mean(dims, keepdim=True)).float().requires_grad_()
    upstream = torch.randn(shape)
    grads = []
    for layer in (lp, bn):
        y = layer(x)
        (gx, gw, gb) = torch.autograd.grad(y, (x, layer.weight, layer.bias), upstream)
        grads.append((y, gx, gw, gb))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_lp_norm_gradients(p):
    torch.manual_seed(3)
    layer = LpNorm(3, p=p).double()
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2)
        layer.bias.uniform_(-1, 1)
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,))
    layer(x).pow(2).sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.bias.grad.abs().sum() > 0

    # a constant channel (scale 0) normalizes to β and keeps gradients finite
    x = torch.randn(4, 3, 2, 2)
    x[:, 1] = 0.0  # scale 0: the ℓp average is taken before centring, so the channel is 0
    x.requires_grad_()
    layer = LpNorm(3, p=p)
    y = layer(x)
    assert torch.equal(y[:, 1], torch.zeros_like(y[:, 1]))
    y.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.weight.grad).all()


def test_lp_norm_rejects_bad_input():
    with pytest.raises(ConfigError, match="p >= 1"):
        LpNorm(3, p=0.5)
    with pytest.raises(ValueError, match="more than 1 value"):
        LpNorm(3, p=1)(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"\[N, 3, \*\]"):
        LpNorm(3, p=1)(torch.randn(4, 2))


# ---- make_norm and the models ---------------------------------------------------------------


@pytest.mark.parametrize("kind, spatial, cls", [
    ("none", True, nn.Identity),
    ("bn", True, nn.BatchNorm2d),
    ("bn", False, nn.BatchNorm1d),
    ("noisy_bn", True, NoisyBatchNorm2d),
    ("noisy_bn", False, NoisyBatchNorm1d),
    ("l1", True, LpNorm),
    ("l2", False, LpNorm),
    ("linf", True, LpNorm),
])
def test_make_norm_builds_every_kind(kind, spatial, cls):
    layer = make_norm(kind, 6, spatial=spatial)
    assert type(layer) is cls
    x = torch.randn(4, 6, 3, 3) if spatial else torch.randn(4, 6)
    assert layer(x).shape == x.shape


def test_make_norm_unknown_kind_lists_the_valid_kinds():
    with pytest.raises(ConfigError, match="unknown normalization 'xn'; valid: none, bn, "
                                          "noisy_bn, l1, l2, linf, noise, gn, ln, in, ws"):
        make_norm("xn", 4, spatial=True)


@pytest.mark.parametrize("kind", NORM_KINDS)
def test_vgg_trains_one_step_with_every_norm(kind):
    torch.manual_seed(0)
    placement = {"norm_placement": "conv"} if kind == "in" else {}  # not after linear layers
    model = build_model("vgg", norm=kind, width=0.125, **placement).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8)
    loss = nn.functional.cross_entropy(model(x), y)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    optimizer.step()
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    model.eval()
    assert model(x[:2]).shape == (2, 10)  # eval mode runs on a batch of any size


@pytest.mark.parametrize("kind", ["noisy_bn", "l1", "l2", "linf"])
def test_variants_keep_batchnorm_parameter_names(kind):
    bn = {n: p.shape for n, p in build_model("vgg_bn", width=0.125).named_parameters()}
    variant = {n: p.shape for n, p in build_model("vgg", norm=kind, width=0.125)
               .named_parameters()}
    assert variant == bn
