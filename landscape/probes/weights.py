"""Keeping the model's weights at chosen steps, for loss surfaces and pruning afterwards."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from landscape.training.contracts import StepContext
from landscape.store.schema import TableKind


class WeightsProbe:
    """The model's whole state_dict (parameters and buffers, e.g. BatchNorm's running
    statistics) at the start of the chosen steps, before their forward pass, so that the
    weights kept at step S are exactly those at which the loss of step S was computed; and,
    with `final`, after the last step of a finished run (kept as step = steps done); with
    `best`, after every evaluation that improves the validation accuracy (kept as step = steps
    done: the weights at the start of that step), so that the last of them are the best.

    Observes only: the copies are taken when armed, before the training forward pass, and
    handed over at the next host sync like any probe's rows.
    """

    phase = "forward"
    reads_only = True  # copies the weights before the forward pass
    name = TableKind.WEIGHTS

    def __init__(self, model: nn.Module, *, every: int = 0, at: tuple[int, ...] = (),
                 final: bool = False, best: bool = False) -> None:
        self.model, self.every, self.at, self.final = model, every, frozenset(at), final
        self.best = best
        self._copy: dict[str, torch.Tensor] = {}
        self._best_step: int | None = None

    def due(self, step: int) -> bool:
        return (self.every > 0 and step % self.every == 0) or step in self.at

    def arm(self) -> None:
        self._copy = _state_copy(self.model)

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        copy, self._copy = self._copy, {}
        return copy

    def best_rows(self, steps_done: int, *, last: bool) -> dict[str, np.ndarray] | None:
        """The rows of the weights after `steps_done` steps, a new best (None without `best`,
        or when the step about to start keeps the same weights itself; `last`: no step
        follows)."""
        if not self.best or (self.due(steps_done) and not last):
            return None
        self._best_step = steps_done
        return self._rows(steps_done)

    def final_rows(self, steps_done: int) -> dict[str, np.ndarray] | None:
        """The rows of the weights after the last step (None without `final`, or when they
        were just kept as the best)."""
        if not self.final or self._best_step == steps_done:
            return None
        return self._rows(steps_done)

    def _rows(self, steps_done: int) -> dict[str, np.ndarray]:
        rows = {"step": np.asarray([steps_done], dtype=np.int64)}
        rows.update({k: v.cpu().numpy()[None] for k, v in _state_copy(self.model).items()})
        return rows


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    # clone(memory_format=contiguous): the stored layout is the logical one, whatever memory
    # format the model trains in.
    return {k: v.detach().clone(memory_format=torch.contiguous_format)
            for k, v in model.state_dict().items()}


def weight_entries(model: nn.Module) -> dict[str, tuple[tuple[int, ...], str]]:
    """The weights table's columns for `model`: state_dict entry -> (shape, dtype)."""
    return {k: (tuple(v.shape), str(v.dtype).removeprefix("torch."))
            for k, v in model.state_dict().items()}
