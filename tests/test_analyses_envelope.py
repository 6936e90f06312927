"""Envelopes across runs, and smoothing of one curve."""

import numpy as np
import pytest

from analyses import Envelope, loss_envelope, smooth_curve


def random_curves(rng, lengths, start=0):
    return [(np.arange(start, start + n), rng.lognormal(size=n)) for n in lengths]


def test_envelope_brackets_every_curve_and_touches_it():
    rng = np.random.default_rng(0)
    curves = random_curves(rng, [50, 50, 50, 50])
    env = loss_envelope(curves)
    assert isinstance(env, Envelope)
    stacked = np.stack([v for _, v in curves])
    for _, v in curves:
        assert np.all(env.low <= v) and np.all(v <= env.high)
    # Tight: the bounds are attained, not just any bracket.
    np.testing.assert_array_equal(env.low, stacked.min(axis=0))
    np.testing.assert_array_equal(env.high, stacked.max(axis=0))
    np.testing.assert_array_equal(env.n_runs, np.full(50, 4))


def test_single_run_envelope_is_the_curve():
    step = np.array([0, 3, 7, 8])
    values = np.array([2.5, 1.0, 0.5, 0.25], dtype=np.float32)
    env = loss_envelope([(step, values)])
    np.testing.assert_array_equal(env.step, step)
    np.testing.assert_array_equal(env.low, values)
    np.testing.assert_array_equal(env.high, values)
    np.testing.assert_array_equal(env.n_runs, [1, 1, 1, 1])
    assert env.step.dtype == np.int64 and env.low.dtype == np.float64


def test_different_lengths_and_a_diverged_run():
    a = (np.arange(6), np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5]))
    b = (np.arange(4), np.array([6.0, 3.5, np.inf, np.nan]))  # diverged at step 2
    c = (np.arange(2, 8), np.array([2.5, 2.5, 2.5, 2.5, 2.5, 2.5]))

    env = loss_envelope([a, b, c])
    np.testing.assert_array_equal(env.step, np.arange(8))
    np.testing.assert_array_equal(env.n_runs, [2, 2, 2, 2, 2, 2, 1, 1])
    np.testing.assert_array_equal(env.low, [5.0, 3.5, 2.5, 2.0, 1.0, 0.5, 2.5, 2.5])
    np.testing.assert_array_equal(env.high, [6.0, 4.0, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5])

    inter = loss_envelope([a, b, c], align="intersection")
    np.testing.assert_array_equal(inter.step, [2, 3])
    np.testing.assert_array_equal(inter.n_runs, [2, 2])  # run b present but not finite
    np.testing.assert_array_equal(inter.low, [2.5, 2.0])
    np.testing.assert_array_equal(inter.high, [3.0, 2.5])


def test_step_with_no_finite_value_is_nan_with_zero_runs():
    env = loss_envelope([([0, 1], [1.0, np.nan]), ([0, 1], [2.0, np.inf])])
    np.testing.assert_array_equal(env.n_runs, [2, 0])
    assert np.isnan(env.low[1]) and np.isnan(env.high[1])


def test_unaligned_steps_union_and_intersection():
    a = ([0, 2, 4, 6], [1.0, 2.0, 3.0, 4.0])
    b = ([0, 3, 6], [10.0, 20.0, 30.0])
    u = loss_envelope([a, b])
    np.testing.assert_array_equal(u.step, [0, 2, 3, 4, 6])
    np.testing.assert_array_equal(u.n_runs, [2, 1, 1, 1, 2])
    np.testing.assert_array_equal(u.high, [10.0, 2.0, 20.0, 3.0, 30.0])
    i = loss_envelope([a, b], align="intersection")
    np.testing.assert_array_equal(i.step, [0, 6])
    np.testing.assert_array_equal(i.low, [1.0, 4.0])


def test_moving_average_of_constant_is_constant():
    step = np.arange(0, 500, 5)
    s, v = smooth_curve(step, np.full(step.size, 0.3), method="moving_average", window=7)
    np.testing.assert_array_equal(s, step[6:])
    np.testing.assert_allclose(v, 0.3, rtol=1e-14)


def test_moving_average_of_ramp_is_the_ramp_delayed_by_half_a_window():
    d, window = 5, 4
    step = np.arange(10, 200, d)
    s, v = smooth_curve(step, 2.0 * step + 1.0, method="moving_average", window=window)
    np.testing.assert_array_equal(s, step[window - 1 :])  # trailing: at the window's last step
    np.testing.assert_allclose(v, 2.0 * (s - (window - 1) * d / 2) + 1.0, rtol=1e-14)


def test_subsample_picks_every_kth():
    step = np.arange(100, 123)
    values = np.arange(23) * 1.5
    s, v = smooth_curve(step, values, method="subsample", window=5)
    np.testing.assert_array_equal(s, [100, 105, 110, 115, 120])
    np.testing.assert_array_equal(v, [0.0, 7.5, 15.0, 22.5, 30.0])
    s1, v1 = smooth_curve(step, values, method="subsample", window=1)
    np.testing.assert_array_equal(s1, step)
    np.testing.assert_array_equal(v1, values)


def test_nonfinite_values_leave_a_gap_or_are_omitted_never_averaged_in():
    step = np.arange(8)
    values = np.array([1.0, 1.0, 1.0, np.nan, 3.0, 3.0, np.inf, 3.0])
    s, gap = smooth_curve(step, values, method="moving_average", window=2)
    np.testing.assert_array_equal(s, np.arange(1, 8))
    np.testing.assert_array_equal(gap, [1.0, 1.0, np.nan, np.nan, 3.0, np.nan, np.nan])
    _, omit = smooth_curve(step, values, method="moving_average", window=2, nonfinite="omit")
    np.testing.assert_array_equal(omit, [1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0])
    _, all_bad = smooth_curve([0, 1], [np.nan, np.inf], method="moving_average", window=2,
                              nonfinite="omit")
    assert np.isnan(all_bad[0])


def test_window_longer_than_curve_gives_empty_result():
    s, v = smooth_curve([0, 1, 2], [1.0, 2.0, 3.0], method="moving_average", window=4)
    assert s.size == 0 and v.size == 0 and s.dtype == np.int64


def smooth(values, **kw):
    return smooth_curve([0, 1], values, **kw)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: loss_envelope([]), "curves is empty"),
        (lambda: loss_envelope([([0, 1, 2], [1.0, 2.0])]), "same length"),
        (lambda: loss_envelope([([0, 2, 1], [1.0, 2.0, 3.0])]), "unsorted"),
        (lambda: loss_envelope([([0, 1, 1], [1.0, 2.0, 3.0])]), "duplicate"),
        (lambda: loss_envelope([([0.0, 1.0], [1.0, 2.0])]), "integer steps"),
        (lambda: loss_envelope([([], [])]), "has no points"),
        (lambda: loss_envelope([([0, 1], [[1.0, 2.0]])]), "values must be 1-D"),
        (lambda: loss_envelope([np.arange(3)]), r"must be a \(step, values\) pair"),
        (lambda: loss_envelope([([0], [1.0])], align="both"), "'union', 'intersection'"),
        (lambda: smooth([1.0, 2.0], method="moving_average", window=0), "window must be >= 1"),
        (lambda: smooth([1.0, 2.0], method="subsample", window=2.0), "window must be an int"),
        (lambda: smooth([1.0, 2.0], method="ema", window=2), "'moving_average', 'subsample'"),
        (lambda: smooth([1.0, 2.0], method="moving_average", window=2, nonfinite="drop"),
         "'gap', 'omit'"),
        (lambda: smooth([1.0], method="subsample", window=1), "same length"),
        (lambda: smooth_curve([1, 0], [1.0, 2.0], method="subsample", window=1),
         "strictly increasing"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
