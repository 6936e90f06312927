"""Internal covariate shift of chosen layers, measured after the optimizer step (Santurkar et al.,
Definition 2.1); training is left untouched."""

from __future__ import annotations

import difflib
from typing import Sequence

import torch

from landscape.training.contracts import StepContext
from landscape.errors import ConfigError
from landscape.probes.gradient import reference_gradient
from landscape.store.schema import TableKind
from landscape.training.tensors import RngState, global_norm


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

    name = TableKind.ICS  # the table it fills
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
        rng_after = RngState.capture(ctx.device)
        g_t = ctx.grad_snapshot
        if ctx.recompute_reference:
            # As in the gradient probe: G in the probe's float32, not the training arithmetic's.
            g_t = reference_gradient(ctx, model, params)
            with torch.no_grad():
                torch._foreach_copy_(params, w_next)
        distances, cosines = [], []
        for indices in self.indices:
            first = min(indices)
            with torch.no_grad():
                # Layer i and everything after it back at w_t; earlier layers stay at w_{t+1}.
                torch._foreach_copy_(params[first:], ctx.param_snapshot[first:])
            loss = ctx.batch_loss(model)
            g_shifted = torch.autograd.grad(loss, [params[i] for i in indices])
            g_plain = [g_t[i] for i in indices]
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
