"""The paper's probe of the landscape at a training step, along the gradient or along the update.

At a probed step t, with the step's own batch B_t, the probe evaluates the loss and the gradient
at K points on a line through w_t and measures how much the gradient changes:

- direction "gradient" (the paper's definition, Santurkar et al. Section 3.1, Figure 4):
  w_η = w_t − η g_t for step lengths η = grid × lr_t; distance ‖w_η − w_t‖ = η‖g_t‖.
- direction "update": w_c = w_t + c·d_t along the step the optimizer actually took,
  d_t = w_{t+1} − w_t, for multiples c = grid; distance c‖d_t‖. Under Adam the step has a length
  of order lr·√(#parameters), unrelated to ‖g_t‖, so a gradient probe would look at distances
  orders of magnitude shorter than the step (docs/measurements.md, "Probing where the optimizer
  goes"). For plain SGD d_t = −lr·g_t and the two directions measure the same points.

Afterwards the weights, gradients, BatchNorm running statistics and random state are restored
bit for bit, so a probed run trains exactly as an unprobed one would.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn

from landscape.config import ProbeConfig
from landscape.training.contracts import StepContext
from landscape.errors import ConfigError
from landscape.probes._restore import StepState
from landscape.store.schema import TableKind
from landscape.training.tensors import global_norm

def unit_grid(config: ProbeConfig) -> np.ndarray:
    """The grid (float64 [K]) between `low` and `high`: multiples of the step's learning rate
    (gradient direction, relative scale), multiples of the update (update direction), or plain
    step lengths (absolute scale)."""
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
    """Loss and gradient along a line through w_t, at every `config.every`-th step.

    Per probed step it returns (device tensors): `eta` [K] (the step lengths η = grid × lr_t; for
    the update direction c × lr_t, which for plain SGD is the same η), `loss` [K], `grad_diff`
    [K] = ‖∇L(w_t; B_t) − ∇L(w; B_t)‖ at each point w, `distance` [K] = ‖w − w_t‖, `grad_norm`
    = ‖g_t‖ and `beta` = max_k grad_diff_k / distance_k. The move is along the full direction;
    the norms cover the parameters selected by `config.params`. BatchNorm layers stay in training
    mode and the random state of the training forward pass is replayed, so dropout masks and
    injected noise are those of the step: L(·; B_t) is the same function at every point.

    `dtype` "float64" recomputes every loss and gradient (and ∇L(w_t; B_t) itself) in float64 on
    a float64 copy of the model; the direction is still the float32 step that training took.
    """

    name = TableKind.PROBE  # the table it fills

    def __init__(self, config: ProbeConfig, *, names: Sequence[str]) -> None:
        # "auto" is resolved by RecordConfig; a ProbeConfig used on its own probes as the
        # paper does, along the gradient.
        direction = "gradient" if config.direction == "auto" else config.direction
        self.every = config.every
        self.grid = unit_grid(config)
        self.relative = config.scale == "relative"
        self.mask = select_parameters(names, config.params)
        self.direction = direction
        # The update d_t = w_{t+1} − w_t exists only after the optimizer step.
        self.phase = "before_update" if direction == "gradient" else "after_update"
        self.float64 = config.dtype == "float64"
        self._shadow: nn.Module | None = None
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
        lr = float(ctx.lr) if self.relative else 1.0
        g_t = ctx.grad_snapshot
        saved = StepState(ctx)
        w_end = None
        if self.direction == "gradient":
            # w_η = w_t − η g_t: from w_t, along g_t, with coefficients −η.
            start, along, coefs = ctx.param_snapshot, g_t, [-c * lr for c in self.grid]
        else:
            w_end = [p.detach().clone() for p in params]  # w_{t+1}
            d_t = torch._foreach_sub(w_end, ctx.param_snapshot)
            # w_c = w_{t+1} + (c − 1)·d_t, so that c = 1 is exactly w_{t+1}.
            start, along, coefs = w_end, d_t, [c - 1.0 for c in self.grid]
        if self.float64:
            losses, diffs = self._evaluate_float64(ctx, start, along, coefs)
        else:
            # Training in bf16 (or TF32) gives a g_t that differs from the float32 gradient at
            # w_t by its own rounding; measured from it, every gradient change would include
            # that difference. The reference is then ∇L(w_t; B_t) recomputed in float32 (and
            # in eval mode, where the function probed is not the one training differentiated).
            g_ref = (reference_gradient(ctx, model, params) if ctx.recompute_reference
                     else g_t)
            losses, diffs = self._evaluate(ctx, model, params, start, along, coefs, g_ref)

        # Leave no trace: weights, gradients, running statistics and random state as before.
        saved.restore(ctx, w_end)

        eta = self._grid_tensor(ctx.device) * lr
        grad_norm = global_norm(self._selected(g_t))
        if self.direction == "gradient":
            distance = eta * grad_norm.double()  # ‖w_η − w_t‖ = η‖g_t‖
        else:  # ‖w_c − w_t‖ = c‖d_t‖
            distance = self._grid_tensor(ctx.device) * global_norm(
                self._selected(along)).double()
        grad_diff = torch.stack(diffs).double()
        ratio = grad_diff / distance
        # NaN (no value) is skipped, +inf (the gradient blew up) is kept; all-NaN gives NaN.
        ratio = torch.where(torch.isnan(ratio), torch.full_like(ratio, -torch.inf), ratio)
        beta = ratio.max()
        beta = torch.where(beta == -torch.inf, torch.full_like(beta, torch.nan), beta).float()
        return {
            "eta": eta,
            "loss": torch.stack(losses).float(),
            "grad_diff": grad_diff.float(),
            "distance": distance,
            "grad_norm": grad_norm,
            "beta": beta,
        }

    def _selected(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [t for t, m in zip(tensors, self.mask) if m]

    def _evaluate(self, ctx, model, params, start, along, coefs, g_ref):
        """L and ‖∇L − g_ref‖ (selected parameters) at start + a·along for a in `coefs`."""
        grads = [p.grad for p in params]
        selected_grads, selected_ref = self._selected(grads), self._selected(g_ref)
        losses, diffs = [], []
        for a in coefs:
            with torch.no_grad():
                torch._foreach_copy_(params, start)
                if a != 0.0:
                    torch._foreach_add_(params, along, alpha=a)
                torch._foreach_zero_(grads)
            loss = ctx.batch_loss(model)
            loss.backward()
            with torch.no_grad():
                torch._foreach_sub_(selected_grads, selected_ref)  # ∇L(w) − g_ref, in place
                losses.append(loss.detach().float())
                diffs.append(global_norm(selected_grads))
        return losses, diffs

    def _evaluate_float64(self, ctx, start, along, coefs):
        """As `_evaluate`, on a float64 copy of the model, with the reference gradient
        ∇L(w_t; B_t) itself recomputed in float64."""
        shadow = self._shadow_model(ctx.model)
        s_params = [p for p in shadow.parameters() if p.requires_grad]
        with torch.no_grad():
            for s_buf, buf in zip(shadow.buffers(), ctx.model.buffers()):
                s_buf.copy_(buf)
        start64 = [w.double() for w in start]
        along64 = [d.double() for d in along]
        w_t64 = [w.double() for w in ctx.param_snapshot]
        # ∇L(w_t; B_t) in float64: the reference every gradient change is measured from.
        _, g_ref = self._loss_and_grad(ctx, shadow, s_params, w_t64, None, 0.0)
        losses, diffs = [], []
        for a in coefs:
            loss, g = self._loss_and_grad(ctx, shadow, s_params, start64, along64, a)
            losses.append(loss)
            diffs.append(global_norm(torch._foreach_sub(self._selected(g),
                                                        self._selected(g_ref))))
        return losses, diffs

    def _loss_and_grad(self, ctx, shadow, s_params, start, along, a):
        with torch.no_grad():
            torch._foreach_copy_(s_params, start)
            if along is not None and a != 0.0:
                torch._foreach_add_(s_params, along, alpha=a)
        loss = ctx.batch_loss(shadow, dtype=torch.float64)
        grads = torch.autograd.grad(loss, s_params)
        return loss.detach(), [g.detach() for g in grads]

    def _shadow_model(self, model: nn.Module) -> nn.Module:
        if self._shadow is None:
            # Observers of the training forward (the instrument's hooks, which hold the step's
            # outputs) stay with the model: the copy gets empty hook tables, and deepcopy never
            # walks into the observers (whose non-leaf tensors cannot be copied).
            memo = {}
            for module in model.modules():
                for table in (module._forward_hooks, module._forward_pre_hooks):
                    memo[id(table)] = type(table)()
            shadow = copy.deepcopy(model, memo).double()
            self._shadow = shadow.train()
        return self._shadow


def reference_gradient(ctx: StepContext, model: nn.Module,
                       params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """∇L(w_t; B_t) in the arithmetic the caller runs in (the loop runs probes in float32),
    with the step's random draws; leaves the parameters at w_t and p.grad changed."""
    with torch.no_grad():
        torch._foreach_copy_(params, ctx.param_snapshot)
    loss = ctx.batch_loss(model)
    return [g.detach() for g in torch.autograd.grad(loss, list(params))]


def check_float64_probe(model: nn.Module, *, penalties: bool) -> None:
    """--probe-dtype float64 replays neither random layers nor the l1/l2 penalty (which are
    evaluated on the float32 weights); refuse such runs instead of measuring something else."""
    from landscape.models.norms import AlgorithmOneNoiseOnly, NoisyBatchNorm1d, NoisyBatchNorm2d
    random = [name for name, m in model.named_modules()
              if (isinstance(m, nn.Dropout) and m.p > 0)
              or isinstance(m, (NoisyBatchNorm1d, NoisyBatchNorm2d, AlgorithmOneNoiseOnly))]
    if random:
        raise ConfigError(f"probe dtype float64 needs a model without random layers "
                          f"(dropout, noise); this one has {random[0]}")
    if penalties:
        raise ConfigError("probe dtype float64 does not support the l1/l2 penalties")
