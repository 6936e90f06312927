"""A model-vs-model comparison table (e.g. vgg vs vgg_bn) of the paper's, the course's and the
per-layer metrics, and the text of `summary.txt`."""

from __future__ import annotations

from typing import Mapping, Sequence

from analyses import Comparison, band_width, compare_models
from landscape.errors import ConfigError
from landscape.models import MODELS, bn_partner
from landscape.report.course import (
    ALL_PARAMETERS,
    loss_envelopes,
    run_gradient_change,
    run_trajectory_beta,
    trajectory_source,
)
from landscape.report.curvature import hessian_metric_curves
from landscape.report.layers import ics_data, ics_layers
from landscape.report.paper import probe_bands
from landscape.report.runs import LoadedRun, run_notes
from landscape.report.spans import span_text
from landscape.report.verdicts import PairVerdict, pair_verdict

# The comparison table's metrics, in table order, and what each one is (printed under the table).
COMPARISON_METRICS: dict[str, str] = {
    "loss_band_width": "paper: max/min of the probe loss L(w; B_t) over the probed points w",
    "predictiveness": "paper: max over the probed points of ||grad L(w_t) - grad L(w)||, same "
                      "batch",
    "beta": "paper: effective beta, max over the probed points of that gradient change / "
            "||w - w_t||",
    "grad_change": "course: ||g_{t+1} - g_t||, consecutive training steps",
    "trajectory_beta": "course: ||g_{t+1} - g_t|| / ||w_{t+1} - w_t||, consecutive steps",
    "loss_envelope_width": "course: max - min training loss over a model's runs, its lrs and "
                           "seeds together (steps with >= 2 runs; the verdict: per seed, "
                           "across its lrs)",
}

# Per-layer metrics of the comparison table, named "<metric>[<layer>]" (e.g.
# "ics_distance[features.stage2.conv1]"), after the metrics above.
ICS_METRICS: dict[str, str] = {
    "ics_distance": "paper Def. 2.1: ||G - G'||, the layer's gradient before (G) and after "
                    "(G') the preceding layers' update, same batch",
    "ics_cosine": "paper Def. 2.1: cos angle(G, G'); 1 means the same direction",
}


# The Hessian probe's metrics (landscape.probes.hessian), after the per-layer ones; only where a
# model was probed.
HESSIAN_METRICS: dict[str, str] = {
    "hessian_lambda_max": "largest eigenvalue of the Hessian of L(.; B_t) at w_t (Lanczos)",
    "hessian_trace": "trace of that Hessian (Hutchinson estimate)",
}


def bn_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(X, X_bn) for every unnormalized model X of the model table whose BatchNorm variant
    (`bn_partner`) is also present (by name; records are paired by `norm_pairs`)."""
    present = set(models)
    pairs = [(m, bn_partner(m)) for m in models if m in MODELS]
    return [(a, b) for a, b in pairs if b is not None and b in present]


# What the reports say when no pair is present (`norm_pairs`).
NO_PAIR = "No network both without normalization and with one (X and X_bn, X_gn, ...)"


def norm_pairs(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[tuple[str, str]]:
    """(A, B) for every network A without normalization (its runs' norm "none") and every B of
    the same family with another normalization kind ("bn", "gn", "noisy_bn", ...), each A
    with its Bs in the order the models come; from the runs' `family` and `norm`
    (`LoadedRun`), so any network pairs, not only those the model table lists twice."""
    identity = {model: (runs[0].family, runs[0].norm)
                for model, runs in runs_by_model.items() if runs}
    pairs = []
    for a, (family, norm) in identity.items():
        if norm != "none":
            continue
        pairs += [(a, b) for b, (other, kind) in identity.items()
                  if other == family and kind not in (None, "none")]
    return pairs


def pair_kind(runs_by_model: Mapping[str, Sequence[LoadedRun]], model: str) -> str:
    """The normalization kind of `model`'s runs ("bn" where it is not known)."""
    runs = runs_by_model.get(model) or ()
    return next((r.norm for r in runs if r.norm is not None), "bn")


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
    for run in runs:
        for metric, curve in hessian_metric_curves(run).items():
            curves.setdefault(metric, []).append(curve)
    return {m: [c for c in cs if len(c[0])] for m, cs in curves.items()}


def metric_description(metric: str) -> str:
    """What a comparison-table metric is (COMPARISON_METRICS, or ICS_METRICS for
    "ics_distance[<layer>]" and "ics_cosine[<layer>]")."""
    if metric in COMPARISON_METRICS:
        return COMPARISON_METRICS[metric]
    if metric in HESSIAN_METRICS:
        return HESSIAN_METRICS[metric]
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


def verdict(runs_by_model: Mapping[str, Sequence[LoadedRun]], model_a: str,
            model_b: str) -> PairVerdict:
    """The verdict of `model_a` (no normalization) vs `model_b` (normalized: BN, GN, ...):
    every metric's ratio with its 95% interval over seeds, over all probed steps and at
    matched training loss, and the plateaus (`report.verdicts`), from the same curves as the
    comparison table."""
    for model in (model_a, model_b):
        if model not in runs_by_model:
            raise ConfigError(f"no run of model {model!r}; models: {', '.join(runs_by_model)}")
    return pair_verdict(runs_by_model, model_a, model_b, metric_curves=_metric_curves,
                        norm=pair_kind(runs_by_model, model_b))


def comparisons(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[Comparison]:
    """`compare(A, B)` for every pair of a network without and with a normalization (see
    `norm_pairs`) whose runs have data."""
    return [compare(runs_by_model, a, b) for a, b in _comparable_pairs(runs_by_model)]


def _comparable_pairs(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in norm_pairs(runs_by_model)
            if any(r.last_step is not None for r in runs_by_model[a])
            and any(r.last_step is not None for r in runs_by_model[b])]


def summary_text(runs_by_model: Mapping[str, Sequence[LoadedRun]]) -> str | None:
    """The comparison of every network without normalization with each normalized variant
    of it (X vs X_bn, X vs X_gn, ...: `norm_pairs`): the verdict table (ratios with
    intervals over seeds, at matched steps and matched training loss, and the plateaus), the
    medians per phase, what each metric means, and notes on runs that did not finish; None if
    no pair is present."""
    pairs = _comparable_pairs(runs_by_model)
    if not pairs:
        return None
    parts = []
    used: list[str] = []
    for a, b in pairs:
        comp = compare(runs_by_model, a, b)
        parts.append(verdict(runs_by_model, a, b).to_text())
        parts.append("The medians behind the ratios, per phase (all seeds and lrs pooled):\n"
                     + comp.to_text())
        metrics = list(dict.fromkeys(r.metric for r in comp.rows))
        used = list(dict.fromkeys([*used, *map(_legend_name, metrics)]))
        missing = missing_metrics(runs_by_model, a, b, comp)
        parameter = trajectory_source([*runs_by_model[a], *runs_by_model[b]])
        lines = [f"Trajectory metrics ({a} vs {b}) are of {parameter or ALL_PARAMETERS}.",
                 "loss_envelope_width in the medians spans "
                 + "; ".join(f"{m}: {span_text((r.lr, r.seed) for r in runs_by_model[m])}"
                             for m in (a, b)) + "."]
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


def missing_metrics(runs_by_model: Mapping[str, Sequence[LoadedRun]], a: str, b: str,
                    comp: Comparison | None = None) -> list[str]:
    """The metrics of the comparison that `a` or `b` lacks (`comp`: their `compare`, if at
    hand)."""
    comp = compare(runs_by_model, a, b) if comp is None else comp
    metrics = {r.metric for r in comp.rows}
    missing = [m for m in COMPARISON_METRICS if m not in metrics]
    missing += _missing_ics(runs_by_model[a], runs_by_model[b])
    missing += _missing_hessian(runs_by_model[a], runs_by_model[b])
    return missing


def _legend_name(metric: str) -> str:
    """The name under which a metric is explained under the table: per-layer ICS metrics once,
    as "ics_distance[layer]"."""
    base = metric.split("[", 1)[0]
    return f"{base}[layer]" if base in ICS_METRICS else metric


def _missing_hessian(runs_a: Sequence[LoadedRun], runs_b: Sequence[LoadedRun]) -> list[str]:
    """The Hessian metrics when only one of the two models was probed (none when neither
    was: the probe is off by default)."""
    probed = [any(r.data.hessian is not None and len(r.data.hessian.step) for r in runs)
              for runs in (runs_a, runs_b)]
    return list(HESSIAN_METRICS) if probed[0] != probed[1] else []


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
