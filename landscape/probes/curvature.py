"""Hessian spectra from Hessian-vector products: top eigenvalues (Lanczos), the trace
(Hutchinson) and the spectral density (stochastic Lanczos quadrature).

Everything here works on an operator `hvp(v) -> Hv` of flat vectors (one 1-D tensor of all
parameters), so that it can be tested on matrices with known spectra and used on networks
(`HessianOperator`). Written here rather than taken from PyHessian: PyHessian is a script-level
tool (a model, a criterion and a data loader in, floats out), finds the top eigenvalues by power
iteration with deflation (many more products than Lanczos for the same accuracy), keeps no
count of products and cannot replay a training step's random state.

Random vectors come from a `torch.Generator` on the CPU (then moved to the device), so that the
global random state the training loop draws from is untouched and results do not depend on the
device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

HVP = Callable[[torch.Tensor], torch.Tensor]  # flat v -> flat Hv


class HessianOperator:
    """v -> ∇²L(w) v of the scalar `loss` (whose graph reaches `params`) by double backward.

    The gradient's graph is built once (`create_graph`) and differentiated again per product,
    so one product costs one backward pass through that graph; `count` counts them. (Batching
    products with torch's `is_grads_batched` was tried: on the CPU it is 7x slower through
    BatchNorm's double backward, so products are taken one at a time.)
    """

    def __init__(self, loss: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        # materialize: a parameter the loss does not use has zero gradient and zero curvature.
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True,
                                         materialize_grads=True)
        # A gradient without a graph (the loss is linear in everything it depends on through
        # it) has zero derivative: it is left out of the second backward pass.
        self.curved = [i for i, g in enumerate(self.grads) if g.requires_grad]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.n = sum(self.sizes)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.count = 0

    def flat_gradient(self) -> torch.Tensor:
        return torch.cat([g.detach().reshape(-1) for g in self.grads])

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        pieces = [piece.view(shape) for piece, shape in zip(v.split(self.sizes), self.shapes)]
        self.count += 1
        if not self.curved:
            return torch.zeros_like(v)
        hv = torch.autograd.grad([self.grads[i] for i in self.curved], self.params,
                                 grad_outputs=[pieces[i] for i in self.curved],
                                 retain_graph=True, materialize_grads=True)
        return torch.cat([h.reshape(-1) for h in hv])


def rademacher(n: int, count: int, generator: torch.Generator, *, dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    """[count, n] independent ±1 entries."""
    signs = torch.randint(0, 2, (count, n), generator=generator, dtype=torch.int8)
    return (signs.to(dtype) * 2 - 1).to(device)


@dataclass(frozen=True)
class LanczosResult:
    """Lanczos on a symmetric operator from a start vector: the tridiagonal matrix T
    (`alpha` diagonal, `beta` off-diagonal, float64) of the `steps` steps taken, its
    eigenvalues (`ritz`, ascending) and the first components of their unit eigenvectors
    (`first`: the quadrature weights are their squares), and the residual bound of each Ritz
    value (|β_m s_m|, the last components scaled by the next β)."""

    alpha: np.ndarray
    beta: np.ndarray
    ritz: np.ndarray
    first: np.ndarray
    residual: np.ndarray
    steps: int
    converged: bool


def lanczos(hvp: HVP, v0: torch.Tensor, max_steps: int, *, k: int = 1, tol: float = 0.0
            ) -> LanczosResult:
    """Lanczos with full reorthogonalization (see the loop) from `v0`.

    Stops after `max_steps` steps, when the Krylov space is invariant (β ≈ 0: the Ritz values
    are then exact), or, with `tol` > 0, once the k largest Ritz values θ each have a residual
    bound |β_m s_m| ≤ tol·|θ| (which bounds the distance to an eigenvalue of the operator). The
    basis is kept (max_steps × n values), the price of full reorthogonalization, which
    keeps the Ritz values free of the spurious copies plain Lanczos produces in floating point.
    """
    n = v0.numel()
    max_steps = min(max_steps, n)
    basis = torch.empty(max_steps, n, dtype=v0.dtype, device=v0.device)
    v = v0 / torch.linalg.vector_norm(v0)
    alphas: list[float] = []
    betas: list[float] = []
    beta_prev = 0.0
    result = None
    for j in range(max_steps):
        basis[j] = v
        w = hvp(v)
        alpha = float(torch.dot(w, v))
        w = w - alpha * v
        if j > 0:
            w = w - beta_prev * basis[j - 1]
        done = basis[: j + 1]
        # Full reorthogonalization against the whole basis as one pair of matrix products
        # (classical Gram-Schmidt), repeated only where that pass removed much of w
        # (‖w'‖ < ‖w‖/√2, where cancellation can leave components along the basis: Daniel,
        # Gragg, Kaufman & Stewart 1976; "twice is enough"). After the three-term recurrence
        # above, w has only rounding-level components left along the basis, so one pass
        # usually suffices: the basis is read twice per step instead of four times.
        before = float(torch.linalg.vector_norm(w))
        w = w - done.T @ (done @ w)
        beta = float(torch.linalg.vector_norm(w))
        if beta < before / math.sqrt(2):
            w = w - done.T @ (done @ w)
            beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        if not (math.isfinite(alpha) and math.isfinite(beta)):
            # A non-finite Hessian (a diverging run): nothing to report, nothing to raise.
            nan = np.full(j + 1, np.nan)
            return LanczosResult(np.asarray(alphas), np.asarray(betas), nan, nan, nan, j + 1,
                                 False)
        invariant = beta <= 1e-10 * max(abs(a) for a in alphas)
        check = tol > 0 or invariant or j + 1 == max_steps
        if check:
            result = _ritz(alphas, betas, beta)
            top = result.residual[-k:]
            converged = invariant or (tol > 0 and j + 1 >= k and bool(np.all(
                top <= tol * np.abs(result.ritz[-k:]))))
            if converged or j + 1 == max_steps:
                return LanczosResult(result.alpha, result.beta, result.ritz, result.first,
                                     result.residual, j + 1, converged)
        betas.append(beta)
        beta_prev = beta
        v = w / beta
    raise AssertionError("unreachable")  # the loop returns at its last step


def _ritz(alphas: list[float], betas: list[float], beta_next: float) -> LanczosResult:
    alpha, beta = np.asarray(alphas), np.asarray(betas)
    t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    ritz, vectors = np.linalg.eigh(t)
    residual = np.abs(beta_next * vectors[-1, :])
    return LanczosResult(alpha, beta, ritz, vectors[0, :], residual, len(alphas), False)


@dataclass(frozen=True)
class TopEigenvalues:
    values: np.ndarray  # float64 [k], descending: λ_1 ≥ λ_2 ≥ ... (largest algebraic)
    residual: np.ndarray  # float64 [k], their residual bounds
    steps: int  # Lanczos steps (= products) taken
    converged: bool


def top_eigenvalues(hvp: HVP, n: int, k: int, *, max_steps: int, tol: float,
                    generator: torch.Generator, dtype: torch.dtype, device: torch.device
                    ) -> TopEigenvalues:
    """The k largest eigenvalues by Lanczos from a Rademacher start vector."""
    v0 = rademacher(n, 1, generator, dtype=dtype, device=device)[0]
    result = lanczos(hvp, v0, max(max_steps, k), k=k, tol=tol)
    order = np.argsort(result.ritz)[::-1][:k]
    values = np.full(k, np.nan)
    residual = np.full(k, np.nan)
    values[: len(order)] = result.ritz[order]
    residual[: len(order)] = result.residual[order]
    return TopEigenvalues(values, residual, result.steps, result.converged)


@dataclass(frozen=True)
class TraceEstimate:
    trace: float
    standard_error: float  # of the mean over samples (NaN with one sample)
    samples: np.ndarray  # float64 [m], zᵀHz per Rademacher vector z


def hutchinson(hvp: HVP, n: int, samples: int, *, generator: torch.Generator,
               dtype: torch.dtype, device: torch.device) -> TraceEstimate:
    """tr H ≈ mean of zᵀHz over Rademacher vectors z (unbiased; variance 2 Σ_{i≠j} H_ij²),
    with the standard error of that mean."""
    z = rademacher(n, samples, generator, dtype=dtype, device=device)
    quads = torch.stack([torch.dot(v, hvp(v)) for v in z]).double().cpu().numpy()
    se = float(quads.std(ddof=1) / math.sqrt(len(quads))) if len(quads) > 1 else math.nan
    return TraceEstimate(float(quads.mean()), se, quads)


@dataclass(frozen=True)
class SpectralDensity:
    """Stochastic Lanczos quadrature: the spectral measure μ = (1/n) Σ_i δ(λ_i) approximated by
    Σ_j weights_j δ(nodes_j) (weights sum to 1). Steps cut short (an invariant Krylov space)
    leave NaN nodes with weight 0, so that every density has the same length."""

    nodes: np.ndarray  # float64 [vectors × steps]
    weights: np.ndarray  # float64 [vectors × steps]


def slq_density(hvp: HVP, n: int, *, steps: int, vectors: int, generator: torch.Generator,
                dtype: torch.dtype, device: torch.device) -> SpectralDensity:
    """Per Rademacher start vector v, `steps` Lanczos steps: the Ritz values θ_j are the nodes
    and τ_j² (first components of T's eigenvectors) the weights of a Gauss quadrature of
    vᵀf(H)v/‖v‖², exact for polynomials f of degree < 2·steps; averaged over the vectors."""
    nodes = np.full((vectors, steps), np.nan)
    weights = np.zeros((vectors, steps))
    for i in range(vectors):
        v0 = rademacher(n, 1, generator, dtype=dtype, device=device)[0]
        result = lanczos(hvp, v0, steps)
        m = len(result.ritz)
        nodes[i, :m] = result.ritz
        weights[i, :m] = result.first ** 2 / vectors
    return SpectralDensity(nodes.reshape(-1), weights.reshape(-1))
