"""The paper's probe along the gradient: per probed step, the loss band and the
gradient-predictiveness band over the step lengths η, and the effective β."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from analyses import ProbeBands, probe_summary
from landscape.report.runs import LoadedRun


def probe_bands(run: LoadedRun) -> ProbeBands | None:
    """The paper's loss band, gradient-predictiveness band and effective β per probed step of
    one run (`analyses.probe_summary`), or None if the run was not probed."""
    probe = run.data.probe
    if probe is None:
        return None
    # Along the gradient β is over η‖g_t‖ as the paper defines it; along the update over the
    # distance c‖d_t‖ actually moved (the record's distance column).
    distance = probe.distance if probe_direction(run) == "update" else None
    return probe_summary(probe.step, probe.eta, probe.loss, probe.grad_diff, probe.grad_norm,
                         distance=distance)


def probe_direction(run: LoadedRun) -> str:
    """"gradient" or "update": the line the run's probe moved along (records written before
    the probe had a direction probed along the gradient)."""
    probe = run.record.config.get("probe")
    direction = probe.get("direction") if isinstance(probe, Mapping) else None
    return direction if direction in ("gradient", "update") else "gradient"


def direction_text(direction: str) -> str:
    """How figures and summaries name the probe's line."""
    return ("probe along the update w_t + c·d_t (the step the optimizer took)"
            if direction == "update" else "probe along the gradient w_t − η·g_t")


@dataclass(frozen=True)
class EtaRange:
    """The step lengths a run was probed at, as configured in its record."""

    low: float
    high: float
    count: int
    scale: str  # "relative": multiples of lr; "absolute": plain step lengths
    spacing: str

    def describe(self) -> str:
        """e.g. 'η ∈ [0.5, 4]×lr (8 values, linear)'."""
        unit = "×lr" if self.scale == "relative" else " (absolute)"
        return f"η ∈ [{self.low:g}, {self.high:g}]{unit} ({self.count} values, {self.spacing})"


def eta_range(run: LoadedRun) -> EtaRange:
    """The run's probe step lengths as configured; from the recorded η (as multiples of lr) if
    the record's configuration does not say."""
    p = run.record.config.get("probe")
    if isinstance(p, Mapping) and {"low", "high", "count", "scale", "spacing"} <= set(p):
        return EtaRange(float(p["low"]), float(p["high"]), int(p["count"]), str(p["scale"]),
                        str(p["spacing"]))
    eta = np.asarray(run.data.probe.eta, dtype=np.float64) / run.lr
    return EtaRange(float(eta.min()), float(eta.max()), int(eta.shape[-1]), "relative",
                    "as recorded")


@dataclass(frozen=True, eq=False)
class PaperData:
    """The paper's three quantities at one learning rate, one entry per model that has a probed
    run at that learning rate with at least one probed step.

    bands: model -> ProbeBands; runs: model -> the run (for its status and divergence step);
    eta: model -> EtaRange.
    """

    lr: float
    bands: dict[str, ProbeBands]
    runs: dict[str, LoadedRun]
    eta: dict[str, EtaRange]

    def eta_description(self) -> str:
        """One η range for the title ('η ∈ [0.5, 4]×lr (8 values, linear)'), or each model's if
        they differ."""
        distinct = {e.describe() for e in self.eta.values()}
        if len(distinct) == 1:
            return distinct.pop()
        return "; ".join(f"{m}: {e.describe()}" for m, e in self.eta.items())


def paper_data(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[PaperData]:
    """One PaperData per learning rate at which some run was probed (ascending lr); empty if no
    run was probed."""
    by_lr: dict[float, dict[str, LoadedRun]] = {}
    for model, runs in runs_by_model.items():
        for run in runs:
            if run.data.probe is not None and len(run.data.probe.step):
                by_lr.setdefault(run.lr, {})[model] = run
    out = []
    for lr in sorted(by_lr):
        runs = by_lr[lr]
        out.append(PaperData(
            lr=lr,
            bands={m: probe_bands(r) for m, r in runs.items()},
            runs=dict(runs),
            eta={m: eta_range(r) for m, r in runs.items()},
        ))
    return out
