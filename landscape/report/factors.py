"""Reports by factor: the runs of a record with axes (or of records combined) split into cells,
one per combination of the axes' levels, and the BN vs no-BN verdict within each cell.

A run carries its factors (`LoadedRun.factors`: the levels of its record's axes, and the
settings in which combined records differ). A run without a level of some axis (an axis that
does not apply to its model, such as BatchNorm's placement for a network without BatchNorm)
belongs to every level of that axis: it is the reference there. The verdict of a cell is
`compare.verdict` on the cell's runs alone, so it equals the verdict of a record made with that
cell's levels alone; `verdict_changes` says plainly where a verdict differs between the levels
of an axis (the other axes held fixed).

The learning rate is a level like any other: where a cell holds several learning rates, its
verdict pooled over them (the course's view: its envelope metric spans the lrs) comes with the
verdict at each lr (`VerdictGroup`), and the sentences say where the verdict changes with the lr,
so that a pooled verdict never hides a reversal at one learning rate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from analyses.confidence import interval_name
from landscape.config.axes import format_value, levels_text
from landscape.errors import ConfigError
from landscape.report.ablation import ablation_rows, ablation_text
from landscape.report.compare import NO_PAIR, _comparable_pairs, summary_text, verdict
from landscape.report.runs import LoadedRun, group_by_model, report_axes, run_notes
from landscape.report.verdicts import (PairVerdict, shows_ratio, verdict_head,
                                       verdict_table_lines, verdict_words)


@dataclass(frozen=True, eq=False)
class FactorCell:
    """The runs at one combination of the axes' levels (axis -> value, in the axes' order),
    with the runs shared by every level of an axis that does not apply to their model."""

    levels: Mapping[str, Any]
    runs: tuple[LoadedRun, ...]

    @property
    def label(self) -> str:
        return levels_text(self.levels) or "all runs"


@dataclass(frozen=True)
class LevelVerdict:
    """The verdict of one BN pair within one cell (its levels; "lr" where the verdict is that
    of one learning rate of several)."""

    levels: Mapping[str, Any]
    verdict: PairVerdict
    pooled_lrs: tuple[float, ...] = ()  # the cell's lrs, where this verdict pools several

    @property
    def label(self) -> str:
        """'batch_size=128, lr=0.001', with 'lrs 0.001, 0.002 pooled' where it pools them."""
        pooled = (f"lrs {', '.join(f'{lr:g}' for lr in self.pooled_lrs)} pooled"
                  if self.pooled_lrs else "")
        return ", ".join(t for t in (levels_text(self.levels), pooled) if t) or "all runs"

    def to_text(self) -> str:
        return f"At {self.label}:\n{self.verdict.to_text()}"


@dataclass(frozen=True)
class VerdictGroup:
    """One BN pair within one cell of the axes' levels: its verdict over the cell's learning
    rates pooled, and with several lrs the verdict at each (empty with one lr)."""

    pooled: LevelVerdict
    per_lr: tuple[LevelVerdict, ...] = ()

    @property
    def finest(self) -> tuple[LevelVerdict, ...]:
        """The verdicts that pool no level: the per-lr ones, or the pooled one with one lr."""
        return self.per_lr or (self.pooled,)

    def lr_lines(self) -> list[str]:
        """What changes between the learning rates (`verdict_changes`), for the lines under
        the pooled verdict; none with one lr."""
        return verdict_changes(self.per_lr) if self.per_lr else []


# The most cells (combinations of levels that runs hold) a report splits runs into: far above
# any study (a 3-axis ablation of 5 levels each has 125), and far below what exhausts a
# machine drawing a panel per cell.
MAX_CELLS = 1000


def factor_cells(runs: Sequence[LoadedRun]) -> list[FactorCell]:
    """One cell per combination of the axes' levels that the runs hold (the first axis
    varying slowest); a single cell of every run without axes. Only combinations of levels
    that runs hold are built (never the product of every axis: records that differ in many
    settings make few combinations of many levels); more than MAX_CELLS is refused."""
    axes = report_axes(runs)
    if not axes:
        return [FactorCell({}, tuple(runs))]
    # Axis by axis, the partial combinations and the runs that agree with them; a level is
    # tried only where one of those runs holds it.
    partial: list[tuple[dict[str, Any], list[LoadedRun]]] = [({}, list(runs))]
    for axis in axes:
        grown = []
        for levels, members in partial:
            held = [v for v in axis.values
                    if any(r.factors.get(axis.name, _ABSENT) == v for r in members)]
            for value in held:
                grown.append(({**levels, axis.name: value},
                              [r for r in members if r.factors.get(axis.name, value) == value]))
            if len(grown) > MAX_CELLS:
                raise ConfigError(
                    f"the runs make more than {MAX_CELLS:,} combinations of the levels of "
                    f"{', '.join(a.name for a in axes)} (the settings they vary or their "
                    f"records differ in); report fewer records at a time")
        partial = grown
    out = []
    for levels, members in partial:
        # A combination is held when each of its levels is some member's own (not only the
        # shared references').
        if all(any(r.factors.get(k) == v for r in members) for k, v in levels.items()):
            out.append(FactorCell(levels, tuple(members)))
    return out


_ABSENT = object()


LR = "lr"  # the level name of a verdict at one learning rate


def verdict_groups(runs: Sequence[LoadedRun]) -> list[VerdictGroup]:
    """Every pair (X and its normalized twin X_bn, X_gn, ...: `compare.norm_pairs`) within
    every cell whose runs hold both, cells in order, pairs in model order (runs without a recorded step are left out): its verdict over the cell's lrs,
    and where the cell holds several lrs, its verdict at each lr that holds both models."""
    out = []
    for cell in factor_cells(runs):
        finished = [r for r in cell.runs if r.last_step is not None]
        by_model = group_by_model(finished)
        lrs = sorted({r.lr for r in finished})
        for a, b in _comparable_pairs(by_model):
            per_lr = []
            for lr in lrs if len(lrs) > 1 else ():
                at_lr = group_by_model([r for r in finished if r.lr == lr])
                if (a, b) in _comparable_pairs(at_lr):
                    per_lr.append(LevelVerdict({**cell.levels, LR: lr}, verdict(at_lr, a, b)))
            pooled = verdict(by_model, a, b)
            if per_lr:
                pooled = replace(pooled, caveats=_caveats(pooled, per_lr))
            out.append(VerdictGroup(LevelVerdict(dict(cell.levels), pooled,
                                                 tuple(lrs) if per_lr else ()), tuple(per_lr)))
    return out


def _caveats(pooled: PairVerdict, per_lr: Sequence[LevelVerdict]) -> dict[tuple[str, str], str]:
    """(metric, view) -> 'at lr 0.0001: rougher with BN' where the verdict at some lr differs
    from the pooled one (greater, less, unclear, none), for the pooled verdict's cell."""
    out = {}
    for row in pooled.rows:
        for view, get in _VIEWS:
            estimate = get(row)
            if estimate is None:
                continue
            differ: dict[str, list[str]] = {}
            for v in per_lr:
                at = [get(r) for r in v.verdict.rows if r.metric == row.metric]
                if at and at[0] is not None and _kind(at[0]) != _kind(estimate):
                    differ.setdefault(_words(at[0], pooled.kind), []).append(format_value(v.levels[LR]))
            if differ:
                out[(row.metric, view)] = "; ".join(f"at lr {', '.join(lrs)}: {words}"
                                                    for words, lrs in differ.items())
    return out


def level_verdicts(runs: Sequence[LoadedRun]) -> list[LevelVerdict]:
    """The verdict of every BN pair (X, X_bn) within every cell of levels, the learning rate
    one of them where the runs hold several (`verdict_groups`' finest verdicts): cells in
    order, pairs in model order, lrs ascending."""
    return [v for group in verdict_groups(runs) for v in group.finest]


def verdict_changes(verdicts: Sequence[LevelVerdict]) -> list[str]:
    """Plain sentences on where a verdict differs between the levels of an axis (the learning
    rate included), the other levels held fixed (per pair, metric and view: all steps, matched
    loss), each naming the levels of every verdict with their ratios and intervals ('smoother
    with BN (every seed) at lr 0.0005 (1.4 [1.3, 1.5]), 0.001 (1.3 [1.2, 1.4]); rougher with BN
    (every seed) at lr 0.0001 (0.25 [0.2, 0.3])'), and for each axis whose levels agree
    everywhere, that they do."""
    if not verdicts:
        return []
    axes = list(dict.fromkeys(k for v in verdicts for k in v.levels))
    lines, changed = [], set()
    for axis in axes:
        groups: dict[tuple, list[LevelVerdict]] = {}
        for v in verdicts:
            if axis not in v.levels:
                continue
            others = tuple((k, x) for k, x in v.levels.items() if k != axis)
            groups.setdefault((v.verdict.model_a, v.verdict.model_b, others), []).append(v)
        for (a, b, others), group in groups.items():
            if len(group) < 2:
                continue
            for metric, view, shown, kinds in _views(group, axis):
                # The verdict itself (`_kind`), not its words: two levels without a verdict
                # differ only in why ("1 of 3 seeds …" vs "0 of 3 …").
                if len(set(kinds)) > 1:
                    changed.add(axis)
                    at = f" (at {levels_text(dict(others))})" if others else ""
                    lines.append(f"{metric}, {view}, {a} vs {b}{at}: the verdict changes with "
                                 f"{axis}: {shown}")
    for axis in axes:
        values = list(dict.fromkeys(format_value(v.levels[axis]) for v in verdicts
                                    if axis in v.levels))
        if len(values) < 2:
            lines.append(f"Only one level of {axis} ({values[0]}) has a BN pair to compare.")
        elif axis not in changed:
            lines.append(f"The verdicts are the same at every level of {axis} "
                         f"({', '.join(values)}).")
    return lines


def _views(group: Sequence[LevelVerdict], axis: str):
    """(metric, view, the levels of `axis` grouped by verdict as one text, each level's
    verdict) for every metric and view that some verdict of `group` has; a level without it
    (no common loss range there) is said so."""
    metrics = list(dict.fromkeys(r.metric for v in group for r in v.verdict.rows))
    for metric in metrics:
        for view, get in _VIEWS:
            estimates = []
            for v in group:
                rows = [r for r in v.verdict.rows if r.metric == metric]
                estimates.append(get(rows[0]) if rows else None)
            if all(e is None for e in estimates):
                continue
            words: dict[str, list[str]] = {}
            for v, e in zip(group, estimates):
                said = _NOT_AT_LEVEL if e is None else _words(e, v.verdict.kind)
                words.setdefault(said, []).append(format_value(v.levels[axis]) + _brief(e))
            shown = "; ".join(f"{w} at {axis} {', '.join(levels)}" for w, levels in words.items())
            yield metric, view, shown, [_kind(e) for e in estimates]


def _kind(estimate):
    """What counts as the verdict when levels are compared: greater, less, unclear or no
    interval; with a single seed (no interval, only a ratio) also the side of 1 the ratio is
    on, so that a ratio of 0.23 at one lr and 1.6 at the others is said to change."""
    if estimate is None:
        return None
    if estimate.n_seeds < 2 and math.isfinite(estimate.ratio):
        return estimate.verdict, estimate.ratio > 1
    return estimate.verdict


def _words(estimate, kind: str = "BN") -> str:
    """`verdict_words` (`kind`: the normalization's short name), with a single seed's side of 1
    ('no interval (1 seed), ratio below 1')."""
    words = verdict_words(estimate, kind)
    if estimate.n_seeds < 2 and math.isfinite(estimate.ratio):
        words += f", ratio {'above' if estimate.ratio > 1 else 'below'} 1"
    return words


def _brief(estimate) -> str:
    """' (1.3 [1.2, 1.4])': a level's ratio and its interval (per-seed range or bootstrap, as
    the tables' heads say) in a sentence; '' where no ratio is shown."""
    if estimate is None or not shows_ratio(estimate):
        return ""
    interval = (f" [{estimate.low:.3g}, {estimate.high:.3g}]"
                if math.isfinite(estimate.low) and math.isfinite(estimate.high) else "")
    return f" ({estimate.ratio:.3g}{interval})"


_NOT_AT_LEVEL = "not measured (no common loss range, or no such metric)"
_VIEWS = (("all steps", lambda r: r.per_step), ("matched loss", lambda r: r.matched))


def axes_text(runs: Sequence[LoadedRun]) -> str:
    """'Axes: batch_size = 128, 256; norm_placement = conv, all (vgg_light_bn only)'."""
    parts = []
    for axis in report_axes(runs):
        models = list(dict.fromkeys(r.model for r in runs if axis.name in r.factors))
        every = list(dict.fromkeys(r.model for r in runs))
        only = f" ({', '.join(models)} only; the others serve every level)" \
            if models != every else ""
        parts.append(f"{axis.name} = {', '.join(map(format_value, axis.values))}{only}")
    return "Axes: " + "; ".join(parts)


def lr_note(group: VerdictGroup) -> list[str]:
    """The lines under a verdict pooled over learning rates: what changes between them (no
    lines with one lr)."""
    if not group.per_lr:
        return []
    return ["At each learning rate alone:",
            *(f"  {line}" for line in group.lr_lines())]


def verdict_digest(runs: Sequence[LoadedRun]) -> str | None:
    """The verdicts at a glance, as `summary.txt` begins them: per BN pair (and cell of levels)
    the first line of its verdict's head, its table, and what changes between the learning
    rates it pools; None without a pair. (`make demo` ends with it; the README shows it.)"""
    groups = verdict_groups([r for r in runs if r.last_step is not None])
    if not groups:
        return None
    parts = []
    for group in groups:
        v = group.pooled.verdict
        at = f"At {group.pooled.label}: " if group.pooled.levels else ""
        parts.append("\n".join([at + verdict_head(v)[0], *verdict_table_lines(v),
                                *lr_note(group)]))
    return "\n\n".join(parts)


def factor_summary(runs: Sequence[LoadedRun]) -> str | None:
    """The text of `summary.txt`: without factors, `compare.summary_text` of the runs, each
    verdict pooled over several learning rates followed by what changes between them and the
    verdict at each; with factors, the axes, where the verdict changes between levels (the lr
    one of them), the verdict within every cell (and at each of its lrs), and notes on runs
    that did not finish. Both end with the ablation table. None when there is no BN pair to
    compare and no factor."""
    finished = [r for r in runs if r.last_step is not None]
    rows = ablation_rows(finished)
    table = ablation_text(rows)
    seeds = max((len(row["seeds"]) for row in rows), default=1)
    ablation = (f"Ablation table (per run group; medians over seeds, each with its "
                f"{interval_name(seeds)} over seeds):\n" + table)
    if rows:
        ablation += ("\n\nWall-clock time (the machine's, not a result; median over seeds "
                     f"[{interval_name(seeds)}]):\n" + ablation_text(rows, timings=True))
    groups = verdict_groups(finished)
    if not report_axes(runs):
        pairs = [(g.pooled.verdict.model_a, g.pooled.verdict.model_b) for g in groups]
        text = summary_text(group_by_model(finished),
                            verdicts={p: g.pooled.verdict for p, g in zip(pairs, groups)},
                            verdict_notes={p: lr_note(g) for p, g in zip(pairs, groups)})
        if text is None:
            return None
        per_lr = [v.to_text() for g in groups for v in g.per_lr]
        if per_lr:
            text += "\n" + "\n\n".join(["The verdict at each learning rate:", *per_lr]) + "\n"
        return text + "\n" + ablation + "\n"
    parts = [axes_text(runs)]
    if groups:
        changes = verdict_changes([v for g in groups for v in g.finest])
        parts.append("Where the BN vs no-BN verdict depends on the levels:\n"
                     + "\n".join(f"  {line}" for line in changes))
        for g in groups:
            parts.append(f"At {g.pooled.label}:\n" + g.pooled.verdict.to_text(lr_note(g)))
            parts += [v.to_text() for v in g.per_lr]
    else:
        parts.append(f"{NO_PAIR} in any cell: no verdict.")
    parts.append(ablation)
    notes = run_notes(runs)
    if notes:
        parts.append("Runs that did not finish as planned:\n" + "\n".join(f"  {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


__all__ = ["FactorCell", "LevelVerdict", "VerdictGroup", "report_axes", "factor_cells",
           "level_verdicts", "verdict_groups", "verdict_changes", "lr_note", "verdict_digest",
           "axes_text", "factor_summary"]
