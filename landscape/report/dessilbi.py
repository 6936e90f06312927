"""The numbers of a DessiLBI comparison, per run: held-out accuracy, Γ's sparsity and residue
at the end, and the landscape measures of the probes (docs/dessilbi.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from landscape.store import open_record


@dataclass(frozen=True)
class DessiLBISummary:
    run_id: str
    optimizer: str
    steps: int
    test_acc: float  # held-out accuracy at the last evaluation
    train_loss: float  # mean training-batch loss over the last evaluation interval
    sparsity: dict[str, float]  # layer -> fraction of Γ's groups non-zero at the end
    residue: dict[str, float]  # layer -> ‖W − Γ‖²/(2μ) at the end
    loss_range: float  # median over probes of max − min of the loss along the probed line
    grad_diff: float  # median over probes of max_k ‖g_t − ∇L(w_k)‖ (gradient predictiveness)
    beta: float  # median over probes of the effective β-smoothness
    ics: float  # median ‖G − G'‖ of the first ICS layer (NaN without ICS)


def dessilbi_summaries(path: str | os.PathLike) -> list[DessiLBISummary]:
    record = open_record(path)
    out = []
    for run_id, info in record.runs.items():
        data = record.load(run_id)
        sparsity = record.sparsity(run_id)
        probe = data.probe
        out.append(DessiLBISummary(
            run_id=run_id,
            optimizer=str(record.config.get("optimizer")),
            steps=info.steps_done,
            test_acc=float(data.eval.test_acc[-1]) if len(data.eval.step) else float("nan"),
            train_loss=float(data.eval.train_loss[-1]) if len(data.eval.step) else float("nan"),
            sparsity={} if sparsity is None else
            {layer: float(sparsity.nonzero_fraction[-1, i])
             for i, layer in enumerate(sparsity.layers)},
            residue={} if sparsity is None else
            {layer: float(sparsity.residue[-1, i]) for i, layer in enumerate(sparsity.layers)},
            loss_range=_median(None if probe is None else probe.loss.max(1) - probe.loss.min(1)),
            grad_diff=_median(None if probe is None else probe.grad_diff.max(1)),
            beta=_median(None if probe is None else probe.beta),
            ics=_median(None if data.ics is None else data.ics.distance[:, 0]),
        ))
    return out


def _median(values: np.ndarray | None) -> float:
    if values is None:
        return float("nan")
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")
