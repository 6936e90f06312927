"""How sure a comparison is: a ratio between two models with a bootstrap interval over seeds.

The unit of replication is the seed: with seeds 0 … S−1 every (model, lr) pair was trained once
per seed, and the two models of a seed share the initialization seed, data order and batches.
So the bootstrap resamples whole seeds (both models of a seed together) and recomputes the
statistic on the resampled seeds. One seed gives a number and no interval; the verdict then says
so instead of pretending.

Below MIN_BOOTSTRAP_SEEDS seeds a bootstrap interval is not one: over 2 seeds a percentile
bootstrap has 3 distinct resamples and its "95% interval" is just the two seeds' values. There
the estimate reports the per-seed range (smallest to largest single-seed ratio) and calls it
that, its verdict is "greater" or "less" only when every seed's ratio lies on the same side
of 1, and its ratio is the median of the single-seed ratios, so that it lies inside the range it
is printed beside (a ratio of the seeds' pooled values can fall outside it: at matched loss one
record had 1.13 pooled beside single-seed ratios 0.87–0.98). Why 5: docs/measurements.md §6.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Verdict = Literal["greater", "less", "unclear", "no interval"]
Basis = Literal["bootstrap", "seed range", "none"]

# Fewest seeds for which the interval is a bootstrap; below it, the per-seed range (see above).
MIN_BOOTSTRAP_SEEDS = 5


def interval_basis(n_seeds: int, min_bootstrap_seeds: int = MIN_BOOTSTRAP_SEEDS) -> Basis:
    """What an estimate over `n_seeds` seeds reports as its interval: "bootstrap" (a percentile
    bootstrap over seeds), "seed range" (the smallest to the largest single-seed value, with
    2 … min_bootstrap_seeds − 1 seeds) or "none" (one seed)."""
    if n_seeds >= max(2, min_bootstrap_seeds):
        return "bootstrap"
    return "seed range" if n_seeds >= 2 else "none"


def interval_name(n_seeds: int, confidence: float = 0.95,
                  min_bootstrap_seeds: int = MIN_BOOTSTRAP_SEEDS) -> str:
    """A column heading for the interval of estimates over `n_seeds` seeds: '95% interval',
    'per-seed range' or 'interval'."""
    basis = interval_basis(n_seeds, min_bootstrap_seeds)
    if basis == "bootstrap":
        return f"{confidence:.0%} interval"
    return "per-seed range" if basis == "seed range" else "interval"


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio a/b over the seeds, the same ratio per seed, and its interval.

    ratio: with `basis` "bootstrap" or "none", the statistic of every seed's data pooled; with
        "seed range", the median of `per_seed` (inside the range it is shown with); where a
        seed's own ratio is undefined (then there is no range), the pooled statistic.
    low, high: with `basis` "bootstrap", the `confidence` percentile interval over seeds; with
        "seed range", the smallest and largest of `per_seed`; NaN with one seed.
    verdict: "greater" if the interval lies above 1 (a's value is larger), "less" if below,
        "unclear" if it contains 1, "no interval" with a single seed or a NaN ratio. With a
        seed range, "greater" and "less" thus mean that every seed agrees.
    """

    ratio: float
    low: float
    high: float
    per_seed: tuple[float, ...]
    confidence: float
    basis: Basis = "bootstrap"

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    @property
    def verdict(self) -> Verdict:
        if self.n_seeds < 2 or not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "no interval"
        if self.low > 1:
            return "greater"
        if self.high < 1:
            return "less"
        return "unclear"

    @property
    def n_defined(self) -> int:
        """How many seeds have a finite ratio of their own."""
        return int(np.isfinite(np.asarray(self.per_seed, dtype=np.float64)).sum())

    @property
    def all_seeds_agree(self) -> bool:
        """Every seed's ratio is finite and on the same side of 1."""
        v = np.asarray(self.per_seed, dtype=np.float64)
        return bool(v.size and np.isfinite(v).all() and ((v > 1).all() or (v < 1).all()))

    def interval_text(self) -> str:
        """'[0.81, 3.2]' (a bootstrap interval), '0.81 to 3.2 (per-seed range, 3 seeds)', or
        'no interval (1 seed)'."""
        if self.n_seeds < 2:
            return f"no interval ({self.n_seeds} seed)"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "no interval"
        if self.basis == "seed range":
            return f"{self.low:.3g} to {self.high:.3g} (per-seed range, {self.n_seeds} seeds)"
        return f"[{self.low:.3g}, {self.high:.3g}]"


def bootstrap_ratio(n_seeds: int, statistic: Callable[[np.ndarray], float], *,
                    confidence: float = 0.95, n_resamples: int = 2000,
                    random_state: int = 0,
                    min_bootstrap_seeds: int = MIN_BOOTSTRAP_SEEDS) -> RatioEstimate:
    """Bootstrap over seeds of a ratio statistic (with fewer than `min_bootstrap_seeds` seeds,
    the per-seed range and the median single-seed ratio instead: see the module's docstring).

    `statistic(seeds)` gets an int array of seed positions (0 … n_seeds − 1, with repeats when
    resampled) and returns the ratio computed from those seeds' data pooled together; it is
    called once with every seed for the estimate, once per single seed for `per_seed`, and
    `n_resamples` times on resampled seeds for the interval (scipy.stats.bootstrap, percentile
    method: with 2–5 seeds BCa's jackknife is degenerate). Resampling is seeded
    (`random_state`), so a report is reproducible.
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    everything = np.arange(n_seeds)
    ratio = float(statistic(everything))
    per_seed = tuple(float(statistic(np.array([i]))) for i in range(n_seeds))
    low = high = math.nan
    basis = interval_basis(n_seeds, min_bootstrap_seeds)
    if basis == "seed range":
        finite = [v for v in per_seed if math.isfinite(v)]
        if math.isfinite(ratio) and len(finite) == n_seeds:
            low, high = min(finite), max(finite)
            ratio = float(np.median(finite))
        # With a seed's own ratio undefined there is no range, and the ratio stays that of the
        # seeds' values pooled (the median of the others could be a single seed's).
    elif basis == "bootstrap" and math.isfinite(ratio):
        with warnings.catch_warnings():
            # All resamples equal (identical seeds) is a legitimate zero-width interval.
            warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
            res = stats.bootstrap((everything,), lambda idx: statistic(np.asarray(idx)),
                                  vectorized=False, paired=False, n_resamples=n_resamples,
                                  confidence_level=confidence, method="percentile",
                                  random_state=np.random.default_rng(random_state))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return RatioEstimate(ratio, low, high, per_seed, confidence, basis)


def pooled_median_ratio(values_a: Sequence[np.ndarray], values_b: Sequence[np.ndarray]
                        ) -> Callable[[np.ndarray], float]:
    """The statistic "median of a's finite values / median of b's", over the chosen seeds.

    values_a[i], values_b[i]: the values (any shape) of seed i of each model.
    """
    if len(values_a) != len(values_b):
        raise ValueError(f"both models need the same seeds, got {len(values_a)} and "
                         f"{len(values_b)}")
    fa = [_finite(v) for v in values_a]
    fb = [_finite(v) for v in values_b]

    def statistic(seeds: np.ndarray) -> float:
        a = np.concatenate([fa[i] for i in seeds])
        b = np.concatenate([fb[i] for i in seeds])
        if not a.size or not b.size:
            return math.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.divide(np.median(a), np.median(b)))

    return statistic


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]
