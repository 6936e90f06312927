"""The paper's landscape quantities from the gradient probe (Santurkar et al. 2018, Sec. 3).

At a probed step t the batch B_t is fixed and the weights are moved along the gradient,
w_η = w_t − η·g_t, for step lengths η_1 … η_K. The recorder stores, per probed step:
    probe_loss[t, k] = L(w_η_k; B_t)
    grad_diff[t, k]  = ‖∇L(w_t; B_t) − ∇L(w_η_k; B_t)‖₂
    probe_grad_norm[t] = ‖g_t‖₂ (same parameter subset as grad_diff)
These are NOT the course's trajectory quantities (see ``analyses.trajectory``), which compare
gradients of consecutive training steps on different batches.

Non-finite values, everywhere in this module:
    NaN  = "no value" (the probe could not compute it): ignored by the min/max over η;
           a row with no value at all gives NaN.
    ±inf = real information (the loss or gradient blew up at a large η): it takes part in the
           min/max, so the band's high end or β becomes inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import as_real, as_steps, check_nonnegative


def _probe_matrix(x: Any, name: str) -> np.ndarray:
    """float64 [P, K] with K >= 1."""
    arr = as_real(x, name, ndim=2)
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one step length (K >= 1), got shape {arr.shape}"
        )
    return arr


def _band(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # fmin/fmax skip NaN but keep ±inf, which is exactly the NaN/inf policy of this module.
    return np.fmin.reduce(m, axis=1), np.fmax.reduce(m, axis=1)


def loss_band(probe_loss: Any) -> tuple[np.ndarray, np.ndarray]:
    """Loss-variation band per probed step (paper, "loss landscape").

    low[t] = min_k L(w_t − η_k g_t; B_t),  high[t] = max_k L(w_t − η_k g_t; B_t).

    Args:
        probe_loss: real [P, K].
    Returns:
        (low, high), float64 [P] each. NaN entries are skipped; +inf counts (high = inf).
    """
    return _band(_probe_matrix(probe_loss, "probe_loss"))


def predictiveness_band(grad_diff: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gradient-predictiveness band per probed step (paper, "gradient predictiveness").

    low[t] = min_k ‖∇L(w_t; B_t) − ∇L(w_t − η_k g_t; B_t)‖₂,  high[t] = max_k of the same.

    Args:
        grad_diff: norms, real >= 0 [P, K].
    Returns:
        (low, high), float64 [P] each. NaN entries are skipped; +inf counts (high = inf).
    """
    gd = _probe_matrix(grad_diff, "grad_diff")
    check_nonnegative(gd, "grad_diff")
    return _band(gd)


def effective_beta(eta: Any, grad_diff: Any, grad_norm: Any) -> np.ndarray:
    """Effective β-smoothness per probed step (paper, Sec. 3.1).

    β_t = max_k ‖∇L(w_t; B_t) − ∇L(w_η_k; B_t)‖₂ / ‖w_η_k − w_t‖₂
        = max_k grad_diff[t, k] / (eta[t, k] · grad_norm[t])      (since ‖w_η − w_t‖ = η‖g_t‖)

    NaN/inf: NaN ratios are skipped in the max (NaN if all are NaN); an inf grad_diff gives
    β = inf. If ‖g_t‖ = 0 the probe did not move (w_η = w_t for every η), so there is no
    finite-difference estimate and β_t = NaN; likewise β_t = NaN if ‖g_t‖ is NaN or inf.

    Args:
        eta: step lengths, finite and > 0, float [P, K], or [K] shared by all probed steps.
        grad_diff: norms, real >= 0 [P, K].
        grad_norm: ‖g_t‖₂, real >= 0 [P].
    Returns:
        β, float64 [P].
    """
    gd = _probe_matrix(grad_diff, "grad_diff")
    check_nonnegative(gd, "grad_diff")
    p, k = gd.shape
    e = as_real(eta, "eta")
    if e.shape == (k,):
        e = np.broadcast_to(e, gd.shape)
    elif e.shape != gd.shape:
        raise ValueError(
            f"eta must have shape {gd.shape} (like grad_diff) or ({k},), got {e.shape}"
        )
    if not np.all(np.isfinite(e) & (e > 0)):
        raise ValueError("eta must be finite and > 0 (step lengths along −g_t)")
    gn = as_real(grad_norm, "grad_norm", ndim=1)
    if gn.shape != (p,):
        raise ValueError(f"grad_norm must have shape ({p},) (one per probed step), got {gn.shape}")
    check_nonnegative(gn, "grad_norm")

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = gd / (e * gn[:, None])
    beta = np.fmax.reduce(ratio, axis=1)
    beta[~(np.isfinite(gn) & (gn > 0))] = np.nan
    return beta


def beta_over_distance(grad_diff: Any, distance: Any) -> np.ndarray:
    """Effective β per probed step from the distances actually moved:
    β_t = max_k grad_diff[t, k] / distance[t, k], distance[t, k] = ‖w_k − w_t‖₂.

    The general form of ``effective_beta``: along the gradient distance = η‖g_t‖; along the
    optimizer's update d_t it is c‖d_t‖. Same NaN/inf policy; a row whose distances are not all
    finite and > 0 (the probe did not move) gives NaN.

    Args:
        grad_diff: norms, real >= 0 [P, K]; distance: real >= 0 [P, K].
    Returns:
        β, float64 [P].
    """
    gd = _probe_matrix(grad_diff, "grad_diff")
    check_nonnegative(gd, "grad_diff")
    dist = as_real(distance, "distance")
    if dist.shape != gd.shape:
        raise ValueError(f"distance must have shape {gd.shape} (like grad_diff), got {dist.shape}")
    check_nonnegative(dist, "distance")
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.fmax.reduce(gd / dist, axis=1)
    beta[~np.all(np.isfinite(dist) & (dist > 0), axis=1)] = np.nan
    return beta


@dataclass(frozen=True, eq=False)
class ProbeBands:
    """The paper's per-probed-step quantities, all arrays of length P.

    Attributes:
        step: int64 [P], the probed training steps.
        loss_low, loss_high: float64 [P], ``loss_band``.
        grad_diff_low, grad_diff_high: float64 [P], ``predictiveness_band``.
        beta: float64 [P], ``effective_beta``.
    """

    step: np.ndarray
    loss_low: np.ndarray
    loss_high: np.ndarray
    grad_diff_low: np.ndarray
    grad_diff_high: np.ndarray
    beta: np.ndarray


def probe_summary(
    probe_step: Any, eta: Any, probe_loss: Any, grad_diff: Any, probe_grad_norm: Any,
    *, distance: Any = None,
) -> ProbeBands:
    """Bundle ``loss_band``, ``predictiveness_band`` and ``effective_beta`` for a probe record.

    Args:
        probe_step: int [P], strictly increasing.
        eta: float [P, K] (or [K]); probe_loss, grad_diff: real [P, K]; probe_grad_norm: real [P].
        distance: optional real [P, K], ‖w_k − w_t‖; when given, β is
            ``beta_over_distance(grad_diff, distance)`` (needed for a probe along the update).
    Returns:
        ProbeBands (same NaN/inf policy as the three functions).
    """
    step = as_steps(probe_step, "probe_step")
    pl = _probe_matrix(probe_loss, "probe_loss")
    gd = _probe_matrix(grad_diff, "grad_diff")
    if pl.shape != gd.shape:
        raise ValueError(
            "probe_loss and grad_diff must have the same shape [P, K], got "
            f"{pl.shape} and {gd.shape}"
        )
    if step.size != pl.shape[0]:
        raise ValueError(
            f"probe_step has {step.size} steps but probe_loss has {pl.shape[0]} rows"
        )
    loss_low, loss_high = loss_band(pl)
    gd_low, gd_high = predictiveness_band(gd)
    return ProbeBands(
        step=step,
        loss_low=loss_low,
        loss_high=loss_high,
        grad_diff_low=gd_low,
        grad_diff_high=gd_high,
        beta=(effective_beta(eta, gd, probe_grad_norm) if distance is None
              else beta_over_distance(gd, distance)),
    )
