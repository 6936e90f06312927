"""Measurements of the landscape taken during training, which leave training untouched.

`GradientProbe` is the paper's measurement (Santurkar et al., Section 3.1, Figure 4): at a probed
step t, with the step's own batch B_t, it evaluates the loss and the gradient at
w_η = w_t − η g_t for a grid of step lengths η. Afterwards the weights, gradients, BatchNorm
running statistics and random state are restored bit for bit, so a probed run trains exactly as
an unprobed one would.
"""

from __future__ import annotations

import difflib
from typing import Sequence

import numpy as np
import torch
from torch import nn

from landscape.config import ProbeConfig
from landscape.errors import ConfigError
from landscape.tensors import RngState, global_norm
from landscape.contracts import StepContext


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

    name = "probe"
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


def layer_indices(names: Sequence[str], layer: str) -> list[int]:
    """Indices of the parameters of module `layer` (names `layer.<param>`)."""
    indices = [i for i, n in enumerate(names) if n.startswith(layer + ".")]
    if not indices:
        modules = sorted({n.rsplit(".", 1)[0] for n in names})
        close = difflib.get_close_matches(layer, modules, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else \
            f"layers with parameters: {', '.join(modules[:6])}, ..."
        raise ConfigError(f"layer {layer!r} has no parameters; {hint}")
    return indices


class ICSProbe:
    """Internal covariate shift of chosen layers (Santurkar et al., Definition 2.1).

    For layer i at step t, with the step's batch B_t (and its dropout/noise draws):
        G  = ∇_{W_i} L(W_1^t, …, W_k^t; B_t)                                   (= g_t of layer i)
        G' = ∇_{W_i} L(W_1^{t+1}, …, W_{i−1}^{t+1}, W_i^t, …, W_k^t; B_t)
    i.e. G' is the gradient layer i would see if every earlier layer had already taken its step.
    Returns ‖G − G'‖₂ [L] and cos∠(G, G') [L] for the L layers. "Earlier" means earlier in the
    model's parameter order, which is the forward order for the models in the table. Runs after
    the optimizer step and restores weights, running statistics and random state.
    """

    name = "ics"
    phase = "after_update"

    def __init__(self, *, every: int, layers: Sequence[str], names: Sequence[str]) -> None:
        self.every = every
        self.layers = tuple(layers)
        self.indices = [layer_indices(names, layer) for layer in self.layers]

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        params, model = ctx.params, ctx.model
        w_next = [p.detach().clone() for p in params]  # w_{t+1}
        buffers = [b.clone() for b in model.buffers()]
        rng_after = RngState.capture(ctx.x.device)
        distances, cosines = [], []
        for indices in self.indices:
            first = min(indices)
            with torch.no_grad():
                # Layer i and everything after it back at w_t; earlier layers stay at w_{t+1}.
                torch._foreach_copy_(params[first:], ctx.param_snapshot[first:])
            ctx.rng_before_forward.restore()
            loss = ctx.loss_fn(model(ctx.x), ctx.y)
            g_shifted = torch.autograd.grad(loss, [params[i] for i in indices])
            g_plain = [ctx.grad_snapshot[i] for i in indices]
            with torch.no_grad():
                dot = sum((a.double() * b.double()).sum() for a, b in zip(g_plain, g_shifted))
                norm_plain = global_norm(g_plain).double()
                norm_shifted = global_norm(g_shifted).double()
                distances.append(global_norm(torch._foreach_sub(list(g_plain), list(g_shifted))))
                cosines.append((dot / (norm_plain * norm_shifted)).float())
                torch._foreach_copy_(params[first:], w_next[first:])
        with torch.no_grad():
            for buffer, saved in zip(model.buffers(), buffers):
                buffer.copy_(saved)
        rng_after.restore()
        return {"distance": torch.stack(distances), "cosine": torch.stack(cosines)}


class ActivationProbe:
    """Per-channel mean and variance of one module's output during the training forward pass
    (the distributions of the paper's Figures 2 and 7). Observes only; changes nothing.

    Channels are dimension 1; the statistics are over the batch and, for conv outputs, the
    spatial positions.
    """

    phase = "forward"

    def __init__(self, model: nn.Module, layer: str, *, every: int) -> None:
        self.name = f"activations/{layer}"
        self.every = every
        self._armed = False
        self._stats: dict[str, torch.Tensor] = {}
        find_layer(model, layer).register_forward_hook(self._hook)

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def arm(self) -> None:
        self._armed = True

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if not self._armed:
            return  # probe forwards and evaluation are not the training forward pass
        self._armed = False
        with torch.no_grad():
            dims = [d for d in range(output.dim()) if d != 1]
            var, mean = torch.var_mean(output.detach().float(), dim=dims, correction=0)
            self._stats = {"mean": mean, "var": var}

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        stats, self._stats = self._stats, {}
        return stats


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules:
        close = difflib.get_close_matches(layer, list(modules), n=3)
        raise ConfigError(f"model has no layer {layer!r}"
                          + (f"; did you mean {', '.join(close)}?" if close else ""))
    return modules[layer]


def output_channels(model: nn.Module, layer: str, example: torch.Tensor) -> int:
    """How many channels `layer` outputs for an input like `example` (for the record layout)."""
    found = {}

    def hook(module, inputs, output) -> None:  # a hook that returns a value replaces the output
        found["c"] = output.shape[1]

    handle = find_layer(model, layer).register_forward_hook(hook)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(example)
    model.train(was_training)
    handle.remove()
    return found["c"]
