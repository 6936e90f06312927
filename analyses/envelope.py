"""Envelopes of per-step curves across runs, and (separately) smoothing of one curve.

The raw envelope and smoothing are kept apart on purpose: smooth each run's curve first if
wanted (``smooth_curve``), then take the envelope of the smoothed curves (``loss_envelope``),
so it is always explicit which of the two a figure shows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from ._checks import as_curve, check_mode

Align = Literal["union", "intersection"]
SmoothMethod = Literal["moving_average", "subsample"]
NonFinite = Literal["gap", "omit"]


@dataclass(frozen=True, eq=False)
class Envelope:
    """Pointwise minimum and maximum of several curves.

    Attributes:
        step: int64 [S], sorted, the steps the envelope is reported at.
        low: float64 [S], min over runs with a finite value at that step (NaN if none has).
        high: float64 [S], max over the same runs (NaN if none has).
        n_runs: int64 [S], how many runs had a finite value at that step.
    """

    step: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_runs: np.ndarray


def loss_envelope(curves: Sequence[tuple[Any, Any]], *, align: Align = "union") -> Envelope:
    """Pointwise min/max across runs (e.g. one run per learning rate) of a per-step metric.

    Written for the training loss, but valid for any per-step metric (gradient change, β...).

    Definition, at each reported step s:
        low[s]    = min_r  v_r(s),   high[s] = max_r v_r(s),
        n_runs[s] = #{r : run r has step s and v_r(s) is finite},
    where r ranges over the runs that have step s with a finite value.

    Non-finite values (NaN, ±inf: a diverged run's last loss) do not enter low/high; they only
    lower ``n_runs``, which is how a divergence shows. A step no run has a finite value at gets
    low = high = NaN and n_runs = 0.

    Args:
        curves: R >= 1 pairs (step, values): step int [N_r] strictly increasing, values real
            [N_r], N_r >= 1; lengths may differ between runs.
        align: "union" reports every step any run has; "intersection" only steps every run has
            (present in its step array, whether or not its value there is finite).

    Returns:
        Envelope with arrays of length S (the number of reported steps).
    """
    check_mode(align, get_args(Align), "align")
    curves = list(curves)
    if not curves:
        raise ValueError("curves is empty: need at least one (step, values) pair")
    parsed = [as_curve(c, f"curves[{i}]") for i, c in enumerate(curves)]

    if align == "union":
        step = np.unique(np.concatenate([s for s, _ in parsed]))
    else:
        step = functools.reduce(np.intersect1d, (s for s, _ in parsed))

    # [R, S] table; NaN marks "this run has no finite value here".
    table = np.full((len(parsed), step.size), np.nan)
    for r, (s, v) in enumerate(parsed):
        keep = np.isin(s, step)
        table[r, np.searchsorted(step, s[keep])] = v[keep]
    finite = np.isfinite(table)
    table[~finite] = np.nan

    # fmin/fmax skip NaN and return NaN only for an all-NaN column, without a RuntimeWarning.
    return Envelope(
        step=step,
        low=np.fmin.reduce(table, axis=0),
        high=np.fmax.reduce(table, axis=0),
        n_runs=finite.sum(axis=0).astype(np.int64),
    )


def smooth_curve(
    step: Any,
    values: Any,
    *,
    method: SmoothMethod,
    window: int,
    nonfinite: NonFinite = "gap",
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth or thin one curve; returns (step int64 [M], values float64 [M]).

    method="moving_average" (TRAILING window, reported at the window's last step):
        out_step[j]   = step[j + window - 1]
        out_values[j] = mean(values[j : j + window]),   j = 0 … N - window   (M = N - window + 1)
        so each output uses only the ``window`` samples up to and including its step. For a
        linear ramp values = a·step + b with uniform spacing d, the output is the ramp delayed
        by (window - 1)·d / 2 steps: out = a·(out_step - (window - 1)·d/2) + b. If window > N
        the result is empty (M = 0).
    method="subsample":
        every window-th point starting with the first: step[::window], values[::window]
        (M = ceil(N / window)); values are copied unchanged, non-finite ones included.

    Non-finite samples in a moving-average window (NaN, ±inf) are never averaged in silently:
        nonfinite="gap"  (default): a window with any non-finite sample gives NaN, so the
            smoothed curve has a visible gap wherever the raw one had no usable value (widened
            by window - 1 points; a diverged run's smoothed curve ends in NaN).
        nonfinite="omit": average of the finite samples in the window; NaN if it has none.
    ``nonfinite`` has no effect on "subsample".

    Args:
        step: int [N], strictly increasing, N >= 1.
        values: real [N].
        method: "moving_average" or "subsample".
        window: int >= 1, window length (moving average) or stride (subsample).
        nonfinite: "gap" or "omit", see above.
    """
    check_mode(method, get_args(SmoothMethod), "method")
    check_mode(nonfinite, get_args(NonFinite), "nonfinite")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    s, v = as_curve((step, values), "curve")

    if method == "subsample":
        return s[::window].copy(), v[::window].copy()

    if window > v.size:
        return s[:0].copy(), v[:0].copy()
    finite = np.isfinite(v)
    kernel = np.ones(window)
    # Direct per-window sums (np.convolve) rather than a running cumsum, whose rounding grows
    # with the length of the curve.
    total = np.convolve(np.where(finite, v, 0.0), kernel, mode="valid")
    count = np.convolve(finite.astype(np.float64), kernel, mode="valid")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    if nonfinite == "gap":
        mean[count < window] = np.nan
    else:
        mean[count == 0] = np.nan
    return s[window - 1 :].copy(), mean
