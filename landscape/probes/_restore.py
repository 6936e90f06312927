"""What a probe that evaluates the model itself must give back: the probes' shared promise
that training goes on exactly as it would have without them."""

from __future__ import annotations

from typing import Sequence

import torch

from landscape.training.contracts import StepContext
from landscape.training.tensors import RngState


class StepState:
    """The model's buffers (BatchNorm running statistics) and the random state as the training
    step left them, saved before a probe runs forward passes; `restore` puts them back together
    with the weights and the gradients, bit for bit."""

    def __init__(self, ctx: StepContext) -> None:
        self.buffers = [b.clone() for b in ctx.model.buffers()]
        self.rng_after = RngState.capture(ctx.device)

    def restore(self, ctx: StepContext, weights: Sequence[torch.Tensor] | None = None) -> None:
        """Weights to `weights` (default: w_t, the parameter snapshot), gradients to g_t,
        buffers and random state to what they were when this state was saved."""
        with torch.no_grad():
            torch._foreach_copy_(ctx.params, weights if weights is not None
                                 else ctx.param_snapshot)
            torch._foreach_copy_([p.grad for p in ctx.params], ctx.grad_snapshot)
            for buffer, saved in zip(ctx.model.buffers(), self.buffers):
                buffer.copy_(saved)
        self.rng_after.restore()
