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
from dataclasses import dataclass, replace
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
    value (|β_m s_m|, the last components scaled by the next β).

    `converged_at`: the step at which the k largest Ritz values first met the tolerance (0:
    never). With `keep_basis`, `basis` holds the orthonormal Lanczos vectors ([steps, n], so
    that Vᵀ H V = T) and `vectors` T's eigenvectors (float64 [steps, steps], columns in the
    order of `ritz`): together the Ritz vectors (`ritz_vectors`)."""

    alpha: np.ndarray
    beta: np.ndarray
    ritz: np.ndarray
    first: np.ndarray
    residual: np.ndarray
    steps: int
    converged: bool
    converged_at: int = 0
    vectors: np.ndarray | None = None
    basis: torch.Tensor | None = None

    def ritz_vectors(self, count: int) -> torch.Tensor:
        """The unit Ritz vectors of the `count` largest Ritz values, largest first: [count, n]
        (needs `keep_basis`)."""
        if self.basis is None or self.vectors is None:
            raise ValueError("Ritz vectors need the Lanczos basis: run lanczos(keep_basis=True)")
        top = self.vectors[:, ::-1][:, :count].T.copy()  # [count, steps]
        return torch.from_numpy(top).to(self.basis) @ self.basis


def lanczos(hvp: HVP, v0: torch.Tensor, max_steps: int, *, k: int = 1, tol: float = 0.0,
            min_steps: int = 0, keep_basis: bool = False) -> LanczosResult:
    """Lanczos with full reorthogonalization (see the loop) from `v0`.

    Stops after `max_steps` steps, when the Krylov space is invariant (β ≈ 0: the Ritz values
    are then exact), or, with `tol` > 0, once the k largest Ritz values θ each have a residual
    bound |β_m s_m| ≤ tol·|θ| (which bounds the distance to an eigenvalue of the operator) and
    at least `min_steps` steps were taken (more steps: a larger basis for a deflated trace).
    The basis is kept (max_steps × n values), the price of full reorthogonalization, which
    keeps the Ritz values free of the spurious copies plain Lanczos produces in floating point;
    `keep_basis` returns it.
    """
    n = v0.numel()
    max_steps = min(max_steps, n)
    basis = torch.empty(max_steps, n, dtype=v0.dtype, device=v0.device)
    v = v0 / torch.linalg.vector_norm(v0)
    alphas: list[float] = []
    betas: list[float] = []
    beta_prev = 0.0
    converged_at = 0
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
                                 False, basis=basis[: j + 1] if keep_basis else None)
        invariant = beta <= 1e-10 * max(abs(a) for a in alphas)
        if tol > 0 or invariant or j + 1 == max_steps:
            result = _ritz(alphas, betas, beta)
            top = result.residual[-k:]
            if not converged_at and tol > 0 and j + 1 >= k and bool(np.all(
                    top <= tol * np.abs(result.ritz[-k:]))):
                converged_at = j + 1
            stop = (converged_at and j + 1 >= min_steps) or invariant or j + 1 == max_steps
            if stop:
                return replace(result, converged=bool(converged_at) or invariant,
                               converged_at=converged_at or (j + 1 if invariant else 0),
                               basis=basis[: j + 1] if keep_basis else None)
        betas.append(beta)
        beta_prev = beta
        v = w / beta
    raise AssertionError("unreachable")  # the loop returns at its last step


def _ritz(alphas: list[float], betas: list[float], beta_next: float) -> LanczosResult:
    alpha, beta = np.asarray(alphas), np.asarray(betas)
    t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    ritz, vectors = np.linalg.eigh(t)
    residual = np.abs(beta_next * vectors[-1, :])
    return LanczosResult(alpha, beta, ritz, vectors[0, :], residual, len(alphas), False,
                         vectors=vectors)


@dataclass(frozen=True)
class TopEigenvalues:
    values: np.ndarray  # float64 [k], descending: λ_1 ≥ λ_2 ≥ ... (largest algebraic)
    residual: np.ndarray  # float64 [k], their residual bounds
    steps: int  # Lanczos steps (= products) taken
    converged: bool
    warm_start: bool = False  # started from the previous step's Ritz vectors (`LanczosStarts`)
    lanczos: LanczosResult | None = None  # the run, with its basis (keep_basis, or warm starts)


# The weight of the step's random vector in a warm start (see LanczosStarts.choose).
WARM_NOISE = 0.1


class LanczosStarts:
    """Where Lanczos starts at each probed step along training: from the previous probed
    step's top Ritz vectors (warm: the Hessian moves little between nearby steps, so they are
    already close to its top eigenvectors) or from the step's random vector.

    A warm start is the sum of the previous top-k unit Ritz vectors, plus WARM_NOISE times the
    step's unit random vector: without it a Krylov space grown from the old vectors alone could
    stay blind to a direction they lack (an eigenvalue that overtook the old top ones). It falls
    back to the random start where warm converged slower: after a warm run that needed more
    steps than the latest random-start run, the next probed step starts from its random vector
    (and measures anew what a random start needs); the first probed step has nothing to warm
    from. The stopping rule is the same residual bound either way, so a warm start changes how
    many products an answer takes, not its accuracy.

    `state_dict()` / `load_state_dict()` carry it through a checkpoint (CPU tensors and plain
    values), so that a resumed run starts each Lanczos run as the uninterrupted one did.
    """

    def __init__(self) -> None:
        self.vectors: torch.Tensor | None = None  # [k, n] the previous top Ritz vectors
        self.random_steps = 0  # steps the latest random-start run took to converge (0: none)
        self.warm_lost = False  # the latest run was warm and took more steps than that

    def choose(self, random_v0: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(start vector, whether it is warm) for a run whose random start is `random_v0`."""
        if self.vectors is None or self.warm_lost:
            return random_v0, False
        warm = self.vectors.to(random_v0).sum(dim=0)
        warm = warm / torch.linalg.vector_norm(warm)
        return warm + WARM_NOISE * random_v0 / torch.linalg.vector_norm(random_v0), True

    def update(self, result: LanczosResult, k: int, warm: bool) -> None:
        """Learn from the run that just ended (started warm or not)."""
        needed = result.converged_at or result.steps
        if warm:
            self.warm_lost = needed > self.random_steps > 0
        else:
            self.random_steps, self.warm_lost = needed, False
        finite = result.basis is not None and bool(np.all(np.isfinite(result.ritz)))
        self.vectors = result.ritz_vectors(min(k, result.steps)) if finite else None

    def state_dict(self) -> dict:
        return {"vectors": None if self.vectors is None else self.vectors.detach().cpu().clone(),
                "random_steps": self.random_steps, "warm_lost": self.warm_lost}

    def load_state_dict(self, state: dict) -> None:
        self.vectors = state["vectors"]
        self.random_steps = int(state["random_steps"])
        self.warm_lost = bool(state["warm_lost"])


def top_eigenvalues(hvp: HVP, n: int, k: int, *, max_steps: int, tol: float,
                    generator: torch.Generator, dtype: torch.dtype, device: torch.device,
                    starts: LanczosStarts | None = None, min_steps: int = 0,
                    keep_basis: bool = False) -> TopEigenvalues:
    """The k largest eigenvalues by Lanczos from a Rademacher start vector, or, with
    `starts`, from where `starts` says (then told how the run went). The random vector is
    drawn from `generator` either way, so that later draws from it do not depend on the start.
    `min_steps` and `keep_basis`: see `lanczos` (the basis is in the result's `lanczos`)."""
    v0 = rademacher(n, 1, generator, dtype=dtype, device=device)[0]
    v0, warm = starts.choose(v0) if starts is not None else (v0, False)
    result = lanczos(hvp, v0, max(max_steps, k), k=k, tol=tol, min_steps=min_steps,
                     keep_basis=keep_basis or starts is not None)
    if starts is not None:
        starts.update(result, k, warm)
    order = np.argsort(result.ritz)[::-1][:k]
    values = np.full(k, np.nan)
    residual = np.full(k, np.nan)
    values[: len(order)] = result.ritz[order]
    residual[: len(order)] = result.residual[order]
    return TopEigenvalues(values, residual, result.steps, result.converged, warm,
                          result if keep_basis else None)


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
