"""From records to the numbers the figures and the comparison table show (no plotting, no files).

Runs are loaded from one or more records (run ids must be unique across them), grouped by model,
and turned into plain data with the pure functions of `analyses`:

- the course's loss envelope: min/max of the training-batch loss across a model's learning rates;
- the paper's probe bands per probed step (loss band, gradient predictiveness, effective β);
- the course's trajectory quantities: gradient change ‖g_{t+1} − g_t‖ and trajectory β
  ‖g_{t+1} − g_t‖ / ‖w_{t+1} − w_t‖, of one tapped parameter or of all parameters;
- the paper's internal covariate shift (Definition 2.1) per measured layer, and the distribution
  across channels of a layer's per-channel activation mean and standard deviation;
- a model-vs-model comparison table (e.g. vgg vs vgg_bn).

Diverged and incomplete runs take part up to their last recorded step; every per-run curve
carries the run's status and divergence step so that a figure can mark them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from analyses import (
    Comparison,
    Envelope,
    ProbeBands,
    band_width,
    compare_models,
    gradient_change,
    loss_envelope,
    probe_summary,
    smooth_curve,
    trajectory_beta,
    trajectory_beta_from_norms,
)
from landscape.errors import ConfigError, RecordError
from landscape.store import Record, RunData, RunInfo, TapData, open_record

ALL_PARAMETERS = "all parameters"

# The comparison table's metrics, in table order, and what each one is (printed under the table).
COMPARISON_METRICS: dict[str, str] = {
    "loss_band_width": "paper: max/min over eta of the probe loss L(w_t - eta g_t; B_t)",
    "predictiveness": "paper: max over eta of ||grad L(w_t) - grad L(w_t - eta g_t)||, same batch",
    "beta": "paper: effective beta, max over eta of that gradient change / ||eta g_t||",
    "grad_change": "course: ||g_{t+1} - g_t||, consecutive training steps",
    "trajectory_beta": "course: ||g_{t+1} - g_t|| / ||w_{t+1} - w_t||, consecutive steps",
    "loss_envelope_width": "course: max - min training loss across lrs (steps with >= 2 runs)",
}

# Per-layer metrics of the comparison table, named "<metric>[<layer>]" (e.g.
# "ics_distance[features.stage2.conv1]"), after the metrics above.
ICS_METRICS: dict[str, str] = {
    "ics_distance": "paper Def. 2.1: ||G - G'||, the layer's gradient before (G) and after "
                    "(G') the preceding layers' update, same batch",
    "ics_cosine": "paper Def. 2.1: cos angle(G, G'); 1 means the same direction",
}


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """One run's arrays and the record it came from."""

    record: Record
    data: RunData
    # Per-step series derived from the taps, by (quantity, parameter): taps can be large, so
    # they are read once per run and quantity, not once per figure.
    _derived: dict = field(default_factory=dict, repr=False)

    @property
    def info(self) -> RunInfo:
        return self.data.info

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def lr(self) -> float:
        return self.info.lr

    @property
    def source(self) -> Path:
        return self.record.path

    @property
    def diverged_step(self) -> int | None:
        """The step whose training loss was non-finite (None if the run did not diverge)."""
        return self.info.diverged_step

    @property
    def incomplete(self) -> bool:
        """Stopped before its planned end for a reason other than divergence (interrupted, or
        still running / its writer died)."""
        return not self.info.finished

    @property
    def last_step(self) -> int | None:
        """The last recorded training step (None if none was recorded)."""
        step = self.data.steps.step
        return int(step[-1]) if len(step) else None

    def tap(self, parameter: str) -> TapData:
        return self.record.tap(self.run_id, parameter)


def load_runs(paths: Sequence[str | os.PathLike]) -> list[LoadedRun]:
    """Every run of every record in `paths`, in file order then record order.

    Raises RecordError if a file is not a readable record, is given twice, or if two records
    hold a run with the same id (the message names the run and both files).
    """
    if not paths:
        raise ConfigError("no record given")
    runs: list[LoadedRun] = []
    seen_files: dict[Path, Path] = {}
    owner: dict[str, Path] = {}
    for path in paths:
        path = Path(path)
        resolved = path.resolve()
        if resolved in seen_files:
            raise RecordError(f"{path} is given twice")
        seen_files[resolved] = path
        record = open_record(path)
        for run_id in record.runs:
            if run_id in owner:
                raise RecordError(
                    f"run {run_id!r} is in both {owner[run_id]} and {path}; run ids must be "
                    f"unique across the records plotted together"
                )
            owner[run_id] = path
            runs.append(LoadedRun(record, record.load(run_id)))
    return runs


def group_by_model(runs: Sequence[LoadedRun]) -> dict[str, list[LoadedRun]]:
    """Runs per model: models in order of first appearance, each model's runs by ascending lr."""
    groups: dict[str, list[LoadedRun]] = {}
    for run in runs:
        groups.setdefault(run.model, []).append(run)
    return {model: sorted(group, key=lambda r: r.lr) for model, group in groups.items()}


def bn_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(X, X_bn) for every model X whose BatchNorm variant X_bn is also present."""
    present = set(models)
    return [(m, f"{m}_bn") for m in models if f"{m}_bn" in present]


def run_notes(runs: Sequence[LoadedRun]) -> list[str]:
    """One line per run that did not finish as planned (diverged, incomplete, empty)."""
    notes = []
    for run in runs:
        if run.last_step is None:
            notes.append(f"{run.run_id} ({run.source.name}): no step recorded "
                         f"(status {run.info.status}); left out of the figures")
        elif run.diverged_step is not None:
            notes.append(f"{run.run_id} ({run.source.name}): diverged at step "
                         f"{run.diverged_step} (non-finite training loss); plotted up to there")
        elif run.incomplete:
            notes.append(f"{run.run_id} ({run.source.name}): incomplete (status "
                         f"{run.info.status}), {run.last_step + 1} steps recorded")
    return notes


# Settings that make runs of different records not directly comparable.
_COMPARABLE_KEYS = ("optimizer", "momentum", "weight_decay", "batch_size", "seed", "subset",
                    "width", "crop_padding", "flip", "mean", "std")


def full_batch(runs: Sequence[LoadedRun]) -> bool:
    """Whether every run trained on its whole training set at every step (batch size at least
    the number of training samples, as the deep linear network's full-batch GD), so that
    consecutive steps share their batch."""
    def whole(run: LoadedRun) -> bool:
        batch, n_train = run.record.config.get("batch_size"), run.record.data.get("n_train")
        return isinstance(batch, int) and isinstance(n_train, int) and batch >= n_train
    return bool(runs) and all(whole(run) for run in runs)


def record_differences(runs: Sequence[LoadedRun]) -> list[str]:
    """Training settings and data that differ between the records of `runs` (empty if one
    record, or if they agree), e.g. ["optimizer: adam (a.h5), sgd (b.h5)"]."""
    records: dict[Path, Record] = {}
    for run in runs:
        records.setdefault(run.source, run.record)
    if len(records) < 2:
        return []
    out = []
    items = [(p.name, r.config) for p, r in records.items()]
    items_data = [(p.name, r.data) for p, r in records.items()]
    for key in _COMPARABLE_KEYS:
        values = {name: cfg.get(key) for name, cfg in items}
        if len({repr(v) for v in values.values()}) > 1:
            out.append(f"{key}: " + ", ".join(f"{v} ({n})" for n, v in values.items()))
    datasets = {name: (d.get("name"), d.get("n_train"), d.get("n_test")) for name, d in items_data}
    if len(set(datasets.values())) > 1:
        out.append("data: " + ", ".join(f"{v[0]} {v[1]}/{v[2]} ({n})"
                                        for n, v in datasets.items()))
    return out


# ---------------------------------------------------------------------------------------------
# Per-run curves and their envelopes across learning rates


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
    curves: every run of the model, by ascending lr (some may have no point).
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


def _curve(run: LoadedRun, step: np.ndarray, values: np.ndarray,
           smooth: int | None) -> RunCurve:
    step = np.asarray(step, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if smooth is not None and smooth > 1 and len(step):
        step, values = smooth_curve(step, values, method="moving_average", window=int(smooth))
    return RunCurve(run.run_id, run.model, run.lr, run.info.status, run.diverged_step,
                    run.incomplete, step, values)


def _series(runs_by_model: Mapping[str, Sequence[LoadedRun]], quantity: str, source: str,
            smooth: int | None,
            extract: Callable[[LoadedRun], tuple[np.ndarray, np.ndarray]]) \
        -> dict[str, ModelSeries]:
    _check_smooth(smooth)
    out = {}
    for model, runs in runs_by_model.items():
        curves = tuple(_curve(run, *extract(run), smooth) for run in runs)
        drawn = [(c.step, c.values) for c in curves if len(c.step)]
        if not drawn:
            continue
        out[model] = ModelSeries(model, quantity, source, smooth, loss_envelope(drawn), curves)
    return out


def loss_envelopes(runs_by_model: Mapping[str, Sequence[LoadedRun]], *,
                   smooth: int | None = None) -> dict[str, ModelSeries]:
    """The course's loss landscape: per model, min/max of the training-batch loss across its runs
    (one per learning rate) at every step.

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


# ---------------------------------------------------------------------------------------------
# The paper's probe


def probe_bands(run: LoadedRun) -> ProbeBands | None:
    """The paper's loss band, gradient-predictiveness band and effective β per probed step of
    one run (`analyses.probe_summary`), or None if the run was not probed."""
    probe = run.data.probe
    if probe is None:
        return None
    return probe_summary(probe.step, probe.eta, probe.loss, probe.grad_diff, probe.grad_norm)


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


# ---------------------------------------------------------------------------------------------
# Internal covariate shift (Definition 2.1) and activation distributions


@dataclass(frozen=True, eq=False)
class RunICS:
    """The internal covariate shift of one run's measured layers (paper, Definition 2.1).

    For layer i at a measured step t, with the step's batch B_t: G is the gradient of layer i's
    weights at w_t and G' the same gradient after every preceding layer took its step t update.
    distance[layer]: ‖G − G'‖₂ per measured step; cosine[layer]: cos∠(G, G'); both RunCurves
    (step int64 [P], values float64 [P]) carrying the run's status, in the record's layer order.
    """

    run_id: str
    model: str
    lr: float
    layers: tuple[str, ...]
    distance: dict[str, RunCurve]
    cosine: dict[str, RunCurve]


def run_ics(run: LoadedRun) -> RunICS | None:
    """The run's internal covariate shift per layer, or None if it was not measured (or no
    measured step was recorded)."""
    ics = run.data.ics
    if ics is None or not len(ics.step):
        return None
    distance = np.asarray(ics.distance, dtype=np.float64)  # [P, L]
    cosine = np.asarray(ics.cosine, dtype=np.float64)
    return RunICS(
        run.run_id, run.model, run.lr, tuple(ics.layers),
        distance={layer: _curve(run, ics.step, distance[:, j], None)
                  for j, layer in enumerate(ics.layers)},
        cosine={layer: _curve(run, ics.step, cosine[:, j], None)
                for j, layer in enumerate(ics.layers)},
    )


def ics_data(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[RunICS]:
    """`run_ics` of every run that measured internal covariate shift, models in order and each
    model's runs by ascending lr; empty if none did."""
    out = []
    for runs in runs_by_model.values():
        out += [ics for ics in map(run_ics, runs) if ics is not None]
    return out


def ics_layers(data: Sequence[RunICS]) -> tuple[str, ...]:
    """Every layer measured by any of the runs, in order of first appearance."""
    layers: list[str] = []
    for ics in data:
        layers += [layer for layer in ics.layers if layer not in layers]
    return tuple(layers)


@dataclass(frozen=True, eq=False)
class ActivationBands:
    """The distribution across channels of one layer's per-channel statistics, per recorded step
    of one run (the paper's Figures 2 and 7: how stable the layer's output distribution is).

    At each recorded step the layer's output on the training batch gives, per channel c, a mean
    m_c and a variance v_c (over the batch and, for conv layers, the spatial positions).
    mean_low / mean_median / mean_high: the `percentiles[0]`, 50th and `percentiles[1]`
    percentiles over channels of m_c, float64 [S]; std_*: the same of sqrt(v_c).
    channels: a few channels followed individually; mean_traces / std_traces: their m_c and
    sqrt(v_c), float64 [S, len(channels)] (a band can stay put while every channel moves).
    curve: a RunCurve (of the median mean) that carries the run's status for end markers.
    """

    run_id: str
    model: str
    lr: float
    layer: str
    n_channels: int
    percentiles: tuple[float, float]
    step: np.ndarray
    mean_low: np.ndarray
    mean_median: np.ndarray
    mean_high: np.ndarray
    std_low: np.ndarray
    std_median: np.ndarray
    std_high: np.ndarray
    channels: tuple[int, ...]
    mean_traces: np.ndarray
    std_traces: np.ndarray
    curve: RunCurve


def _check_percentiles(percentiles: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ConfigError(f"percentiles must be two numbers (low, high), got {percentiles!r}") \
            from None
    if not 0 <= low < 50 < high <= 100:
        raise ConfigError(f"percentiles must satisfy 0 <= low < 50 < high <= 100, got "
                          f"{percentiles!r}")
    return low, high


def _percentiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Percentiles over axis 1 of [S, C], ignoring non-finite entries: float64 [len(qs), S]
    (NaN at a step with no finite channel)."""
    values = np.where(np.isfinite(values), values, np.nan)
    out = np.full((len(qs), values.shape[0]), np.nan)
    ok = np.isfinite(values).any(axis=1)
    if ok.any():
        out[:, ok] = np.nanpercentile(values[ok], qs, axis=1)
    return out


def activation_bands(run: LoadedRun, layer: str, *,
                     percentiles: tuple[float, float] = (10.0, 90.0),
                     n_traces: int = 3) -> ActivationBands:
    """Percentile bands across channels of the per-channel mean and standard deviation of
    `layer`'s output at every recorded step of `run`, and the first `n_traces` channels'
    values (see ActivationBands). Raises ConfigError if the run did not record the layer."""
    low_q, high_q = _check_percentiles(percentiles)
    if isinstance(n_traces, bool) or not isinstance(n_traces, (int, np.integer)) or n_traces < 0:
        raise ConfigError(f"n_traces must be an integer >= 0, got {n_traces!r}")
    if layer not in run.data.activations:
        recorded = ", ".join(run.data.activations) or "none"
        raise ConfigError(f"run {run.run_id} recorded no activations of {layer!r} "
                          f"(recorded: {recorded})")
    act = run.data.activations[layer]
    mean = np.asarray(act.mean, dtype=np.float64)  # [S, C]
    # The biased variance; a tiny negative value from rounding would give NaN, so clip at 0.
    std = np.sqrt(np.clip(np.asarray(act.var, dtype=np.float64), 0.0, None))
    std[~np.isfinite(act.var)] = np.nan
    qs = (low_q, 50.0, high_q)
    m, s = _percentiles(mean, qs), _percentiles(std, qs)
    channels = tuple(range(min(int(n_traces), mean.shape[1])))
    step = np.asarray(act.step, dtype=np.int64)
    return ActivationBands(
        run.run_id, run.model, run.lr, layer, int(mean.shape[1]), (low_q, high_q), step,
        m[0], m[1], m[2], s[0], s[1], s[2], channels,
        mean[:, list(channels)], std[:, list(channels)],
        _curve(run, step, m[1], None),
    )


def activation_data(runs_by_model: Mapping[str, Sequence[LoadedRun]], *,
                    percentiles: tuple[float, float] = (10.0, 90.0),
                    n_traces: int = 3) -> dict[str, list[ActivationBands]]:
    """layer -> `activation_bands` of every run that recorded it with at least one step
    (layers in the order the record lists them in its configuration, runs by model then
    ascending lr); empty if no run recorded activations."""
    out: dict[str, list[ActivationBands]] = {}
    for runs in runs_by_model.values():
        for run in runs:
            # In the order the record was asked for (the file lists its groups by name).
            asked = list(run.record.config.get("activation_layers") or ())
            layers = sorted(run.data.activations,
                            key=lambda l: asked.index(l) if l in asked else len(asked))
            for layer in layers:
                act = run.data.activations[layer]
                if len(act.step):
                    out.setdefault(layer, []).append(activation_bands(
                        run, layer, percentiles=percentiles, n_traces=n_traces))
    return out


# ---------------------------------------------------------------------------------------------
# Comparison of two models


def _metric_curves(runs: Sequence[LoadedRun], parameter: str | None) -> dict[str, list]:
    """metric -> list of (step, values) curves with at least one point, one per run."""
    curves: dict[str, list] = {m: [] for m in COMPARISON_METRICS}
    for run in runs:
        bands = probe_bands(run)
        if bands is not None and len(bands.step):
            curves["loss_band_width"].append(
                (bands.step, band_width(bands.loss_low, bands.loss_high, kind="ratio")))
            curves["predictiveness"].append((bands.step, bands.grad_diff_high))
            curves["beta"].append((bands.step, bands.beta))
        if run.last_step is not None:
            curves["grad_change"].append(run_gradient_change(run, parameter))
            curves["trajectory_beta"].append(run_trajectory_beta(run, parameter))
    env = loss_envelopes({"m": runs}).get("m")
    if env is not None:
        keep = env.envelope.n_runs >= 2
        curves["loss_envelope_width"].append(
            (env.envelope.step[keep], env.envelope.high[keep] - env.envelope.low[keep]))
    # Internal covariate shift per layer: "ics_distance[<layer>]", ... (all distances first).
    measured = ics_data({"m": runs})
    for kind, of in (("ics_distance", lambda ics: ics.distance),
                     ("ics_cosine", lambda ics: ics.cosine)):
        for layer in ics_layers(measured):
            curves[f"{kind}[{layer}]"] = [(of(ics)[layer].step, of(ics)[layer].values)
                                          for ics in measured if layer in ics.layers]
    return {m: [c for c in cs if len(c[0])] for m, cs in curves.items()}


def metric_description(metric: str) -> str:
    """What a comparison-table metric is (COMPARISON_METRICS, or ICS_METRICS for
    "ics_distance[<layer>]" and "ics_cosine[<layer>]")."""
    if metric in COMPARISON_METRICS:
        return COMPARISON_METRICS[metric]
    base = metric.split("[", 1)[0]
    if base in ICS_METRICS and metric.endswith("]"):
        return ICS_METRICS[base]
    raise ValueError(f"unknown comparison metric {metric!r}")


def compare(runs_by_model: Mapping[str, Sequence[LoadedRun]], model_a: str, model_b: str, *,
            early_fraction: float = 0.5) -> Comparison:
    """Median of each metric of COMPARISON_METRICS per model (over all its runs and steps), per
    phase, and the ratio a/b (`analyses.compare_models`), then the internal covariate shift of
    every layer both models measured ("ics_distance[<layer>]", then "ics_cosine[<layer>]").
    Metrics that either model lacks (no probe, a single run for the envelope width, no
    consecutive steps, no ICS of that layer) are left out.
    The trajectory metrics use the same parameter for both models (`trajectory_source`)."""
    for model in (model_a, model_b):
        if model not in runs_by_model:
            raise ConfigError(f"no run of model {model!r}; models: {', '.join(runs_by_model)}")
    runs_a, runs_b = runs_by_model[model_a], runs_by_model[model_b]
    parameter = trajectory_source([*runs_a, *runs_b])
    ca, cb = _metric_curves(runs_a, parameter), _metric_curves(runs_b, parameter)
    metrics = [m for m in ca if ca[m] and cb.get(m)]
    if not metrics:
        raise ConfigError(f"{model_a} and {model_b} have no metric in common to compare "
                          f"(no recorded steps?)")
    return compare_models(model_a, {m: ca[m] for m in metrics},
                          model_b, {m: cb[m] for m in metrics},
                          early_fraction=early_fraction)


def comparisons(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[Comparison]:
    """`compare(X, X_bn)` for every BN pair present (see `bn_pairs`) whose runs have data."""
    return [compare(runs_by_model, a, b) for a, b in _comparable_pairs(runs_by_model)]


def _comparable_pairs(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in bn_pairs(list(runs_by_model))
            if any(r.last_step is not None for r in runs_by_model[a])
            and any(r.last_step is not None for r in runs_by_model[b])]


def summary_text(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> str | None:
    """The BN vs no-BN comparison tables (one per pair X, X_bn), what each metric means, and
    notes on runs that did not finish; None if no pair is present."""
    pairs = _comparable_pairs(runs_by_model)
    if not pairs:
        return None
    parts = []
    used: list[str] = []
    for a, b in pairs:
        comp = compare(runs_by_model, a, b)
        parts.append(comp.to_text())
        metrics = list(dict.fromkeys(r.metric for r in comp.rows))
        used = list(dict.fromkeys([*used, *map(_legend_name, metrics)]))
        missing = [m for m in COMPARISON_METRICS if m not in metrics]
        missing += _missing_ics(runs_by_model[a], runs_by_model[b])
        parameter = trajectory_source([*runs_by_model[a], *runs_by_model[b]])
        lines = [f"Trajectory metrics ({a} vs {b}) are of {parameter or ALL_PARAMETERS}."]
        if missing:
            lines.append(f"Not available for both models: {', '.join(missing)}.")
        parts.append("\n".join(lines))
    width = max(len(m) for m in used)
    parts.append("Metrics (ratio > 1: the first model's median is larger):\n" + "\n".join(
        f"  {m.ljust(width)}  {metric_description(m)}" for m in used))
    notes = run_notes([r for rs in runs_by_model.values() for r in rs])
    if notes:
        parts.append("Runs that did not finish as planned:\n" + "\n".join(f"  {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


def _legend_name(metric: str) -> str:
    """The name under which a metric is explained under the table: per-layer ICS metrics once,
    as "ics_distance[layer]"."""
    base = metric.split("[", 1)[0]
    return f"{base}[layer]" if base in ICS_METRICS else metric


def _missing_ics(runs_a: Sequence[LoadedRun], runs_b: Sequence[LoadedRun]) -> list[str]:
    """The ICS metrics not in the table: all of them if no layer was measured for both models,
    else the layers measured for one model only."""
    layers_a = set(ics_layers(ics_data({"a": runs_a})))
    layers_b = set(ics_layers(ics_data({"b": runs_b})))
    both = layers_a & layers_b
    if not both:
        return list(ICS_METRICS)
    return [f"{kind}[{layer}]" for kind in ICS_METRICS
            for layer in sorted((layers_a | layers_b) - both)]
