"""DessiLBI: the split linearized Bregman iteration for deep networks (Fu et al., ICML 2020).

Every chosen weight W (a conv or linear weight) is coupled to a sparse companion Γ of its
shape through the augmented loss

    L̄(W, Γ) = L(W) + ‖W − Γ‖² / (2μ),

and the iteration with step α (the learning rate) and damping κ is, per step k,

    W_{k+1} = W_k − κα (d_k + (W_k − Γ_k)/μ)        d_k: the gradient, after momentum
    z_{k+1} = z_k + (α/μ) (W_k − Γ_k)                (= z_k − α ∇_Γ L̄)
    Γ_{k+1} = κ · prox(z_{k+1})

with z_0 = Γ_0 = 0. prox is elementwise soft-thresholding, sign(z)·max(|z| − 1, 0), for a linear
weight, and group shrinkage per output filter, z_g·max(0, 1 − 1/‖z_g‖₂), for a conv weight (its
filter g = W[g, :, :, :]), so Γ selects whole filters. Γ starts empty (all zero) and its support
grows along the path: a group enters once its accumulated z crosses the threshold 1.

Parameters without a Γ (biases, BatchNorm) follow plain SGD with step κα on d_k, as in the
paper's Algorithm 1 (the same W update without the coupling term). Weight decay λ adds λW to the
gradient of every parameter, as torch.optim.SGD does; momentum keeps torch.optim.SGD's buffer
(b ← m·b + g, d = b) on the gradient only, not on the coupling term, as the authors' code does.

The Adam variant (`adam=True`) replaces d_k by Adam's step direction on the gradient (moments,
bias correction and ε exactly as torch.optim.Adam computes them):

    W_{k+1} = W_k − κα (adam_k(g) + (W_k − Γ_k)/μ),

z and Γ as above; parameters without a Γ follow torch.optim.Adam with learning rate κα. The
coupling term stays outside Adam's normalization on purpose: it is an exact, deterministic
gradient, and fed through Adam (whose steps have size ~α whatever the gradient's scale) it pulls
every coupled weight towards Γ = 0 at ~α per step wherever the data gradient is small — a plain
LeNet-5 collapsed to chance accuracy that way on MNIST (docs/dessilbi.md). Outside, it moves W
and z on the same scale as in the SGD variant.

Written from the paper and the authors' Apache-2.0 reference (DessiLBI2020/DessiLBI,
code/slbi_opt.py); there is no maintained library implementation of it to use instead.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import nn

# Γ applies to conv (4-d) and linear (2-d) weights only: the two shrinkages are defined for them.
SPARSE_NDIMS = (2, 4)


def soft_threshold(z: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """Elementwise shrinkage sign(z)·max(|z| − threshold, 0) (the prox of the ℓ1 norm)."""
    return z.sign() * (z.abs() - threshold).clamp_min(0)


def group_shrink(z: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """Shrinkage of each output filter z_g = z[g] as a group: z_g·max(0, 1 − threshold/‖z_g‖₂)
    (the prox of the sum of the filters' ℓ2 norms); a filter with ‖z_g‖ ≤ threshold becomes 0."""
    norms = z.flatten(1).norm(dim=1)
    factor = (1 - threshold / norms.clamp_min(torch.finfo(z.dtype).tiny)).clamp_min(0)
    return z * factor.view(-1, *([1] * (z.dim() - 1)))


def shrink(z: torch.Tensor) -> torch.Tensor:
    """The prox of Γ's penalty for a weight of z's shape: group for conv, elementwise else."""
    return group_shrink(z) if z.dim() == 4 else soft_threshold(z)


def group_norms(t: torch.Tensor) -> torch.Tensor:
    """The magnitude of each group of Γ's structure: ‖t[g]‖₂ per output filter of a conv
    weight, |t_ij| per element of a linear weight (flattened)."""
    return t.flatten(1).norm(dim=1) if t.dim() == 4 else t.abs().flatten()


class SLBI(torch.optim.Optimizer):
    """DessiLBI (see the module docstring); `adam=True` gives the Adam variant.

    `params` as for any torch optimizer; a param group with `"sparse": True` couples each of its
    parameters (conv or linear weights) to a Γ, and may carry `"names"` (one per parameter) for
    `gammas()`. Use `slbi_param_groups(model, layers)` to build the groups from a model.
    """

    def __init__(self, params: Iterable, lr: float, *, kappa: float = 1.0, mu: float = 100.0,
                 momentum: float = 0.0, weight_decay: float = 0.0, adam: bool = False,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not (math.isfinite(kappa) and kappa > 0):
            raise ValueError(f"kappa must be positive, got {kappa}")
        if not (math.isfinite(mu) and mu > 0):
            raise ValueError(f"mu must be positive, got {mu}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if adam and momentum:
            raise ValueError("the Adam variant has its own betas; momentum must be 0")
        defaults = dict(lr=lr, kappa=kappa, mu=mu, momentum=momentum,
                        weight_decay=weight_decay, adam=adam, betas=tuple(betas), eps=eps,
                        sparse=False, names=None)
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["sparse"]:
                for p in group["params"]:
                    if p.dim() not in SPARSE_NDIMS:
                        raise ValueError(f"a sparse Γ needs a conv or linear weight; got a "
                                         f"parameter of shape {tuple(p.shape)}")
                    state = self.state[p]
                    state["z"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["gamma"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, kappa, mu = group["lr"], group["kappa"], group["mu"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                coupling = p - state["gamma"] if group["sparse"] else None  # W_k − Γ_k
                if group["adam"]:
                    direction = self._adam_direction(state, grad, group)
                    if coupling is not None:
                        direction.add_(coupling, alpha=1 / mu)
                    p.sub_(direction, alpha=kappa * lr)
                else:
                    if group["momentum"]:
                        buf = state.get("momentum_buffer")
                        if buf is None:
                            buf = state["momentum_buffer"] = grad.clone()
                        else:
                            buf.mul_(group["momentum"]).add_(grad)
                        grad = buf
                    direction = grad if coupling is None else grad + coupling / mu
                    p.sub_(direction, alpha=kappa * lr)
                if coupling is not None:
                    state["z"].add_(coupling, alpha=lr / mu)
                    state["gamma"] = shrink(state["z"]).mul_(kappa)
        return loss

    @staticmethod
    def _adam_direction(state: dict, grad: torch.Tensor, group: dict) -> torch.Tensor:
        """Adam's step direction for gradient `grad`, in torch.optim.Adam's exact arithmetic
        (its single-tensor path), to be multiplied by the learning rate."""
        beta1, beta2 = group["betas"]
        if "exp_avg" not in state:
            state["adam_step"] = 0
            state["exp_avg"] = torch.zeros_like(grad)
            state["exp_avg_sq"] = torch.zeros_like(grad)
        state["adam_step"] += 1
        t = state["adam_step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** t
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** t)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(group["eps"])
        return exp_avg / denom / bias_correction1

    def gammas(self) -> dict[str, torch.Tensor]:
        """Γ of every coupled parameter, by name (the group's "names", else "param<i>")."""
        out = {}
        for group in self.param_groups:
            if not group["sparse"]:
                continue
            names = group["names"] or [f"param{i}" for i in range(len(group["params"]))]
            for name, p in zip(names, group["params"]):
                out[name] = self.state[p]["gamma"]
        return out

    def coupled(self) -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
        """(name, W, Γ, μ) of every coupled parameter, in the groups' order."""
        out = []
        for group in self.param_groups:
            if group["sparse"]:
                names = group["names"] or [f"param{i}" for i in range(len(group["params"]))]
                out.extend((n, p, self.state[p]["gamma"], group["mu"])
                           for n, p in zip(names, group["params"]))
        return out


def default_sparse_layers(model: nn.Module) -> list[str]:
    """Every conv and linear weight of `model` (the authors' choice: every 4-d and 2-d
    parameter), in parameter order."""
    return [n for n, p in model.named_parameters()
            if p.dim() in SPARSE_NDIMS and p.requires_grad]


def slbi_param_groups(model: nn.Module, sparse: Sequence[str]) -> list[dict]:
    """Two param groups: the parameters named in `sparse` (coupled to a Γ) and the rest."""
    chosen = set(sparse)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    coupled = [(n, p) for n, p in named if n in chosen]
    rest = [p for n, p in named if n not in chosen]
    groups = [{"params": [p for _, p in coupled], "sparse": True,
               "names": [n for n, _ in coupled]}]
    if rest:
        groups.append({"params": rest, "sparse": False})
    return groups
