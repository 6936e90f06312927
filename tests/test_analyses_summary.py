"""Band widths and the two-model comparison table, on hand-built cases with known medians."""

import math

import numpy as np
import pytest

from analyses import Comparison, ComparisonRow, band_width, compare_models

STEP = np.arange(10)  # range 0..9; early_fraction 0.5 splits at 4.5: early 0..4, late 5..9


def hand_built():
    series_a = {
        "beta": [
            (STEP, [1, 2, 3, 4, 5, 10, 10, 10, 10, 10]),
            (STEP, [6, 7, 8, 9, 10, 20, 20, 20, 20, np.nan]),
        ],
        "grad_change": [(STEP, [3.0] * 10)],
    }
    series_b = {
        "beta": [(STEP, [1, 1, 1, 1, 1, 2, 2, 2, 2, np.inf])],
        "grad_change": [(STEP, [0.0] * 10)],
    }
    return compare_models("vgg", series_a, "vgg_bn", series_b)


def test_medians_and_ratios_are_exact():
    cmp = hand_built()
    assert isinstance(cmp, Comparison)
    assert (cmp.first_step, cmp.last_step, cmp.split_step) == (0, 9, 4.5)
    assert [(r.metric, r.phase) for r in cmp.rows] == [
        ("beta", "all"), ("beta", "early"), ("beta", "late"),
        ("grad_change", "all"), ("grad_change", "early"), ("grad_change", "late"),
    ]
    # a: 1..10 early, five 10s and four 20s late (NaN left out);
    # b: 1s early, 2s late (inf left out).
    assert cmp.row("beta", "all") == ComparisonRow("beta", "all", 10.0, 1.0, 10.0, 19, 9)
    assert cmp.row("beta", "early") == ComparisonRow("beta", "early", 5.5, 1.0, 5.5, 10, 5)
    assert cmp.row("beta", "late") == ComparisonRow("beta", "late", 10.0, 2.0, 5.0, 9, 4)
    gc = cmp.row("grad_change", "all")
    assert (gc.median_a, gc.median_b, gc.ratio) == (3.0, 0.0, math.inf)


def test_split_is_shared_across_metrics_and_models():
    a = {"loss": [(np.arange(0, 100), np.r_[np.full(25, 4.0), np.full(75, 1.0)])],
         "beta": [(np.arange(0, 40), np.full(40, 7.0))]}
    b = {"loss": [(np.arange(0, 60), np.full(60, 2.0))],
         "beta": [(np.arange(0, 40), np.full(40, 7.0))]}
    cmp = compare_models("a", a, "b", b, early_fraction=0.25)
    assert cmp.split_step == pytest.approx(24.75)
    assert cmp.row("loss", "early").median_a == 4.0 and cmp.row("loss", "early").n_a == 25
    assert cmp.row("loss", "late").n_b == 35
    assert cmp.row("beta", "late").ratio == 1.0


def test_phase_without_values_gives_nan():
    a = {"m": [(np.array([0, 1]), [np.nan, np.nan])]}
    b = {"m": [(np.array([0, 1]), [1.0, 2.0])]}
    r = compare_models("a", a, "b", b).row("m", "all")
    assert math.isnan(r.median_a) and math.isnan(r.ratio) and r.n_a == 0 and r.n_b == 2


def test_to_text_lists_metrics_and_numbers_aligned():
    text = hand_built().to_text()
    for needle in ("vgg", "vgg_bn", "beta", "grad_change", "early", "late", "5.5", "10", "inf"):
        assert needle in text
    table = text.splitlines()[1:]
    assert len(table) == 2 + 6  # header, rule, 6 rows
    assert len({len(line) for line in table}) == 1, text
    row = next(line for line in table if line.startswith("beta") and " early " in line)
    assert row.split() == ["beta", "early", "5.5", "1", "5.5", "10", "5"]


def test_band_width_difference_and_ratio():
    low = np.array([0.5, 1.0, 2.0, np.nan, 0.0])
    high = np.array([2.0, 1.0, np.inf, 1.0, 3.0])
    np.testing.assert_array_equal(band_width(low, high), [1.5, 0.0, np.inf, np.nan, 3.0])
    np.testing.assert_array_equal(
        band_width(low, high, kind="ratio"), [4.0, 1.0, np.inf, np.nan, np.nan]
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: band_width([1.0, 2.0], [2.0]), "same shape"),
        (lambda: band_width([1.0, 3.0], [2.0, 2.0]), "swapped"),
        (lambda: band_width([1.0], [2.0], kind="log"), "'difference', 'ratio'"),
        (lambda: compare_models("a", {"m": [([0], [1.0])]}, "b", {"n": [([0], [1.0])]}),
         "same metrics"),
        (lambda: compare_models("a", {"m": []}, "b", {"m": [([0], [1.0])]}), "has no curves"),
        (lambda: compare_models("a", {}, "b", {}), "series_a is empty"),
        (lambda: compare_models("a", {"m": [([0], [1.0])]}, "b", {"m": [([0], [1.0])]},
                                early_fraction=1.0), r"early_fraction must be in \(0, 1\)"),
        (lambda: compare_models("", {"m": [([0], [1.0])]}, "b", {"m": [([0], [1.0])]}),
         "name_a must be a non-empty string"),
        (lambda: compare_models("a", {"m": [([0, 1], [1.0])]}, "b", {"m": [([0], [1.0])]}),
         r"series_a\['m'\]\[0\]: step and values must have the same length"),
        (lambda: compare_models("a", [([0], [1.0])], "b", {"m": [([0], [1.0])]}),
         "must map metric names"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
