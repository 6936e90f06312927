"""Ground truth for the paper's probe quantities on losses with closed-form gradients."""

import numpy as np
import pytest

from analyses import effective_beta, loss_band, predictiveness_band, probe_summary

DIM = 12
ETAS = np.array([0.05, 0.1, 0.2, 0.4])  # the paper's [1/2, 4] × lr at lr 0.1


def random_spd(rng, dim=DIM):
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = rng.uniform(0.5, 5.0, size=dim)
    return (q * lam) @ q.T


def quadratic_probe(a, ws, etas):
    """Probe arrays for L(w) = ½ wᵀAw, from its closed-form loss and gradient."""
    loss = lambda w: 0.5 * w @ a @ w  # noqa: E731
    grad = lambda w: a @ w  # noqa: E731
    p, k = len(ws), len(etas)
    probe_loss, grad_diff, eta = np.empty((p, k)), np.empty((p, k)), np.empty((p, k))
    grad_norm = np.empty(p)
    for i, w in enumerate(ws):
        g = grad(w)
        grad_norm[i] = np.linalg.norm(g)
        for j, e in enumerate(etas):
            eta[i, j] = e
            probe_loss[i, j] = loss(w - e * g)
            grad_diff[i, j] = np.linalg.norm(g - grad(w - e * g))
    return eta, probe_loss, grad_diff, grad_norm


def test_quadratic_beta_equals_rayleigh_ratio_and_is_bounded():
    rng = np.random.default_rng(0)
    a = random_spd(rng)
    ws = rng.standard_normal((6, DIM))
    eta, _, grad_diff, grad_norm = quadratic_probe(a, ws, ETAS)

    beta = effective_beta(eta, grad_diff, grad_norm)

    expected = np.array([np.linalg.norm(a @ (a @ w)) / np.linalg.norm(a @ w) for w in ws])
    np.testing.assert_allclose(beta, expected, rtol=1e-12, atol=0)
    lam = np.linalg.eigvalsh(a)
    assert np.all(beta <= lam[-1] * (1 + 1e-12))
    assert np.all(beta >= lam[0] * (1 - 1e-12))
    # Strictly inside the spectrum for a generic w: the test is not trivially at the bound.
    assert np.all(beta < lam[-1] * (1 - 1e-6))


def test_quadratic_beta_along_top_eigenvector_is_lambda_max():
    rng = np.random.default_rng(1)
    a = random_spd(rng)
    lam, vecs = np.linalg.eigh(a)
    w = 3.0 * vecs[:, -1]
    eta, _, grad_diff, grad_norm = quadratic_probe(a, [w], ETAS)
    beta = effective_beta(eta, grad_diff, grad_norm)
    np.testing.assert_allclose(beta, [lam[-1]], rtol=1e-12, atol=0)


def test_quadratic_bands_match_closed_form():
    rng = np.random.default_rng(2)
    a = random_spd(rng)
    ws = rng.standard_normal((3, DIM))
    eta, probe_loss, grad_diff, grad_norm = quadratic_probe(a, ws, ETAS)

    lo, hi = predictiveness_band(grad_diff)
    ag = np.array([np.linalg.norm(a @ (a @ w)) for w in ws])
    # Δg = ηAg, so the band runs from η_min‖Ag‖ to η_max‖Ag‖.
    np.testing.assert_allclose(lo, ETAS[0] * ag, rtol=1e-12)
    np.testing.assert_allclose(hi, ETAS[-1] * ag, rtol=1e-12)

    llo, lhi = loss_band(probe_loss)
    for i, w in enumerate(ws):
        g = a @ w
        losses = [0.5 * (w - e * g) @ a @ (w - e * g) for e in ETAS]
        assert llo[i] == pytest.approx(min(losses), rel=1e-14)
        assert lhi[i] == pytest.approx(max(losses), rel=1e-14)


def test_linear_loss_has_zero_gradient_change_and_beta():
    c = np.random.default_rng(3).standard_normal(DIM)
    grad = lambda w: c  # noqa: E731  L(w) = cᵀw
    w = np.ones(DIM)
    grad_diff = np.array([[np.linalg.norm(grad(w) - grad(w - e * c)) for e in ETAS]])
    lo, hi = predictiveness_band(grad_diff)
    assert lo[0] == 0.0 and hi[0] == 0.0
    beta = effective_beta(ETAS, grad_diff, [np.linalg.norm(c)])
    assert beta[0] == 0.0


def test_beta_takes_the_max_over_eta_not_another_statistic():
    eta = np.array([[0.1, 0.2, 0.4]])
    grad_diff = np.array([[0.3, 1.0, 0.8]])  # ratios / ‖g‖: 3, 5, 2
    beta = effective_beta(eta, grad_diff, [2.0])
    assert beta[0] == pytest.approx(2.5, rel=1e-15)


def test_nan_is_skipped_and_inf_is_kept():
    eta = np.array([0.1, 0.2, 0.4])
    probe_loss = np.array([[2.0, np.nan, np.inf], [np.nan, np.nan, np.nan], [1.0, 0.5, 3.0]])
    lo, hi = loss_band(probe_loss)
    np.testing.assert_array_equal(lo, [2.0, np.nan, 0.5])
    np.testing.assert_array_equal(hi, [np.inf, np.nan, 3.0])

    grad_diff = np.array([[0.1, np.nan, np.inf], [np.nan, np.nan, np.nan], [0.1, np.nan, 0.2]])
    beta = effective_beta(eta, grad_diff, [1.0, 1.0, 1.0])
    assert beta[0] == np.inf
    assert np.isnan(beta[1])
    assert beta[2] == pytest.approx(1.0, rel=1e-15)


def test_zero_or_nonfinite_grad_norm_gives_nan_beta():
    beta = effective_beta([0.1, 0.2], [[0.0, 0.0], [0.1, 0.2], [0.1, 0.2], [0.1, 0.2]],
                          [0.0, np.nan, np.inf, 1.0])
    assert np.all(np.isnan(beta[:3]))
    assert beta[3] == pytest.approx(1.0, rel=1e-15)


def test_probe_summary_bundles_the_three():
    rng = np.random.default_rng(4)
    a = random_spd(rng)
    ws = rng.standard_normal((4, DIM))
    eta, probe_loss, grad_diff, grad_norm = quadratic_probe(a, ws, ETAS)
    bands = probe_summary(np.array([0, 10, 20, 30]), eta, probe_loss, grad_diff, grad_norm)
    np.testing.assert_array_equal(bands.step, [0, 10, 20, 30])
    assert bands.step.dtype == np.int64
    np.testing.assert_array_equal(bands.loss_low, loss_band(probe_loss)[0])
    np.testing.assert_array_equal(bands.loss_high, loss_band(probe_loss)[1])
    np.testing.assert_array_equal(bands.grad_diff_low, predictiveness_band(grad_diff)[0])
    np.testing.assert_array_equal(bands.grad_diff_high, predictiveness_band(grad_diff)[1])
    np.testing.assert_array_equal(bands.beta, effective_beta(eta, grad_diff, grad_norm))
    with pytest.raises(AttributeError):
        bands.beta = None


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: loss_band(np.ones(3)), "probe_loss must be 2-D"),
        (lambda: loss_band(np.ones((3, 0))), "at least one step length"),
        (lambda: loss_band(np.array([["a"]])), "real numbers"),
        (lambda: predictiveness_band([[0.1, -0.2]]), "grad_diff holds norms"),
        (lambda: effective_beta([0.1, 0.2, 0.3], [[0.1, 0.2]], [1.0]), "eta must have shape"),
        (lambda: effective_beta([0.1, 0.0], [[0.1, 0.2]], [1.0]), "eta must be finite and > 0"),
        (lambda: effective_beta([0.1, np.nan], [[0.1, 0.2]], [1.0]), "eta must be finite"),
        (lambda: effective_beta([0.1, 0.2], [[0.1, 0.2]], [1.0, 2.0]), "grad_norm must have shape"),
        (lambda: effective_beta([0.1, 0.2], [[0.1, 0.2]], [-1.0]), "grad_norm holds norms"),
        (lambda: probe_summary([0, 1], [0.1], [[1.0]], [[0.1]], [1.0]), "probe_step has 2 steps"),
        (lambda: probe_summary([0], [0.1], [[1.0, 2.0]], [[0.1]], [1.0]), "same shape"),
        (lambda: probe_summary([1, 0], [0.1], [[1.0], [1.0]], [[0.1], [0.1]], [1.0, 1.0]),
         "strictly increasing"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
