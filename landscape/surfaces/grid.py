"""The grid of a surface: P coordinates α per axis, in one or two dimensions."""

from __future__ import annotations

import numpy as np
import torch

from landscape.errors import ConfigError


# The most points per axis: a 2D grid of 2001² points keeps 4 M values of loss, accuracy and
# done (68 MB in memory and in the record), and takes hours even batched on a GPU.
MAX_POINTS = 2001


def check_grid(dims: int, points: int, low: float, high: float) -> None:
    if dims not in (1, 2):
        raise ConfigError(f"--dims must be 1 or 2, got {dims}")
    if points < 2:
        raise ConfigError(f"--points must be at least 2, got {points}")
    if points > MAX_POINTS:
        raise ConfigError(f"--points {points:,} is more than {MAX_POINTS:,}, the most points per "
                          f"axis of a surface (docs/errors.md, Limits)")
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ConfigError(f"--range must be two finite numbers LOW,HIGH with LOW < HIGH, "
                          f"got {low:g},{high:g}")


def coordinates(points: int, low: float, high: float) -> np.ndarray:
    """P evenly spaced α from `low` to `high`; exactly 0 where the grid passes through the
    centre (linspace may give 1e-17 there), so the centre is a grid point."""
    alpha = np.linspace(low, high, points)
    alpha[np.isclose(alpha, 0.0, rtol=0.0, atol=1e-12 * (high - low))] = 0.0
    return alpha


def grid_coefficients(alpha: np.ndarray, index: tuple[np.ndarray, ...]) -> torch.Tensor:
    """[K, dims] coefficients of the grid points at `index` (index arrays, one per axis)."""
    return torch.from_numpy(np.stack([alpha[i] for i in index], axis=1))
