"""The loss surfaces the runs hold (`landscape surface`), grouped for figures: one group per
surface name, a panel per run (e.g. the BN and the no-BN run at the same step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from landscape.report.runs import LoadedRun


@dataclass(frozen=True)
class SurfacePanel:
    """One run's surface: what a panel of a surface figure draws."""

    run_id: str
    model: str
    lr: float
    step: int
    dims: int
    alpha: np.ndarray  # [P]
    loss: np.ndarray  # [P] or [P, P], NaN where not (yet) computed
    direction: str  # "random" or "update"
    bn: str  # "train" or "eval": the BatchNorm mode the surface was evaluated in
    images: int
    complete: bool
    seed: int = 0  # titles name it where the panels have several seeds


def surface_groups(runs: Sequence[LoadedRun]) -> dict[str, list[SurfacePanel]]:
    """Surface name -> its panels, one per run that has a surface of that name (in run order).
    Runs recorded with the same `landscape surface` options share names, so the BN and
    no-BN runs of a record line up in one figure."""
    groups: dict[str, list[SurfacePanel]] = {}
    for run in runs:
        for name, surface in run.record.surfaces(run.info.run_id).items():
            o = surface.options
            groups.setdefault(name, []).append(SurfacePanel(
                run.run_id, run.model, run.lr, int(o["step"]), int(o["dims"]), surface.alpha,
                surface.loss, str(o["direction"]), str(o["bn"]), int(o["images"]),
                surface.complete, run.seed))
    return groups
