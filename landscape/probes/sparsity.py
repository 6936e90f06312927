"""DessiLBI's path, read from the optimizer's state after each step: how much of each chosen
layer's Γ is non-zero, the residue ‖W − Γ‖²/(2μ), and Γ itself at the end of the run. Reading
the state changes nothing: training is left untouched."""

from __future__ import annotations

import torch

from landscape.training.contracts import StepContext
from landscape.optim import SLBI, group_norms
from landscape.store.schema import TableKind, table_path


class SparsityProbe:
    """Per step and per coupled layer (in the optimizer's order): the fraction of Γ's groups
    that are non-zero (output filters of a conv weight, elements of a linear weight) and the
    residue ‖W − Γ‖²/(2μ) (the coupling term of the loss, Fu et al. 2020)."""

    name = TableKind.SPARSITY
    phase = "after_update"
    reads_only = True  # reads the optimizer's Γ and the weights

    def __init__(self, optimizer: SLBI, *, every: int = 1) -> None:
        self.optimizer = optimizer
        self.every = every
        self.layers = [name for name, *_ in optimizer.coupled()]

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        fractions, residues = [], []
        with torch.no_grad():
            for _, w, gamma, mu in self.optimizer.coupled():
                fractions.append((group_norms(gamma) != 0).float().mean())
                residues.append((w - gamma).double().square().sum().div(2 * mu).float())
        return {"nonzero_fraction": torch.stack(fractions), "residue": torch.stack(residues)}


class GammaProbe:
    """Γ of one coupled layer at the run's last planned step (for pruning and the filter
    figure: `landscape prune`)."""

    phase = "after_update"
    reads_only = True  # reads the optimizer's Γ and the weights

    def __init__(self, optimizer: SLBI, layer: str, *, last_step: int) -> None:
        self.gamma = optimizer.gammas  # read when measured: Γ is replaced every step
        self.layer = layer
        self.name = table_path(TableKind.GAMMA, layer)
        self.last_step = last_step

    def due(self, step: int) -> bool:
        return step == self.last_step

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"gamma": self.gamma()[self.layer].detach().float().clone()}


def slbi_probes(optimizer, total_steps: int) -> list:
    """The sparsity probe and one Γ probe per coupled layer for a DessiLBI optimizer; none for
    any other optimizer."""
    if not isinstance(optimizer, SLBI):
        return []
    probes: list = [SparsityProbe(optimizer)]
    for layer, *_ in optimizer.coupled():
        probes.append(GammaProbe(optimizer, layer, last_step=total_steps - 1))
    return probes
