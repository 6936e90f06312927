"""Per-layer quantities: the paper's internal covariate shift (Definition 2.1) per measured
layer, and the distribution across channels of a layer's per-channel activation mean and
standard deviation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from landscape.errors import ConfigError
from landscape.report.course import RunCurve, run_curve
from landscape.report.runs import LoadedRun


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
        distance={layer: run_curve(run, ics.step, distance[:, j], None)
                  for j, layer in enumerate(ics.layers)},
        cosine={layer: run_curve(run, ics.step, cosine[:, j], None)
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
        run_curve(run, step, m[1], None),
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


@dataclass(frozen=True, eq=False)
class ActivationHistogram:
    """Histograms of all of one layer's output values on the training batch, at every recorded
    step of one run (the paper's Figures 2 and 7). step: int64 [S]; edges: float64 [B + 1], the
    fixed bins (values outside them are counted in the first/last bin); counts: int64 [S, B];
    seed: the run's (the figure names the run it shows by lr and seed)."""

    run_id: str
    model: str
    lr: float
    layer: str
    step: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    seed: int = 0


def activation_histograms(runs_by_model: Mapping[str, Sequence[LoadedRun]],
                          layer: str | None = None) -> list[ActivationHistogram]:
    """Per model (in the given order), the histograms of `layer` of its first run (by the order
    given: ascending lr) that recorded them at some step; `layer` None: the first layer, in the
    order the record asked for them, that some run has histograms of. Models without such a run
    are left out; empty if no run recorded histograms (records before them have none)."""
    def has(run: LoadedRun, name: str) -> bool:
        act = run.data.activations.get(name)
        return act is not None and act.hist is not None and bool(np.any(act.hist[:, 0] >= 0))

    runs = [r for rs in runs_by_model.values() for r in rs]
    if layer is None:
        for run in runs:
            asked = list(run.record.config.get("activation_layers") or ())
            names = sorted(run.data.activations,
                           key=lambda l: asked.index(l) if l in asked else len(asked))
            layer = next((name for name in names if has(run, name)), None)
            if layer is not None:
                break
        if layer is None:
            return []
    out = []
    for runs in runs_by_model.values():
        run = next((r for r in runs if has(r, layer)), None)
        if run is not None:
            act = run.data.activations[layer]
            # Rows of a resumed pre-version-3 record hold −1: no histogram was recorded there.
            kept = np.asarray(act.hist)[:, 0] >= 0
            out.append(ActivationHistogram(
                run.run_id, run.model, run.lr, layer, np.asarray(act.step, dtype=np.int64)[kept],
                np.asarray(act.hist_edges, dtype=np.float64),
                np.asarray(act.hist, np.int64)[kept], run.seed))
    return out
