"""The paper's probe along the gradient: per probed step, the loss band and the
gradient-predictiveness band over the step lengths η, and the effective β."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
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
    return ("probe along the update wₜ + c·dₜ (the step the optimizer took)"
            if direction == "update" else "probe along the gradient wₜ − η·gₜ")


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
    # With several seeds: bands are the median over seeds at each probed step all seeds share,
    # and beta_range[model] = (min, max) of β over the seeds at those steps.
    n_seeds: dict[str, int] = field(default_factory=dict)
    beta_range: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    direction: str = "gradient"

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
    by_lr: dict[float, dict[str, list[LoadedRun]]] = {}
    for model, runs in runs_by_model.items():
        for run in runs:
            if run.data.probe is not None and len(run.data.probe.step):
                by_lr.setdefault(run.lr, {}).setdefault(model, []).append(run)
    out = []
    for lr in sorted(by_lr):
        runs = {m: sorted(rs, key=lambda r: r.seed) for m, rs in by_lr[lr].items()}
        combined = {m: _over_seeds([probe_bands(r) for r in rs]) for m, rs in runs.items()}
        first = next(iter(runs.values()))[0]
        out.append(PaperData(
            lr=lr,
            bands={m: c[0] for m, c in combined.items()},
            runs={m: rs[0] for m, rs in runs.items()},
            eta={m: eta_range(rs[0]) for m, rs in runs.items()},
            n_seeds={m: len(rs) for m, rs in runs.items()},
            beta_range={m: c[1] for m, c in combined.items() if len(runs[m]) > 1},
            direction=probe_direction(first),
        ))
    return out


def _over_seeds(bands: list[ProbeBands]) -> tuple[ProbeBands, tuple[np.ndarray, np.ndarray]]:
    """The median over seeds of each band edge and of β at the probed steps every seed has,
    and β's range over the seeds there (one seed: its own bands)."""
    if len(bands) == 1:
        return bands[0], (bands[0].beta, bands[0].beta)
    steps = bands[0].step
    for b in bands[1:]:
        steps = np.intersect1d(steps, b.step)

    def stack(name: str) -> np.ndarray:
        return np.stack([getattr(b, name)[np.isin(b.step, steps)] for b in bands])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        median = {name: np.nanmedian(stack(name), axis=0) for name in
                  ("loss_low", "loss_high", "grad_diff_low", "grad_diff_high", "beta")}
        beta = stack("beta")
        return (ProbeBands(step=steps, **median),
                (np.nanmin(beta, axis=0), np.nanmax(beta, axis=0)))
