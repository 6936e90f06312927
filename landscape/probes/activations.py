"""Per-channel statistics of one layer's output during the training forward pass; observes only."""

from __future__ import annotations

import difflib

import torch
from torch import nn

from landscape.training.contracts import StepContext
from landscape.errors import ConfigError
from landscape.store.schema import TableKind, activation_hist_edges, table_path


class ActivationProbe:
    """Per-channel mean and variance of one module's output during the training forward pass,
    and a fixed-bin histogram of all its values (the distributions of the paper's Figures 2
    and 7). Observes only; changes nothing.

    Channels are dimension 1; the statistics are over the batch and, for conv outputs, the
    spatial positions. The histogram counts every value in the bins of
    `activation_hist_edges()`; values outside the range are counted in the first/last bin.
    """

    phase = "forward"
    reads_only = True  # observes the training forward pass

    def __init__(self, model: nn.Module, layer: str, *, every: int) -> None:
        self.name = table_path(TableKind.ACTIVATIONS, layer)  # the table it fills
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
            self._stats = {"mean": mean, "var": var, "hist": histogram(output.detach())}

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        stats, self._stats = self._stats, {}
        return stats


def histogram(values: torch.Tensor) -> torch.Tensor:
    """int64 [B] counts of all of `values` in the fixed bins of `activation_hist_edges()`, on
    their device and without a host sync; values outside the range go to the edge bins. A value
    on an inner edge belongs to the bin it opens (as numpy.histogram); NaN to the last bin."""
    edges = torch.as_tensor(activation_hist_edges(), device=values.device)
    flat = values.reshape(-1).double()  # float64: the same comparisons as numpy's edges
    index = torch.bucketize(flat, edges[1:-1], right=True)  # in 0..B-1: clamped
    counts = torch.zeros(len(edges) - 1, dtype=torch.int64, device=values.device)
    # scatter_add_, not bincount: bincount reads the largest index back to the host.
    return counts.scatter_add_(0, index, torch.ones_like(index))


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
