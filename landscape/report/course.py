"""The course's per-step quantities: each run's curve and their min/max envelope across a
model's runs (its learning rates, and its seeds where there are several).

- the loss envelope: min/max of the training-batch loss across a model's runs;
- the trajectory quantities: gradient change ‖g_{t+1} − g_t‖ and trajectory β
  ‖g_{t+1} − g_t‖ / ‖w_{t+1} − w_t‖, of one tapped parameter or of all parameters.

Every per-run curve (RunCurve, also used by the per-layer quantities) carries the run's status
and divergence step so that a figure can mark them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from analyses import (
    Envelope,
    gradient_change,
    loss_envelope,
    smooth_curve,
    trajectory_beta,
    trajectory_beta_from_norms,
)
from landscape.errors import ConfigError
from landscape.report.runs import LoadedRun
from landscape.report.spans import span_text, spanned

ALL_PARAMETERS = "all parameters"


@dataclass(frozen=True, eq=False)
class RunCurve:
    """One run's values of a per-step quantity (after smoothing, if any).

    step: int64 [N]; values: float64 [N] (non-finite where the run blew up).
    """

    run_id: str
    model: str
    lr: float
    status: str
    diverged_step: int | None
    incomplete: bool
    step: np.ndarray
    values: np.ndarray
    seed: int = 0  # figures tell seeds apart by it (two seeds at one lr are two runs)

    def end_point(self) -> tuple[int, float] | None:
        """Where a figure marks a diverged or incomplete run: (step, last finite value up to
        it; NaN if none). None for a run that finished as planned or has no point."""
        if self.diverged_step is None and not self.incomplete:
            return None
        if self.diverged_step is not None:
            x = self.diverged_step
        elif len(self.step):
            x = int(self.step[-1])
        else:
            return None
        ok = np.isfinite(self.values) & (self.step <= x)
        y = float(self.values[ok][-1]) if ok.any() else math.nan
        return x, y


@dataclass(frozen=True, eq=False)
class ModelSeries:
    """A per-step quantity for one model: each run's curve and the min/max envelope across them.

    quantity: what the values are (e.g. "training-batch loss").
    source: "all parameters" or the tapped parameter's name (trajectory quantities), "" if n/a.
    smooth: moving-average window applied to each run's curve before the envelope (None: raw).
    envelope: min/max across the curves that have at least one point (`analyses.Envelope`).
    curves: every run of the model, by ascending lr (some may have no point); several seeds
        make several runs per lr, so the envelope spans lrs, seeds or both (`span`).
    """

    model: str
    quantity: str
    source: str
    smooth: int | None
    envelope: Envelope
    curves: tuple[RunCurve, ...]

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(c.lr for c in self.curves)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(c.seed for c in self.curves)

    @property
    def span(self) -> str:
        """What the envelope spans, e.g. '2 seeds (0, 1) at lr 0.05' (`report.spans`)."""
        return span_text(zip(self.lrs, self.seeds))

    @property
    def spanned(self) -> str:
        """'lrs', 'seeds', 'lrs and seeds' or 'one run'."""
        return spanned(zip(self.lrs, self.seeds))

    @property
    def n_diverged(self) -> int:
        return sum(c.diverged_step is not None for c in self.curves)

    @property
    def n_incomplete(self) -> int:
        return sum(c.incomplete for c in self.curves)


def _check_smooth(smooth: int | None) -> None:
    if smooth is None:
        return
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 1:
        raise ConfigError(f"smoothing window must be an integer >= 1, got {smooth!r}")


def run_curve(run: LoadedRun, step: np.ndarray, values: np.ndarray,
              smooth: int | None) -> RunCurve:
    """One run's (step, values) as a RunCurve carrying its status; with `smooth` > 1, first
    replaced by their trailing moving average over `smooth` steps."""
    step = np.asarray(step, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if smooth is not None and smooth > 1 and len(step):
        step, values = smooth_curve(step, values, method="moving_average", window=int(smooth))
    return RunCurve(run.run_id, run.model, run.lr, run.info.status, run.diverged_step,
                    run.incomplete, step, values, run.seed)


def _series(runs_by_model: Mapping[str, Sequence[LoadedRun]], quantity: str, source: str,
            smooth: int | None,
            extract: Callable[[LoadedRun], tuple[np.ndarray, np.ndarray]]) \
        -> dict[str, ModelSeries]:
    _check_smooth(smooth)
    out = {}
    for model, runs in runs_by_model.items():
        curves = tuple(run_curve(run, *extract(run), smooth) for run in runs)
        drawn = [(c.step, c.values) for c in curves if len(c.step)]
        if not drawn:
            continue
        out[model] = ModelSeries(model, quantity, source, smooth, loss_envelope(drawn), curves)
    return out


def loss_envelopes(runs_by_model: Mapping[str, Sequence[LoadedRun]], *,
                   smooth: int | None = None) -> dict[str, ModelSeries]:
    """The course's loss landscape: per model, min/max of the training-batch loss across its runs
    (one per learning rate and seed) at every step.

    smooth: None (raw, the default) or a moving-average window (trailing, `analyses.smooth_curve`)
    applied to each run's curve BEFORE the envelope. A diverged run's non-finite losses leave the
    envelope (they only lower `envelope.n_runs`).
    """
    out = _series(runs_by_model, "training-batch loss", "", smooth,
                  lambda r: (r.data.steps.step, r.data.steps.loss))
    lengths = [len(r.data.steps.step) for rs in runs_by_model.values() for r in rs]
    if smooth and not out and any(lengths):
        raise ConfigError(f"smoothing window {smooth} is longer than every run "
                          f"(the longest has {max(lengths)} steps)")
    return out


def trajectory_source(runs: Sequence[LoadedRun]) -> str | None:
    """The parameter the trajectory quantities use: the first parameter tapped by EVERY run (so
    all models are measured on the same tensor), or None (all parameters) if there is none."""
    runs = list(runs)
    if not runs:
        return None
    common = [p for p in runs[0].info.taps if all(p in r.info.taps for r in runs[1:])]
    return common[0] if common else None


def _grad_change_all(step: np.ndarray, grad_change: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The recorder stores ‖g_t − g_{t−1}‖ at step t; report ‖g_{t+1} − g_t‖ at step t like
    # analyses.gradient_change does for taps, wherever t and t + 1 are both recorded.
    i = np.flatnonzero(np.diff(step) == 1)
    return step[i], np.asarray(grad_change, dtype=np.float64)[i + 1]


def run_gradient_change(run: LoadedRun, parameter: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(step [M], ‖g_{t+1} − g_t‖₂ [M]) of one run, reported at step t: of `parameter` (from its
    taps) or, with None, of all parameters (from the recorded per-step `grad_change`)."""
    if parameter is None:
        return _grad_change_all(run.data.steps.step, run.data.steps.grad_change)
    return _from_taps(run, parameter)[0]


def run_trajectory_beta(run: LoadedRun, parameter: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(step [M], ‖g_{t+1} − g_t‖₂ / ‖w_{t+1} − w_t‖₂ [M]) of one run, reported at step t: of
    `parameter` (taps) or, with None, of all parameters (recorded norms)."""
    if parameter is None:
        s = run.data.steps
        return trajectory_beta_from_norms(s.step, s.grad_change, s.update_norm)
    return _from_taps(run, parameter)[1]


def _from_taps(run: LoadedRun, parameter: str) -> tuple[tuple, tuple]:
    """(gradient change, trajectory β) of a tapped parameter, reading its taps once."""
    if parameter not in run._derived:
        tap = run.tap(parameter)
        run._derived[parameter] = (gradient_change(tap.step, tap.grad),
                                   trajectory_beta(tap.step, tap.grad, tap.weight_delta))
    return run._derived[parameter]


def gradient_change_envelopes(runs_by_model: Mapping[str, Sequence[LoadedRun]], *,
                              parameter: str | None, smooth: int | None = None) \
        -> dict[str, ModelSeries]:
    """Course quantity: ‖g_{t+1} − g_t‖₂ between consecutive training steps, min/max across each
    model's runs. `parameter`: a tapped parameter, or None for all parameters (see
    `trajectory_source`). Models without a single consecutive pair of steps are left out."""
    return _series(runs_by_model, "gradient change", parameter or ALL_PARAMETERS, smooth,
                   lambda r: run_gradient_change(r, parameter))


def trajectory_beta_envelopes(runs_by_model: Mapping[str, Sequence[LoadedRun]], *,
                              parameter: str | None, smooth: int | None = None) \
        -> dict[str, ModelSeries]:
    """Course quantity: ‖g_{t+1} − g_t‖₂ / ‖w_{t+1} − w_t‖₂, min/max across each model's runs
    (figures show the max, `envelope.high`). `parameter` as in `gradient_change_envelopes`."""
    return _series(runs_by_model, "trajectory beta", parameter or ALL_PARAMETERS, smooth,
                   lambda r: run_trajectory_beta(r, parameter))
