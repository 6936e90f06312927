"""The per-step measurements of the training loop, from device tensors to the recorder's rows.

Between host syncs the loop keeps each step's scalars, tapped tensors and probe values on the
device (`PendingRows`); at a sync they reach the host in one transfer, are cut at the first
non-finite loss and go to the recorder (`PendingRows.hand_over`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from landscape.training.contracts import RunRecorder


@dataclass
class KeptRows:
    """What one host sync handed to the recorder."""

    n: int
    images: int
    losses: np.ndarray
    correct: np.ndarray
    last_loss: float
    diverged_step: int | None


@dataclass
class TrainAccumulator:
    """Training loss and accuracy of the steps since the last evaluation."""

    losses: list[float] = field(default_factory=list)
    correct: float = 0.0
    seen: int = 0

    def add(self, kept: KeptRows) -> None:
        self.losses.extend(kept.losses.tolist())
        self.correct += float(np.sum(kept.correct))
        self.seen += kept.images

    def mean_loss(self) -> float:
        return float(np.mean(self.losses)) if self.losses else math.nan

    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else math.nan

    def as_dict(self) -> dict:
        return {"losses": list(self.losses), "correct": self.correct, "seen": self.seen}


class PendingRows:
    """Device tensors of the steps since the last host sync."""

    def __init__(self) -> None:
        self.stats: list[torch.Tensor] = []
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.batch_sizes: list[int] = []
        self.taps: dict[str, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
        self.probes: dict[str, list[tuple[int, dict[str, torch.Tensor]]]] = {}

    def add_probe(self, name: str, step: int, values: dict[str, torch.Tensor]) -> None:
        self.probes.setdefault(name, []).append((step, values))

    def hand_over(self, recorder: RunRecorder) -> KeptRows:
        """Move everything to the host in one transfer, cut at the first non-finite loss, and
        give it to the recorder."""
        stats = torch.stack(self.stats).cpu().numpy().astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(stats[:, 0]))
        keep = len(stats) if not len(bad) else int(bad[0]) + 1
        steps = np.asarray(self.steps[:keep], dtype=np.int64)
        recorder.steps({
            "step": steps,
            "loss": stats[:keep, 0],
            "grad_norm": stats[:keep, 1],
            "grad_change": stats[:keep, 2],
            "update_norm": stats[:keep, 3],
            "lr": np.asarray(self.lrs[:keep]),
            "applied_grad_norm": stats[:keep, 5],
        })
        last = int(steps[-1])
        for name, rows in self.taps.items():
            rows = [r for r in rows if r[0] <= last]
            if rows:
                recorder.tap(name, {
                    "step": np.array([r[0] for r in rows], dtype=np.int64),
                    "grad": torch.stack([r[1] for r in rows]).cpu().numpy(),
                    "weight_delta": torch.stack([r[2] for r in rows]).cpu().numpy(),
                })
        for name, rows in self.probes.items():
            rows = [r for r in rows if r[0] <= last]
            if rows:
                columns = {"step": np.array([r[0] for r in rows], dtype=np.int64)}
                for key in rows[0][1]:
                    columns[key] = torch.stack([r[1][key] for r in rows]).cpu().numpy()
                recorder.probe(name, columns)
        return KeptRows(
            n=keep,
            images=int(sum(self.batch_sizes[:keep])),
            losses=stats[:keep, 0],
            correct=stats[:keep, 4],
            last_loss=float(stats[keep - 1, 0]),
            diverged_step=last if len(bad) else None,
        )
