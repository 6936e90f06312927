"""The BN vs no-BN verdict: each metric's ratio with an interval over seeds, at matched steps
and at matched training loss, and each run's initial plateau; the head of `summary.txt`.

A per-step median compares whatever both networks were doing at the same step; when one of them
still sits on its initial plateau (CIFAR-10 loss ≈ ln 10, tiny gradients, a trivially flat
landscape) that comparison says nothing about BatchNorm. So every ratio is reported twice: over
all probed steps, and at matched progress (probed steps binned by the run's training loss,
compared bin by bin). Seeds are the unit of replication: the interval is a bootstrap over seeds
(`analyses.confidence`) from MIN_BOOTSTRAP_SEEDS seeds on; with fewer it is the per-seed range,
called that, and a verdict needs every seed to agree; a single-seed record says that it has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from analyses.confidence import (
    MIN_BOOTSTRAP_SEEDS,
    RatioEstimate,
    bootstrap_ratio,
    interval_basis,
    interval_name,
    pooled_median_ratio,
)
from analyses.progress import Plateau, common_loss_bins, detect_plateau, loss_at, matched_ratio
from landscape.models import MODELS, norm_short
from landscape.report.course import trajectory_source
from landscape.report.paper import direction_text, probe_direction
from landscape.report.runs import LoadedRun
from landscape.store import from_user_loop

# Metrics where a larger value means a rougher landscape, in table order. The paper's first.
VERDICT_METRICS = ("predictiveness", "beta", "loss_band_width", "grad_change",
                   "trajectory_beta", "loss_envelope_width",
                   "hessian_lambda_max", "hessian_trace")  # the last two: with --hessian-every
# Across a seed's learning rates: no single run's loss.
_NO_LOSS_LEVEL = ("loss_envelope_width",)

# "{with}" is the normalization's short name: "BN", "GN", ... (models.norm_short).
_VERDICT_WORDS = {"greater": "smoother with {with}", "less": "rougher with {with}",
                  "unclear": "no clear difference", "no interval": "no interval (1 seed)"}
# With fewer than MIN_BOOTSTRAP_SEEDS seeds the interval is the per-seed range: a verdict says
# that every seed agrees, and "unclear" means that they do not.
_RANGE_WORDS = {"greater": "smoother with {with} (every seed)",
                "less": "rougher with {with} (every seed)", "unclear": "seeds disagree"}


@dataclass(frozen=True)
class MetricVerdict:
    """One metric: unnormalized / normalized over all probed steps and at matched training
    loss."""

    metric: str
    per_step: RatioEstimate
    matched: RatioEstimate | None  # None: the metric has no loss level, or no common range


@dataclass(frozen=True)
class PairVerdict:
    """The verdict table of one pair (a: without normalization, b: with normalization `norm`,
    BatchNorm unless said otherwise)."""

    model_a: str
    model_b: str
    seeds: tuple[int, ...]
    direction: str
    setting: str  # optimizer and learning rates, for the title
    scale: str  # the data, the network and the steps: what a reader needs to know is reduced
    # model -> (lr, seed, plateau, steps recorded) per run
    plateaus: Mapping[str, tuple[tuple[float, int, Plateau, int], ...]]
    rows: tuple[MetricVerdict, ...]
    norm: str = "bn"  # model_b's normalization kind ("bn", "gn", "noisy_bn", ...)
    # (metric, view: "all steps" or "matched loss") -> what the verdict cell adds where a level
    # this verdict pools (a learning rate) has another verdict: "at lr 0.0001: rougher with BN"
    caveats: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """model_b's normalization as the verdicts name it: "BN", "GN", ..."""
        return norm_short(self.norm)

    def row(self, metric: str) -> MetricVerdict:
        for r in self.rows:
            if r.metric == metric:
                return r
        raise ValueError(f"no verdict for metric {metric!r}")

    def to_text(self, notes: Sequence[str] = ()) -> str:
        """The verdict as plain text; `notes`: lines right under its table (what changes
        between the learning rates it pools, say)."""
        return verdict_text(self, notes)


def verdict_words(estimate: RatioEstimate, kind: str = "BN") -> str:
    """'smoother with BN', 'rougher with BN', 'no clear difference' or 'no interval (1 seed)'
    for a no-BN / BN ratio of a larger-is-rougher metric (`kind`: the normalization's short
    name, "GN" for a GroupNorm pair); from a per-seed range (fewer than MIN_BOOTSTRAP_SEEDS
    seeds) 'smoother with BN (every seed)', 'rougher with BN (every seed)' or 'seeds
    disagree'; 'no verdict (1 of 3 seeds have a ratio of their own)' where seeds are enough
    but some seed's ratio is undefined."""
    if estimate.basis == "seed range" and estimate.verdict in _RANGE_WORDS:
        return _RANGE_WORDS[estimate.verdict].format(**{"with": kind})
    if estimate.verdict == "no interval" and estimate.n_seeds >= 2:
        # Seeds enough, but a seed's own ratio (or the interval) is undefined, e.g. at matched
        # loss when a seed alone shares no loss range between the two models.
        if estimate.n_defined < estimate.n_seeds:
            return (f"no verdict ({estimate.n_defined} of {estimate.n_seeds} seeds have a "
                    "ratio of their own)")
        return "no verdict (the interval is undefined)"
    return _VERDICT_WORDS[estimate.verdict].format(**{"with": kind})


def shows_ratio(estimate: RatioEstimate) -> bool:
    """Whether a ratio is shown beside the estimate's verdict: not where it has none, nor where
    no seed has a ratio of its own (a ratio of the seeds pooled would read as a result)."""
    return math.isfinite(estimate.ratio) and not (estimate.n_seeds >= 2
                                                  and estimate.n_defined == 0)


def ratio_text(estimate: RatioEstimate) -> str:
    """The ratio as a table shows it: '-' where `shows_ratio` says none; '1.13 (seeds pooled)'
    where a per-seed range lacks a seed's own ratio, so that the ratio cannot be their
    median."""
    if not shows_ratio(estimate):
        return "-"
    text = f"{estimate.ratio:.3g}"
    if estimate.basis == "seed range" and estimate.n_defined < estimate.n_seeds:
        text += " (seeds pooled)"
    return text


def interval_note(n_seeds: int) -> str:
    """What the interval column of a table over `n_seeds` seeds holds, for its head."""
    basis = interval_basis(n_seeds)
    if basis == "bootstrap":
        return "95% bootstrap intervals over seeds (percentile; seeds resampled)"
    if basis == "seed range":
        return (f"with {n_seeds} seeds no bootstrap (it needs {MIN_BOOTSTRAP_SEEDS}): the "
                "ratio is the median of the single-seed ratios, beside the per-seed range "
                "(smallest to largest single-seed ratio), and a verdict only where every seed "
                "agrees")
    return "one seed: no interval"


def pair_verdict(runs_by_model: Mapping[str, Sequence[LoadedRun]], model_a: str, model_b: str,
                 *, metric_curves, n_bins: int = 6, norm: str = "bn") -> PairVerdict:
    """The verdict of `model_a` (no normalization) vs `model_b` (normalization `norm`) from
    their runs.

    `metric_curves(runs, parameter)` gives metric -> [(step, values)] per run (the comparison
    table's own curves, so both tables measure the same numbers). Runs are paired by seed; a
    seed that only one model has is left out.
    """
    runs_a, runs_b = runs_by_model[model_a], runs_by_model[model_b]
    seeds = tuple(sorted({r.seed for r in runs_a} & {r.seed for r in runs_b}))
    parameter = trajectory_source([*runs_a, *runs_b])
    # Per seed and model: metric -> (values, loss levels), pooled over the seed's runs.
    per_seed = {m: [_seed_values([r for r in runs if r.seed == s], parameter, metric_curves)
                    for s in seeds] for m, runs in ((model_a, runs_a), (model_b, runs_b))}
    rows = []
    for metric in VERDICT_METRICS:
        va = [d[metric][0] for d in per_seed[model_a] if metric in d]
        vb = [d[metric][0] for d in per_seed[model_b] if metric in d]
        if len(va) != len(seeds) or len(vb) != len(seeds) or not seeds:
            continue
        per_step = bootstrap_ratio(len(seeds), pooled_median_ratio(va, vb))
        matched = None
        if metric not in _NO_LOSS_LEVEL:
            la = [d[metric][1] for d in per_seed[model_a]]
            lb = [d[metric][1] for d in per_seed[model_b]]
            matched = _matched(va, la, vb, lb, n_bins)
        rows.append(MetricVerdict(metric, per_step, matched))
    plateaus = {m: tuple((r.lr, r.seed, _plateau(r), len(r.data.steps.step))
                         for r in runs if r.last_step is not None)
                for m, runs in ((model_a, runs_a), (model_b, runs_b))}
    return PairVerdict(model_a, model_b, seeds, probe_direction(runs_a[0]),
                       _setting(runs_a), _scale(runs_a, model_a), plateaus, tuple(rows), norm)


def _seed_values(runs: Sequence[LoadedRun], parameter, metric_curves) -> dict:
    """metric -> (values, smoothed training loss at their steps), over the runs of one seed.
    Run by run, so that every value is paired with its own run's training loss; the envelope
    across the seed's learning rates from all of them together (it has no single run's loss:
    NaN)."""
    values: dict[str, list] = {}
    levels: dict[str, list] = {}
    for run in runs:
        for metric, curves in metric_curves([run], parameter).items():
            for step, vals in curves:
                values.setdefault(metric, []).append(np.asarray(vals, dtype=np.float64))
                levels.setdefault(metric, []).append(
                    loss_at(step, run.data.steps.step, run.data.steps.loss))
    for metric in _NO_LOSS_LEVEL:
        curves = metric_curves(list(runs), parameter).get(metric, [])
        values[metric] = [np.asarray(v, dtype=np.float64) for _, v in curves]
        levels[metric] = [np.full(len(v), np.nan) for _, v in curves]
    return {m: (np.concatenate(values[m]), np.concatenate(levels[m]))
            for m in values if values[m]}


def _matched(va, la, vb, lb, n_bins: int) -> RatioEstimate | None:
    edges = common_loss_bins(np.concatenate(la), np.concatenate(lb), n_bins=n_bins)
    if not len(edges):
        return None

    def statistic(idx: np.ndarray) -> float:
        return matched_ratio(np.concatenate([va[i] for i in idx]),
                             np.concatenate([la[i] for i in idx]),
                             np.concatenate([vb[i] for i in idx]),
                             np.concatenate([lb[i] for i in idx]), edges=edges)

    estimate = bootstrap_ratio(len(va), statistic)
    return estimate if math.isfinite(estimate.ratio) else None


def _plateau(run: LoadedRun) -> Plateau:
    return detect_plateau(run.data.steps.step, run.data.steps.loss)


def _scale(runs: Sequence[LoadedRun], model: str) -> str:
    data = runs[0].record.data
    steps = max(len(r.data.steps.step) for r in runs)
    description = MODELS[model].description if model in MODELS else model
    n_train = data.get("n_train")
    images = (f", {n_train:,} training images" if isinstance(n_train, int)
              else " (your own loop's: landscape.Recorder)"
              if from_user_loop(runs[0].record.config) else ", ?")
    return (f"data: {data.get('name', '?')}{images}"
            f"{' (a subset of CIFAR-10: not CIFAR-10 results)' if data_subset(data) else ''}"
            f"; network: {description}; up to {steps:,} steps per run")


def data_subset(data: Mapping) -> bool:
    """Whether a record's data (its `data` header) is a subset of its dataset."""
    n_train = data.get("n_train")
    # The full training set has 50,000 images; anything less (or files other than the official
    # release) is a subset, and the line says so.
    return "subset" in str(data.get("name")) or (
        str(data.get("name")).startswith("cifar10")
        and (not isinstance(n_train, int) or n_train + int(data.get("n_val") or 0) < 50_000))


def _setting(runs: Sequence[LoadedRun]) -> str:
    """'adam, lr 0.001', or 'adam, lrs 0.0001, 0.001 pooled' for a verdict over several."""
    cfg = runs[0].record.config
    lrs = sorted({r.lr for r in runs})
    listed = ', '.join(f'{lr:g}' for lr in lrs)
    return f"{cfg.get('optimizer', '?')}, " + (f"lrs {listed} pooled" if len(lrs) > 1
                                               else f"lr {listed}")


def verdict_text(v: PairVerdict, notes: Sequence[str] = ()) -> str:
    """The verdict table, what it means, `notes` right under the table, and the plateaus, as
    plain text."""
    return "\n".join([*verdict_head(v), "", *verdict_table_lines(v), *notes, "",
                      *plateau_lines(v)])


def verdict_table_lines(v: PairVerdict) -> list[str]:
    """The verdict table as aligned text lines, its column names first."""
    table = [verdict_columns(len(v.seeds)), *verdict_table(v)]
    widths = [max(len(line[c]) for line in table) for c in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
            for line in table]


def verdict_head(v: PairVerdict) -> list[str]:
    """The lines above the verdict table: the pair, setting and seeds; the scale; what a ratio
    and its interval are."""
    seeds = (f"{len(v.seeds)} seeds ({', '.join(map(str, v.seeds))})" if len(v.seeds) > 1
             else f"1 seed ({v.seeds[0]}): no interval; record with --seeds 0,1,2 for one")
    k = v.kind
    return [f"{pair_title(v)}: {v.setting}; {direction_text(v.direction)}; {seeds}",
            v.scale,
            f"ratio = median without {k} / median with {k} (above 1: rougher without {k}, "
            f"i.e. smoother with {k}); {interval_note(len(v.seeds))}"]


def pair_title(v: PairVerdict) -> str:
    """'vgg (no BN) vs vgg_bn (BN)'; for another kind 'resnet (no normalization) vs
    resnet_gn (GN)'."""
    without = "no BN" if v.norm == "bn" else norm_short("none")
    return f"{v.model_a} ({without}) vs {v.model_b} ({v.kind})"


def verdict_columns(n_seeds: int) -> tuple[str, ...]:
    """The verdict table's column names for a pair of `n_seeds` seeds (the interval columns
    say what they are: a bootstrap interval, or the per-seed range with few seeds)."""
    interval = interval_name(n_seeds)
    return ("metric", "ratio, all steps", interval, "verdict",
            "ratio, matched loss", interval, "verdict")


def verdict_table(v: PairVerdict) -> list[tuple[str, ...]]:
    """The verdict table's rows as text cells, one per metric (`verdict_columns`); the text
    summary and the HTML report show the same cells."""
    table = []
    for row in v.rows:
        cells = [row.metric, *_estimate_cells(row.per_step, v.kind,
                                              v.caveats.get((row.metric, "all steps")))]
        cells += _estimate_cells(row.matched, v.kind,
                                 v.caveats.get((row.metric, "matched loss"))) \
            if row.matched is not None else \
            ["-", "", "no common loss range" if row.metric not in _NO_LOSS_LEVEL
             else "(per seed, across its lrs: no single run's loss)"]
        table.append(tuple(cells))
    return table


def _estimate_cells(e: RatioEstimate, kind: str, caveat: str | None = None) -> list[str]:
    if e.n_seeds < 2 or not (math.isfinite(e.low) and math.isfinite(e.high)):
        interval = "-"
    elif e.basis == "seed range" and math.isfinite(e.low) and math.isfinite(e.high):
        interval = f"{e.low:.3g} to {e.high:.3g}"  # the column's heading says what it is
    else:
        interval = e.interval_text()
    return [ratio_text(e), interval, verdict_words(e, kind) + (f"; {caveat}" if caveat else "")]


def plateau_lines(v: PairVerdict) -> list[str]:
    """Per model and lr: how many steps each seed's run spent on its initial plateau."""
    lines = ["Initial plateau: steps before the training loss (running mean over 10 steps) fell "
             "5% below its start",
             "(ln 10 = 2.30 on CIFAR-10). Per-step ratios over such steps compare a flat plateau "
             "with a training network; the matched-loss ratios do not."]
    for model, entries in v.plateaus.items():
        for lr in sorted({e[0] for e in entries}):
            runs = [e for e in entries if e[0] == lr]
            counts = ", ".join(("all " if p.whole_run else "") + f"{p.steps}"
                               for _, _, p, _ in runs)
            start = np.nanmedian([p.start_loss for _, _, p, _ in runs])
            total = max(n for *_, n in runs)
            lines.append(f"  {model} lr {lr:g}: {counts} of {total} steps"
                         f" (seed{'s' if len(runs) > 1 else ''} "
                         f"{', '.join(str(s) for _, s, _, _ in runs)}; starting loss "
                         f"{start:.3g})")
    return lines
