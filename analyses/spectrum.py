"""Spectral densities from stochastic Lanczos quadrature (pure numpy).

A recorded density is a discrete measure Σ_j w_j δ(θ_j) (nodes θ, weights w summing to one)
that approximates the Hessian's spectral measure (1/n) Σ_i δ(λ_i); what is drawn is that
measure smoothed with a Gaussian of width σ, as Ghorbani et al. (2019) and PyHessian draw it.
"""

from __future__ import annotations

import numpy as np


def broadened_density(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray,
                      sigma: float) -> np.ndarray:
    """Σ_j w_j N(grid; θ_j, σ²) on `grid` (float64, integrates to Σ w = 1 over a grid that
    covers the nodes). Nodes that are NaN (unused quadrature slots) are left out."""
    nodes = np.asarray(nodes, dtype=np.float64).reshape(-1)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if nodes.shape != weights.shape:
        raise ValueError(f"nodes and weights differ in length: {nodes.shape} vs {weights.shape}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    keep = np.isfinite(nodes) & (weights > 0)
    nodes, weights = nodes[keep], weights[keep]
    grid = np.asarray(grid, dtype=np.float64)
    z = (grid[:, None] - nodes[None, :]) / sigma
    return (np.exp(-0.5 * z ** 2) / (sigma * np.sqrt(2 * np.pi))) @ weights


def density_moment(nodes: np.ndarray, weights: np.ndarray, p: int) -> float:
    """∫ λ^p dμ of the discrete measure (p = 1: the mean eigenvalue, ≈ trace / n)."""
    nodes = np.asarray(nodes, dtype=np.float64).reshape(-1)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    keep = np.isfinite(nodes) & (weights > 0)
    return float(np.sum(weights[keep] * nodes[keep] ** p))
