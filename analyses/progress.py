"""Training progress: the initial plateau, and comparing two models at the same training loss.

A network on its initial plateau (CIFAR-10 loss still ≈ ln 10) has tiny gradients and a trivially
flat landscape. Comparing it step by step with a network that already trains says nothing about
normalization, so a comparison first asks where each run's plateau ends, and also compares the
two models at matched progress: probed steps are binned by the training loss of their run at that
step, and the models are compared within each bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import as_real, as_steps


@dataclass(frozen=True)
class Plateau:
    """A run's initial plateau of the training loss.

    start_loss: the loss at the start (median of the first `start_steps` steps, which smooths
        the mini-batch noise of the first step).
    end_step: the first step at which the smoothed loss is below start_loss · (1 − rel_tol);
        None if the run never left the plateau.
    steps: how many recorded steps lie on the plateau (before end_step; all if it never left).
    """

    start_loss: float
    end_step: int | None
    steps: int

    @property
    def whole_run(self) -> bool:
        return self.end_step is None


def smoothed_loss(loss: Any, *, window: int = 25) -> np.ndarray:
    """Trailing running mean of the training loss over `window` steps (fewer at the start),
    float64 [N]. Non-finite values propagate to the windows that contain them."""
    x = as_real(loss, "loss", ndim=1)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def detect_plateau(step: Any, loss: Any, *, rel_tol: float = 0.05, window: int = 10,
                   start_steps: int = 5) -> Plateau:
    """Where the run's initial plateau ends (see `Plateau`).

    The loss is on the plateau while its running mean over `window` steps stays within
    `rel_tol` (relative) of the starting loss (the median of the first `start_steps` losses:
    the start itself, so that a network that trains at once has no plateau). rel_tol = 0.05 is
    a drop from ln 10 = 2.303 to 2.19: above the mini-batch noise of a running mean over 10
    batches of 128 images at initialization, and far below what any trained network reaches.
    """
    s = as_steps(step, "step")
    x = as_real(loss, "loss", ndim=1)
    if s.shape != x.shape:
        raise ValueError(f"step and loss must have the same length, got {len(s)} and {len(x)}")
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol}")
    if not len(x):
        return Plateau(math.nan, None, 0)
    head = x[:start_steps]
    head = head[np.isfinite(head)]
    start = float(np.median(head)) if head.size else math.nan
    below = np.flatnonzero(smoothed_loss(x, window=window) < start * (1 - rel_tol))
    if not below.size:
        return Plateau(start, None, len(x))
    return Plateau(start, int(s[below[0]]), int(below[0]))


def loss_at(step: Any, train_step: Any, train_loss: Any, *, window: int = 25) -> np.ndarray:
    """The smoothed training loss (`smoothed_loss`) of the run at each of `step` (float64 [P];
    NaN for a step that was not recorded)."""
    s = as_steps(train_step, "train_step")
    smooth = smoothed_loss(train_loss, window=window)
    q = np.asarray(step, dtype=np.int64)
    pos = np.searchsorted(s, q)
    found = (pos < len(s)) & (s[np.minimum(pos, len(s) - 1)] == q) if len(s) else \
        np.zeros(q.shape, dtype=bool)
    out = np.full(q.shape, np.nan)
    out[found] = smooth[pos[found]]
    return out


def common_loss_bins(levels_a: Any, levels_b: Any, *, n_bins: int = 6) -> np.ndarray:
    """Edges (float64 [n_bins + 1], increasing) of equal-width bins in log(loss) over the loss
    range BOTH models visited: [max of the two minima, min of the two maxima]. Empty (shape [0])
    if the ranges do not overlap (no matched progress is possible)."""
    a = as_real(levels_a, "levels_a").ravel()
    b = as_real(levels_b, "levels_b").ravel()
    a, b = a[np.isfinite(a) & (a > 0)], b[np.isfinite(b) & (b > 0)]
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not a.size or not b.size:
        return np.empty(0)
    low, high = max(a.min(), b.min()), min(a.max(), b.max())
    if not low < high:
        return np.empty(0)
    # Log spacing: losses fall roughly geometrically, so equal-width bins in log(loss) hold
    # comparable numbers of probed steps.
    return np.geomspace(low, high, n_bins + 1)


def bin_index(levels: Any, edges: np.ndarray) -> np.ndarray:
    """The bin (0 … len(edges) − 2) of each loss level, −1 outside the edges or non-finite."""
    x = as_real(levels, "levels")
    if len(edges) < 2:
        return np.full(x.shape, -1)
    idx = np.searchsorted(edges, x, side="right") - 1
    idx[x == edges[-1]] = len(edges) - 2  # the top edge belongs to the last bin
    idx[~np.isfinite(x) | (idx < 0) | (idx > len(edges) - 2)] = -1
    return idx


def matched_ratio(values_a: Any, levels_a: Any, values_b: Any, levels_b: Any, *,
                  edges: np.ndarray, min_points: int = 2) -> float:
    """Model a vs model b at matched training loss.

    Within every bin of `edges` where both models have at least `min_points` finite values, the
    ratio of their medians; the result is the geometric mean of those per-bin ratios (each loss
    level counts once, however many steps a model spent there). NaN if no bin qualifies.
    """
    va, vb = as_real(values_a, "values_a").ravel(), as_real(values_b, "values_b").ravel()
    ba, bb = bin_index(levels_a, edges).ravel(), bin_index(levels_b, edges).ravel()
    if va.shape != ba.shape or vb.shape != bb.shape:
        raise ValueError("values and levels must have the same shape for each model")
    logs = []
    for k in range(len(edges) - 1):
        xa = va[(ba == k) & np.isfinite(va)]
        xb = vb[(bb == k) & np.isfinite(vb)]
        if len(xa) < min_points or len(xb) < min_points:
            continue
        ma, mb = np.median(xa), np.median(xb)
        if ma > 0 and mb > 0:
            logs.append(math.log(ma / mb))
    return math.exp(float(np.mean(logs))) if logs else math.nan
