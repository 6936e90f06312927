"""Ground truth for the course ("trajectory") quantities on simulated SGD runs."""

import numpy as np
import pytest

from analyses import gradient_change, trajectory_beta, trajectory_beta_from_norms

DIM = 10


def random_spd(rng, dim=DIM):
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * rng.uniform(0.5, 5.0, size=dim)) @ q.T


def sgd_quadratic(a, w0, lr, steps):
    """Plain SGD on ½wᵀAw: grads[t] = A w_t, deltas[t] = w_{t+1} − w_t, weights[t] = w_t."""
    ws, gs, ds = [], [], []
    w = w0.copy()
    for _ in range(steps):
        g = a @ w
        w_next = w - lr * g
        ws.append(w), gs.append(g), ds.append(w_next - w)
        w = w_next
    return np.array(ws), np.array(gs), np.array(ds)


def test_sgd_quadratic_trajectory_beta_matches_independent_formula():
    rng = np.random.default_rng(0)
    a = random_spd(rng)
    _, grads, deltas = sgd_quadratic(a, rng.standard_normal(DIM), lr=0.05, steps=30)
    step = np.arange(30)

    s, beta = trajectory_beta(step, grads, deltas)

    expected = np.array(
        [np.linalg.norm(a @ deltas[t]) / np.linalg.norm(deltas[t]) for t in range(29)]
    )
    np.testing.assert_array_equal(s, np.arange(29))
    np.testing.assert_allclose(beta, expected, rtol=1e-10, atol=0)
    assert np.all(beta <= np.linalg.eigvalsh(a)[-1] * (1 + 1e-10))

    s2, change = gradient_change(step, grads)
    np.testing.assert_array_equal(s2, np.arange(29))
    np.testing.assert_allclose(change, [np.linalg.norm(a @ deltas[t]) for t in range(29)],
                               rtol=1e-10)


def test_all_parameter_version_from_recorded_norms():
    rng = np.random.default_rng(1)
    a = random_spd(rng)
    _, grads, deltas = sgd_quadratic(a, rng.standard_normal(DIM), lr=0.05, steps=20)
    # What the recorder stores: grad_change NaN at the first step, update norms every step.
    grad_change = np.r_[np.nan, np.linalg.norm(np.diff(grads, axis=0), axis=1)]
    update_norm = np.linalg.norm(deltas, axis=1)
    step = np.arange(100, 120)

    s, beta = trajectory_beta_from_norms(step, grad_change, update_norm)

    expected = [np.linalg.norm(a @ deltas[t]) / np.linalg.norm(deltas[t]) for t in range(19)]
    np.testing.assert_array_equal(s, step[:-1])
    np.testing.assert_allclose(beta, expected, rtol=1e-10)

    # A gap in the record: no value at the step before the gap.
    keep = np.r_[0:5, 7:20]
    s, beta = trajectory_beta_from_norms(step[keep], grad_change[keep], update_norm[keep])
    assert 104 not in s and 105 not in s and 106 not in s
    np.testing.assert_array_equal(s, np.r_[100:104, 107:119])


def test_thinned_pairs_give_values_only_at_the_first_step_of_each_pair():
    rng = np.random.default_rng(2)
    a = random_spd(rng)
    _, grads, deltas = sgd_quadratic(a, rng.standard_normal(DIM), lr=0.05, steps=31)
    taps = np.array([0, 1, 10, 11, 20, 21, 30])  # 30 has no partner

    s, beta = trajectory_beta(taps, grads[taps], deltas[taps])
    np.testing.assert_array_equal(s, [0, 10, 20])
    expected = [np.linalg.norm(a @ deltas[t]) / np.linalg.norm(deltas[t]) for t in (0, 10, 20)]
    np.testing.assert_allclose(beta, expected, rtol=1e-10)

    s, change = gradient_change(taps, grads[taps])
    np.testing.assert_array_equal(s, [0, 10, 20])
    np.testing.assert_allclose(
        change, [np.linalg.norm(grads[t + 1] - grads[t]) for t in (0, 10, 20)], rtol=1e-14
    )


def test_linear_loss_has_zero_gradient_change_and_trajectory_beta():
    c = np.random.default_rng(3).standard_normal((3, 4))  # a matrix-shaped parameter
    lr = 0.1
    grads = np.broadcast_to(c, (8, 3, 4)).copy()  # ∇(cᵀw) = c at every w
    deltas = -lr * grads
    step = np.arange(8)
    s, change = gradient_change(step, grads)
    assert s.size == 7 and np.all(change == 0.0)
    _, beta = trajectory_beta(step, grads, deltas)
    assert np.all(beta == 0.0)
    _, beta_all = trajectory_beta_from_norms(
        step, np.r_[np.nan, np.zeros(7)], np.full(8, lr * np.linalg.norm(c))
    )
    assert np.all(beta_all == 0.0)


def test_float16_input_is_reduced_in_float64():
    # 256 entries differing by 200: each square (40000·...) overflows float16 (max 65504)
    # if summed in float16, while the true norm (3200) is representable.
    grads = np.zeros((2, 16, 16), dtype=np.float16)
    grads[1] = 200.0
    deltas = np.full((2, 16, 16), 0.5, dtype=np.float16)
    _, change = gradient_change([5, 6], grads)
    assert change.dtype == np.float64
    assert change[0] == pytest.approx(3200.0, rel=1e-12)
    _, beta = trajectory_beta([5, 6], grads, deltas)
    assert beta[0] == pytest.approx(3200.0 / 8.0, rel=1e-12)


def test_chunked_norms_match_unchunked(monkeypatch):
    import analyses.trajectory as traj

    rng = np.random.default_rng(4)
    grads = rng.standard_normal((9, 5, 3)).astype(np.float32)
    step = np.arange(9)
    _, full = gradient_change(step, grads)
    monkeypatch.setattr(traj, "_CHUNK_ELEMENTS", 20)  # 1 row (15 elements) per chunk
    _, chunked = gradient_change(step, grads)
    np.testing.assert_array_equal(full, chunked)
    expected = np.linalg.norm(np.diff(grads.astype(np.float64), axis=0).reshape(8, -1), axis=1)
    np.testing.assert_allclose(full, expected, rtol=1e-12)


def test_zero_displacement_gives_nan_and_inf_gradient_gives_inf():
    grads = np.array([[0.0], [1.0], [2.0], [np.inf]])
    deltas = np.array([[0.0], [1.0], [1.0], [1.0]])
    s, beta = trajectory_beta(np.arange(4), grads, deltas)
    assert np.isnan(beta[0])  # ‖Δw‖ = 0: no displacement to divide by
    assert beta[1] == 1.0
    assert beta[2] == np.inf
    _, b = trajectory_beta_from_norms([0, 1, 2], [np.nan, 1.0, 2.0], [0.0, np.nan, 1.0])
    assert np.isnan(b[0]) and np.isnan(b[1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: gradient_change([0, 1, 2], np.zeros((2, 3))), "one entry per tap step"),
        (lambda: gradient_change([0, 2, 1], np.zeros((3, 3))), "strictly increasing"),
        (lambda: gradient_change([0, 1, 1], np.zeros((3, 3))), "duplicate"),
        (lambda: gradient_change([0.0, 1.0], np.zeros((2, 3))), "integer steps"),
        (lambda: gradient_change([0, 1], np.float64(1.0)), "leading step axis"),
        (lambda: trajectory_beta([0, 1], np.zeros((2, 3)), np.zeros((2, 4))), "same shape"),
        (lambda: trajectory_beta_from_norms([0, 1], [1.0], [1.0, 1.0]), "same length"),
        (lambda: trajectory_beta_from_norms([0, 1], [1.0, -1.0], [1.0, 1.0]),
         "grad_change holds norms"),
        (lambda: trajectory_beta_from_norms([0, 1], [1.0, 1.0], [[1.0, 1.0]]),
         "update_norm must be 1-D"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
