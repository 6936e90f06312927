"""Measurements of the landscape taken during training, which leave training untouched.

`GradientProbe` is the paper's measurement (Santurkar et al., Section 3.1, Figure 4): at a probed
step t, with the step's own batch B_t, it evaluates the loss and the gradient at
w_η = w_t − η g_t for a grid of step lengths η. Afterwards the weights, gradients, BatchNorm
running statistics and random state are restored bit for bit, so a probed run trains exactly as
an unprobed one would.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from landscape.config import ProbeConfig
from landscape.errors import ConfigError
from landscape.tensors import RngState, global_norm
from landscape.train import StepContext


def eta_grid(config: ProbeConfig, lr: float) -> np.ndarray:
    """The step lengths η (float64 [K]) probed in a run with learning rate `lr`."""
    scale = lr if config.scale == "relative" else 1.0
    low, high = config.low * scale, config.high * scale
    if config.spacing == "log":
        return np.geomspace(low, high, config.count)
    return np.linspace(low, high, config.count)


def select_parameters(names: Sequence[str], prefixes: Sequence[str]) -> list[bool]:
    """Mask of the parameters whose names start with one of `prefixes` (all if none given)."""
    if not prefixes:
        return [True] * len(names)
    mask = [any(n.startswith(p) for p in prefixes) for n in names]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            raise ConfigError(
                f"--probe-params {prefix!r} matches no parameter; parameters start with e.g. "
                f"{', '.join(sorted({n.rsplit('.', 1)[0] for n in names})[:6])}"
            )
    return mask


class GradientProbe:
    """Loss and gradient along the gradient direction, at every `config.every`-th step.

    Per probed step it returns (device tensors): `eta` [K], `loss` [K] = L(w_η; B_t),
    `grad_diff` [K] = ‖∇L(w_t; B_t) − ∇L(w_η; B_t)‖, `grad_norm` = ‖g_t‖ and
    `beta` = max_k grad_diff_k / (η_k ‖g_t‖) (as ‖w_η − w_t‖ = η‖g_t‖). The move is along the
    full gradient; the norms cover the parameters selected by `config.params`.
    BatchNorm layers stay in training mode (batch statistics, as in the training step) and the
    random state of the training forward pass is replayed, so dropout masks and injected noise
    are those of the step: L(·; B_t) is the same function at every η.
    """

    name = "probe"

    def __init__(self, config: ProbeConfig, *, lr: float, names: Sequence[str]) -> None:
        self.every = config.every
        self.etas = eta_grid(config, lr)
        self.mask = select_parameters(names, config.params)

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        params, model = ctx.params, ctx.model
        grads = [p.grad for p in params]
        g_t = ctx.grad_snapshot
        selected_grads = [g for g, m in zip(grads, self.mask) if m]
        selected_g_t = [g for g, m in zip(g_t, self.mask) if m]
        buffers = [b.clone() for b in model.buffers()]
        rng_after_forward = RngState.capture(ctx.x.device)

        losses, diffs = [], []
        for eta in self.etas.tolist():
            with torch.no_grad():
                torch._foreach_copy_(params, ctx.param_snapshot)
                torch._foreach_add_(params, g_t, alpha=-eta)  # w_η = w_t − η g_t
                torch._foreach_zero_(grads)
            ctx.rng_before_forward.restore()
            loss = ctx.loss_fn(model(ctx.x), ctx.y)
            loss.backward()
            with torch.no_grad():
                torch._foreach_sub_(selected_grads, selected_g_t)  # ∇L(w_η) − g_t, in place
                losses.append(loss.detach().float())
                diffs.append(global_norm(selected_grads))

        # Leave no trace: weights, gradients, running statistics and random state as before.
        with torch.no_grad():
            torch._foreach_copy_(params, ctx.param_snapshot)
            torch._foreach_copy_(grads, g_t)
            for buffer, saved in zip(model.buffers(), buffers):
                buffer.copy_(saved)
        rng_after_forward.restore()

        device = ctx.x.device
        eta = torch.tensor(self.etas, device=device)
        grad_norm = global_norm(selected_g_t)
        grad_diff = torch.stack(diffs)
        ratio = grad_diff.double() / (eta * grad_norm.double())
        # NaN (no value) is skipped, +inf (the gradient blew up) is kept; all-NaN gives NaN.
        ratio = torch.where(torch.isnan(ratio), torch.full_like(ratio, -torch.inf), ratio)
        beta = ratio.max()
        beta = torch.where(beta == -torch.inf, torch.full_like(beta, torch.nan), beta).float()
        return {
            "eta": eta,
            "loss": torch.stack(losses),
            "grad_diff": grad_diff,
            "grad_norm": grad_norm,
            "beta": beta,
        }
