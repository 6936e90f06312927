"""The paper's probe: the loss and the gradient along the gradient direction.

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
from landscape.contracts import StepContext
from landscape.errors import ConfigError
from landscape.store.schema import TableKind
from landscape.tensors import RngState, global_norm


def unit_grid(config: ProbeConfig) -> np.ndarray:
    """The grid (float64 [K]) between `low` and `high`: multiples of the step's learning rate
    when the scale is relative, step lengths when it is absolute."""
    if config.spacing == "log":
        return np.geomspace(config.low, config.high, config.count)
    return np.linspace(config.low, config.high, config.count)


def eta_grid(config: ProbeConfig, lr: float) -> np.ndarray:
    """The step lengths η (float64 [K]) probed at a step whose learning rate is `lr`."""
    return unit_grid(config) * (lr if config.scale == "relative" else 1.0)


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

    With a relative scale the η are multiples of the probed step's learning rate `ctx.lr` (which
    follows the run's schedule), so the grid moves with the schedule; with an absolute scale
    they are fixed.
    """

    name = TableKind.PROBE  # the table it fills
    phase = "before_update"

    def __init__(self, config: ProbeConfig, *, names: Sequence[str]) -> None:
        self.every = config.every
        self.grid = unit_grid(config)
        self.relative = config.scale == "relative"
        self.mask = select_parameters(names, config.params)
        self._grid: torch.Tensor | None = None

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def _grid_tensor(self, device: torch.device) -> torch.Tensor:
        # Made once and scaled on the device by a Python float: a host-to-device copy per
        # probe would wait for the GPU.
        if self._grid is None or self._grid.device != device:
            self._grid = torch.tensor(self.grid, dtype=torch.float64, device=device)
        return self._grid

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        params, model = ctx.params, ctx.model
        scale = float(ctx.lr) if self.relative else 1.0
        # The same float64 products on the host (to move the weights) and on the device (to
        # record): η_k = grid_k · lr_t.
        etas = (self.grid * scale).tolist()
        grads = [p.grad for p in params]
        g_t = ctx.grad_snapshot
        selected_grads = [g for g, m in zip(grads, self.mask) if m]
        selected_g_t = [g for g, m in zip(g_t, self.mask) if m]
        buffers = [b.clone() for b in model.buffers()]
        rng_after_forward = RngState.capture(ctx.x.device)

        losses, diffs = [], []
        for eta in etas:
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

        eta = self._grid_tensor(ctx.x.device) * scale
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
