"""Small tensor helpers shared by the training loop and the probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """‖concat(tensors)‖₂ as a 0-d tensor on the tensors' device (no host sync)."""
    if not tensors:
        return torch.tensor(float("nan"))
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))


@dataclass(frozen=True)
class RngState:
    """The random state that dropout and noisy normalization draw from."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None
    device: torch.device

    @classmethod
    def capture(cls, device: torch.device) -> "RngState":
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(torch.get_rng_state(), cuda, device)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
