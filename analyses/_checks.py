"""Input validation shared by the analysis modules (private).

Every check raises ValueError with a message that names the offending argument, so a caller
that passes the wrong array learns which one and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Real numeric kinds: bool, signed/unsigned int, float. Complex and object arrays are rejected
# because a norm or a min/max of them is not what any measurement here means.
_REAL_KINDS = "biuf"


def check_mode(value: Any, valid: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``valid``; otherwise raise naming the valid choices."""
    if not isinstance(value, str) or value not in valid:
        choices = ", ".join(repr(v) for v in valid)
        raise ValueError(f"unknown {name} {value!r}; valid values are {choices}")
    return value


def as_steps(step: Any, name: str) -> np.ndarray:
    """int64 [N] copy of ``step``: 1-D integers, strictly increasing (sorted, no repeats)."""
    arr = np.asarray(step)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of steps, got shape {arr.shape}")
    # An empty list becomes float64 in numpy; only a non-empty array can be told apart by dtype.
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer steps, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(np.diff(arr) <= 0)
    if bad.size:
        i = int(bad[0])
        what = "duplicate" if arr[i] == arr[i + 1] else "unsorted"
        raise ValueError(
            f"{name} must be strictly increasing (sorted, no duplicates); {what} steps at "
            f"positions {i}, {i + 1}: {int(arr[i])}, {int(arr[i + 1])}"
        )
    return arr


def as_real(values: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """float64 copy of ``values``; must be real-valued (and have ``ndim`` dimensions if given)."""
    arr = np.asarray(values)
    if arr.size and arr.dtype.kind not in _REAL_KINDS:
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr.astype(np.float64)


def as_real_keep_dtype(values: Any, name: str) -> np.ndarray:
    """``values`` as an array at least 1-D, real-valued, WITHOUT converting its dtype.

    Used for tap arrays that can be large: they are converted to float64 chunk by chunk.
    """
    arr = np.asarray(values)
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a leading step axis, got a scalar")
    if arr.size and arr.dtype.kind not in _REAL_KINDS:
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return arr


def check_nonnegative(arr: np.ndarray, name: str) -> None:
    """Raise if any non-NaN entry is negative (norms cannot be; NaN means "no value")."""
    bad = np.flatnonzero(np.ravel(arr) < 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} holds norms and must be >= 0 (NaN allowed), but entry {i} (flat index) is "
            f"{np.ravel(arr)[i]!r}"
        )


def as_curve(curve: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a ``(step, values)`` pair into int64 [N] steps and float64 [N] values, N >= 1."""
    try:
        step, values = curve
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (step, values) pair") from None
    s = as_steps(step, f"{name} step")
    v = as_real(values, f"{name} values", ndim=1)
    if s.shape != v.shape:
        raise ValueError(
            f"{name}: step and values must have the same length, got {s.size} steps and "
            f"{v.size} values"
        )
    if s.size == 0:
        raise ValueError(f"{name} has no points")
    return s, v


def consecutive_pairs(step: np.ndarray) -> np.ndarray:
    """int64 indices i with step[i + 1] == step[i] + 1 (both ends of the pair recorded)."""
    return np.flatnonzero(np.diff(step) == 1)
