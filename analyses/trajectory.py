"""The course ("trajectory") simplifications of the paper's quantities.

These compare the gradients of two CONSECUTIVE TRAINING STEPS, g_t = ∇L(w_t; B_t) and
g_{t+1} = ∇L(w_{t+1}; B_{t+1}), which were taken on different batches and across an optimizer
step. They are cheap and popular but they are NOT the paper's gradient predictiveness or
effective β (those keep the batch fixed and move along −g_t; see ``analyses.paper``). Hence the
names: ``gradient_change`` (not "predictiveness") and ``trajectory_beta`` (not "effective β").

Steps may be thinned: a value at step t exists only where both t and t + 1 were recorded.
Norms are computed in float64 whatever the input dtype (taps may be stored as float16).
A non-finite input makes the corresponding value non-finite (inf, or NaN for inf − inf).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import (
    as_real,
    as_real_keep_dtype,
    as_steps,
    check_nonnegative,
    consecutive_pairs,
)

# Upper bound on float64 elements converted at once, so a long float16 tap record is not
# blown up to float64 all at the same time (2**22 elements = 32 MiB).
_CHUNK_ELEMENTS = 2**22


def _row_norms(arr: np.ndarray, rows: np.ndarray, *, offset: int) -> np.ndarray:
    """float64 [len(rows)]: ‖arr[i + offset] − arr[i]‖₂ if offset else ‖arr[i]‖₂, i in rows."""
    per_row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)))
    chunk = max(1, _CHUNK_ELEMENTS // per_row)
    out = np.empty(rows.size, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, rows.size, chunk):
            idx = rows[start : start + chunk]
            x = arr[idx].astype(np.float64).reshape(idx.size, -1)
            if offset:
                x = arr[idx + offset].astype(np.float64).reshape(idx.size, -1) - x
            out[start : start + chunk] = np.sqrt(np.einsum("ij,ij->i", x, x))
    return out


def _check_taps(tap_step: Any, grads: Any) -> tuple[np.ndarray, np.ndarray]:
    step = as_steps(tap_step, "tap_step")
    g = as_real_keep_dtype(grads, "grads")
    if g.shape[0] != step.size:
        raise ValueError(
            f"grads must have one entry per tap step: {step.size} steps but leading axis "
            f"{g.shape[0]}"
        )
    return step, g


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # A zero or non-finite displacement gives no meaningful ratio: NaN ("no value"), not inf/0.
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~(np.isfinite(den) & (den > 0))] = np.nan
    return out


def gradient_change(tap_step: Any, grads: Any) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive-step gradient change of one tapped parameter (course version, not the paper's).

    value at step t = ‖g_{t+1} − g_t‖₂  (float64), for every t with t and t + 1 both tapped.

    Args:
        tap_step: int [T'], strictly increasing (taps may be thinned into pairs kN, kN + 1).
        grads: real [T', *shape], g_t of the parameter at each tap step (any float dtype).
    Returns:
        (step int64 [M], values float64 [M]), reported at the FIRST step t of each pair.
    """
    step, g = _check_taps(tap_step, grads)
    i = consecutive_pairs(step)
    return step[i], _row_norms(g, i, offset=1)


def trajectory_beta(
    tap_step: Any, grads: Any, weight_deltas: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Course "β" from the training trajectory of one tapped parameter (not the paper's β).

    value at step t = ‖g_{t+1} − g_t‖₂ / ‖w_{t+1} − w_t‖₂,  with weight_deltas[t] = w_{t+1} − w_t,
    for every t with t and t + 1 both tapped. NaN where ‖w_{t+1} − w_t‖ is 0 or non-finite
    (no displacement to divide by).

    Args:
        tap_step: int [T'], strictly increasing.
        grads: real [T', *shape], g_t of the parameter.
        weight_deltas: real [T', *shape], w_{t+1} − w_t of the parameter.
    Returns:
        (step int64 [M], values float64 [M]), reported at step t.
    """
    step, g = _check_taps(tap_step, grads)
    dw = as_real_keep_dtype(weight_deltas, "weight_deltas")
    if dw.shape != g.shape:
        raise ValueError(
            f"weight_deltas must have the same shape as grads, got {dw.shape} and {g.shape}"
        )
    i = consecutive_pairs(step)
    return step[i], _safe_ratio(_row_norms(g, i, offset=1), _row_norms(dw, i, offset=0))


def trajectory_beta_from_norms(
    step: Any, grad_change: Any, update_norm: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Course "β" over all parameters, from the recorded per-step norms (not the paper's β).

    value at step t = grad_change[t + 1] / update_norm[t] = ‖g_{t+1} − g_t‖₂ / ‖w_{t+1} − w_t‖₂,
    for every t with t and t + 1 both recorded (grad_change[t] is ‖g_t − g_{t−1}‖, NaN at a
    run's first step). NaN where update_norm[t] is 0 or non-finite.

    Args:
        step: int [T], strictly increasing.
        grad_change: norms, real >= 0 (NaN allowed) [T].
        update_norm: norms, real >= 0 (NaN allowed) [T].
    Returns:
        (step int64 [M], values float64 [M]), reported at step t.
    """
    s = as_steps(step, "step")
    gc = as_real(grad_change, "grad_change", ndim=1)
    un = as_real(update_norm, "update_norm", ndim=1)
    if not (gc.size == un.size == s.size):
        raise ValueError(
            f"step, grad_change and update_norm must have the same length, got {s.size}, "
            f"{gc.size}, {un.size}"
        )
    check_nonnegative(gc, "grad_change")
    check_nonnegative(un, "update_norm")
    i = consecutive_pairs(s)
    return s[i], _safe_ratio(gc[i + 1], un[i])
