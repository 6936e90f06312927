"""The Hessian probe's numbers per run (λ_max, trace, the 2/η reference and the paper's β at
the same run's probed steps) and its spectral densities per model (see docs/measurements.md,
"Curvature: λ_max, the trace and β")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from landscape.report.runs import LoadedRun


@dataclass(frozen=True)
class RunHessian:
    """One run's Hessian probe: per probed step t, λ_max and the trace of ∇²L(w_t; B_t) with
    the trace's standard error, and the step's learning rate η_t (the gradient-descent
    stability threshold is λ_max = 2/η_t); `beta_step`, `beta`: the paper's effective β of the
    same run where it was probed (empty if not)."""

    run_id: str
    model: str
    lr: float
    seed: int
    step: np.ndarray
    lambda_max: np.ndarray
    trace: np.ndarray
    trace_se: np.ndarray
    step_lr: np.ndarray
    beta_step: np.ndarray
    beta: np.ndarray

    @property
    def stability_threshold(self) -> np.ndarray:
        """2/η_t at the probed steps."""
        return 2.0 / self.step_lr


def run_hessian(run: LoadedRun) -> RunHessian | None:
    h = run.data.hessian
    if h is None or not len(h.step):
        return None
    probe = run.data.probe
    beta_step = probe.step if probe is not None else np.zeros(0, dtype=np.int64)
    beta = probe.beta.astype(np.float64) if probe is not None else np.zeros(0)
    return RunHessian(run.run_id, run.model, run.lr, run.seed, h.step, h.lambda_max, h.trace,
                      h.trace_se, h.lr, beta_step, beta)


def hessian_data(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[RunHessian]:
    """Every run's Hessian probe, model by model (runs without one are left out)."""
    found = [run_hessian(r) for runs in runs_by_model.values() for r in runs]
    return [h for h in found if h is not None]


@dataclass(frozen=True)
class ModelDensity:
    """The spectral density of one model's Hessian at one learning rate: per recorded step,
    the quadrature nodes and weights of all its runs (seeds) pooled into one measure (each
    run's weights divided by the number of runs)."""

    model: str
    lr: float
    seeds: tuple[int, ...]
    step: np.ndarray  # int64 [S], steps every one of the runs recorded
    nodes: np.ndarray  # [S, N·runs]
    weights: np.ndarray  # [S, N·runs], sum 1 per row


def hessian_densities(runs_by_model: Mapping[str, Sequence[LoadedRun]]
                      ) -> list[ModelDensity]:
    """Per model and learning rate whose runs recorded densities: the pooled density at the
    steps they all recorded."""
    out = []
    for model, runs in runs_by_model.items():
        with_density = [r for r in runs if r.data.hessian_density is not None
                        and len(r.data.hessian_density.step)]
        for lr in sorted({r.lr for r in with_density}):
            group = [r for r in with_density if r.lr == lr]
            steps = sorted(set.intersection(*(set(r.data.hessian_density.step.tolist())
                                               for r in group)))
            if not steps:
                continue
            nodes, weights = [], []
            for s in steps:
                rows = [(r.data.hessian_density, int(np.flatnonzero(
                    r.data.hessian_density.step == s)[0])) for r in group]
                nodes.append(np.concatenate([d.nodes[i] for d, i in rows]))
                weights.append(np.concatenate([d.weights[i] for d, i in rows]) / len(group))
            out.append(ModelDensity(model, lr, tuple(r.seed for r in group),
                                    np.asarray(steps, dtype=np.int64), np.stack(nodes),
                                    np.stack(weights)))
    return out


def hessian_metric_curves(run: LoadedRun) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The comparison table's Hessian metrics of one run: "hessian_lambda_max" and
    "hessian_trace" -> (step, values); empty without a Hessian probe."""
    h = run_hessian(run)
    if h is None:
        return {}
    return {"hessian_lambda_max": (h.step, h.lambda_max), "hessian_trace": (h.step, h.trace)}
