"""Plateau detection, matched-progress comparison and seed bootstrap against constructed truth."""

import math

import numpy as np
import pytest

from analyses.confidence import bootstrap_ratio, pooled_median_ratio
from analyses.progress import (bin_index, common_loss_bins, detect_plateau, loss_at,
                               matched_ratio, smoothed_loss)


def _curve(plateau_steps: int, n: int, rng, start=math.log(10), rate=0.01, noise=0.01):
    """ln 10 for `plateau_steps` steps, then an exponential decay towards 0.3, with noise."""
    t = np.arange(n)
    loss = np.where(t < plateau_steps, start,
                    0.3 + (start - 0.3) * np.exp(-rate * (t - plateau_steps)))
    return t, loss + noise * rng.standard_normal(n)


def test_smoothed_loss_is_a_trailing_mean():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(smoothed_loss(x, window=2), [1.0, 1.5, 2.5, 3.5, 4.5])


def test_plateau_ends_where_the_loss_leaves_it():
    rng = np.random.default_rng(0)
    step, loss = _curve(150, 600, rng)
    p = detect_plateau(step, loss)
    assert p.start_loss == pytest.approx(math.log(10), abs=0.01)
    # 5% below ln 10 is reached ~6 steps of decay after the plateau, plus the smoothing lag.
    assert 150 < p.end_step < 150 + 40
    assert p.steps == p.end_step and not p.whole_run


def test_a_run_that_never_leaves_its_plateau_is_whole_run():
    rng = np.random.default_rng(1)
    step, loss = _curve(10_000, 300, rng)
    p = detect_plateau(step, loss)
    assert p.whole_run and p.end_step is None and p.steps == 300


def test_a_training_run_has_no_plateau():
    rng = np.random.default_rng(2)
    step, loss = _curve(0, 300, rng, rate=0.05)
    assert detect_plateau(step, loss).end_step < 30


def test_loss_at_reads_the_smoothed_loss_at_recorded_steps():
    step = np.arange(0, 10)
    loss = np.arange(10, dtype=float)
    out = loss_at([0, 4, 20], step, loss, window=1)
    np.testing.assert_array_equal(out[:2], [0.0, 4.0])
    assert np.isnan(out[2])


def test_bins_cover_the_common_range_only():
    edges = common_loss_bins([0.5, 1.0, 2.3], [1.5, 2.0, 2.3, 3.0], n_bins=4)
    assert edges[0] == pytest.approx(1.5) and edges[-1] == pytest.approx(2.3)
    assert common_loss_bins([0.1, 0.2], [1.0, 2.0]).size == 0
    idx = bin_index([1.4, 1.5, 2.3, 2.4, np.nan], edges)
    np.testing.assert_array_equal(idx, [-1, 0, 3, -1, -1])


def test_matched_progress_removes_a_plateau_that_per_step_medians_mistake_for_smoothness():
    # Ground truth: the metric is the same function of the training loss for both models
    # (metric = loss²), so at matched progress the models do not differ (ratio 1). Model a sits
    # on a plateau for 300 of 600 steps, model b trains from the start: per-step medians differ.
    rng = np.random.default_rng(3)
    step, loss_a = _curve(300, 600, rng, noise=0.0)
    _, loss_b = _curve(0, 600, rng, noise=0.0)
    probed = step[::10]
    la, lb = loss_at(probed, step, loss_a, window=1), loss_at(probed, step, loss_b, window=1)
    va, vb = la ** 2, lb ** 2
    per_step = np.median(va) / np.median(vb)
    assert per_step > 2
    edges = common_loss_bins(la, lb, n_bins=5)
    assert matched_ratio(va, la, vb, lb, edges=edges) == pytest.approx(1.0, rel=0.1)
    # And a real difference survives matching: twice the metric at every loss level.
    assert matched_ratio(2 * va, la, vb, lb, edges=edges) == pytest.approx(2.0, rel=0.1)


def test_bootstrap_over_seeds():
    rng = np.random.default_rng(4)
    # Seed i of model a: values around 3·(1 + 0.1 i); model b: around 1. True ratios 3, …, 4.2.
    a = [3 * (1 + 0.1 * i) * np.exp(0.01 * rng.standard_normal(200)) for i in range(5)]
    b = [np.exp(0.01 * rng.standard_normal(200)) for _ in range(5)]
    stat = pooled_median_ratio(a, b)
    est = bootstrap_ratio(5, stat)
    assert est.basis == "bootstrap"
    assert est.ratio == pytest.approx(np.median(np.concatenate(a)) / np.median(np.concatenate(b)))
    assert est.per_seed == pytest.approx((3.0, 3.3, 3.6, 3.9, 4.2), rel=0.01)
    # With 5 seeds the percentile interval lies strictly inside the per-seed range.
    assert min(est.per_seed) < est.low <= est.ratio <= est.high < max(est.per_seed)
    assert est.verdict == "greater" and est.interval_text().startswith("[")
    again = bootstrap_ratio(5, stat)
    assert (again.low, again.high) == (est.low, est.high)  # seeded: a report is reproducible


def test_few_seeds_give_the_per_seed_range_not_a_bootstrap():
    # 3 seeds: ratios 3, 3.3, 3.6 (exactly: constant values)
    a = [np.full(20, 3 * (1 + 0.1 * i)) for i in range(3)]
    b = [np.ones(20)] * 3
    est = bootstrap_ratio(3, pooled_median_ratio(a, b))
    assert est.basis == "seed range" and (est.low, est.high) == pytest.approx((3.0, 3.6))
    assert est.verdict == "greater" and est.all_seeds_agree
    assert est.interval_text() == "3 to 3.6 (per-seed range, 3 seeds)"
    # The same seeds with a bootstrap forced on (the old behaviour): its 95% "interval" is
    # exactly the extreme seeds, i.e. the range under another name.
    forced = bootstrap_ratio(3, pooled_median_ratio(a, b), min_bootstrap_seeds=2)
    assert forced.basis == "bootstrap" and (forced.low, forced.high) == pytest.approx((3.0, 3.6))


def test_with_few_seeds_the_ratio_is_the_median_seed_ratio_inside_the_range():
    """Pooling the seeds' values can put the ratio outside the per-seed range printed beside
    it (seeds with different numbers of values, as at matched loss): here every seed alone says
    a < b, the pooled medians 3 / 1.1 say a > b."""
    a = [np.full(5, 1.0), np.full(15, 3.0)]
    b = [np.full(15, 1.1), np.full(5, 3.2)]
    stat = pooled_median_ratio(a, b)
    assert stat(np.arange(2)) == pytest.approx(3.0 / 1.1)  # the pooled ratio, outside the range
    est = bootstrap_ratio(2, stat)
    assert est.per_seed == pytest.approx((1 / 1.1, 3 / 3.2))
    assert est.ratio == pytest.approx((1 / 1.1 + 3 / 3.2) / 2)
    assert est.low <= est.ratio <= est.high and est.verdict == "less"
    three = bootstrap_ratio(3, pooled_median_ratio([*a, np.full(7, 2.0)], [*b, np.full(9, 4.0)]))
    assert three.ratio == pytest.approx(1 / 1.1) and three.verdict == "less"


def test_a_seed_without_a_ratio_of_its_own_gives_no_verdict_and_says_why():
    from landscape.report.verdicts import verdict_words

    a = [np.full(4, 2.0), np.array([]), np.full(4, 3.0)]  # seed 1: no values of model a
    b = [np.ones(4)] * 3
    est = bootstrap_ratio(3, pooled_median_ratio(a, b))
    assert est.n_defined == 2 and math.isnan(est.low) and est.verdict == "no interval"
    assert est.ratio == pytest.approx(2.5)  # pooled: the median of 2, 2, 2, 2, 3, 3, 3, 3
    assert verdict_words(est) == "no verdict (2 of 3 seeds have a ratio of their own)"
    single = bootstrap_ratio(1, pooled_median_ratio(a[:1], b[:1]))
    assert verdict_words(single) == "no interval (1 seed)"


def test_an_interval_that_contains_one_is_unclear_and_one_seed_has_none():
    a = [np.full(10, 0.5), np.full(10, 2.0)]
    b = [np.ones(10), np.ones(10)]
    est = bootstrap_ratio(2, pooled_median_ratio(a, b))
    assert est.low == pytest.approx(0.5) and est.high == pytest.approx(2.0)
    assert est.verdict == "unclear" and not est.all_seeds_agree and est.basis == "seed range"
    single = bootstrap_ratio(1, pooled_median_ratio(a[:1], b[:1]))
    assert single.ratio == 0.5 and math.isnan(single.low) and single.verdict == "no interval"
    assert single.interval_text() == "no interval (1 seed)" and single.basis == "none"
    lower = bootstrap_ratio(2, pooled_median_ratio([np.full(5, 0.2)] * 2, [np.ones(5)] * 2))
    assert lower.verdict == "less" and lower.low == lower.high == pytest.approx(0.2)
