"""Check mode (`Recorder(..., check=True)`): a copy of everything a probe must leave as it
found it, taken before the probe and compared after it, naming the first thing that changed
(a probe that changed training would measure a different run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from landscape.errors import InstrumentError
from landscape.training.tensors import RngState


@dataclass
class TrainingState:
    """A copy of everything a probe must leave as it found it (check mode)."""

    params: list[torch.Tensor]
    grads: list[torch.Tensor | None]
    buffers: dict[str, torch.Tensor]
    optimizer: list[tuple[str, torch.Tensor]]
    rng: RngState
    training: dict[str, bool]

    @classmethod
    def capture(cls, instrument: Any) -> "TrainingState":
        model = instrument.model
        return cls(
            [p.detach().clone() for p in instrument.params],
            [None if p.grad is None else p.grad.clone() for p in instrument.params],
            {n: b.clone() for n, b in model.named_buffers()},
            _optimizer_tensors(instrument.optimizer),
            RngState.capture(instrument.device),
            {n: m.training for n, m in model.named_modules()},
        )

    def compare(self, instrument: Any, what: str) -> None:
        """Raise InstrumentError naming the first thing `what` changed."""
        now = TrainingState.capture(instrument)
        names = instrument.names
        for name, a, b in zip(names, self.params, now.params):
            if not torch.equal(a, b):
                _changed(what, f"the weights of {name}")
        for name, a, b in zip(names, self.grads, now.grads):
            if (a is None) != (b is None) or (a is not None and not torch.equal(a, b)):
                _changed(what, f"the gradient of {name}")
        for name, a in self.buffers.items():
            if not torch.equal(a, now.buffers[name]):
                _changed(what, f"the buffer {name}")
        for (name, a), (_, b) in zip(self.optimizer, now.optimizer):
            if not torch.equal(a, b):
                _changed(what, f"the optimizer's state {name}")
        if not torch.equal(self.rng.cpu, now.rng.cpu) or (
                self.rng.cuda is not None and not torch.equal(self.rng.cuda, now.rng.cuda)):
            _changed(what, "the random state")
        for name, training in self.training.items():
            if now.training[name] != training:
                _changed(what, f"the training mode of {name or 'the model'}")


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[tuple[str, torch.Tensor]]:
    out = []
    for i, (param, state) in enumerate(optimizer.state.items()):
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                out.append((f"{key} of parameter {i}", value.clone()))
    return out


def _changed(what: str, thing: str) -> None:
    raise InstrumentError(f"check: {what} changed {thing}; the measurement would have changed "
                          f"training")
