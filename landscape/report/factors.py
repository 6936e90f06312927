"""Reports by factor: the runs of a record with axes (or of records combined) split into cells,
one per combination of the axes' levels, and the BN vs no-BN verdict within each cell.

A run carries its factors (`LoadedRun.factors`: the levels of its record's axes, and the
settings in which combined records differ). A run without a level of some axis (an axis that
does not apply to its model, such as BatchNorm's placement for a network without BatchNorm)
belongs to every level of that axis: it is the reference there. The verdict of a cell is
`compare.verdict` on the cell's runs alone, so it equals the verdict of a record made with that
cell's levels alone; `verdict_changes` says plainly where a verdict differs between the levels
of an axis (the other axes held fixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from analyses.confidence import interval_name
from landscape.config.axes import format_value, levels_text
from landscape.errors import ConfigError
from landscape.report.ablation import ablation_rows, ablation_text
from landscape.report.compare import _comparable_pairs, summary_text, verdict
from landscape.report.runs import LoadedRun, group_by_model, report_axes, run_notes
from landscape.report.verdicts import PairVerdict, verdict_words


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
    """The verdict of one BN pair within one cell."""

    levels: Mapping[str, Any]
    verdict: PairVerdict

    def to_text(self) -> str:
        return f"At {levels_text(self.levels)}:\n{self.verdict.to_text()}"


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


def level_verdicts(runs: Sequence[LoadedRun]) -> list[LevelVerdict]:
    """The verdict of every BN pair (X, X_bn) within every cell whose runs hold both, cells in
    order, pairs in model order (runs without a recorded step are left out)."""
    out = []
    for cell in factor_cells(runs):
        by_model = group_by_model([r for r in cell.runs if r.last_step is not None])
        for a, b in _comparable_pairs(by_model):
            out.append(LevelVerdict(dict(cell.levels), verdict(by_model, a, b)))
    return out


def verdict_changes(verdicts: Sequence[LevelVerdict]) -> list[str]:
    """Plain sentences on where a verdict differs between the levels of an axis, the other
    axes held fixed (per pair, metric and view: all steps, matched loss), and for each axis
    whose levels agree everywhere, that they do."""
    if not verdicts:
        return []
    axes = list(verdicts[0].levels)
    lines, changed = [], set()
    for axis in axes:
        groups: dict[tuple, list[LevelVerdict]] = {}
        for v in verdicts:
            others = tuple((k, x) for k, x in v.levels.items() if k != axis)
            groups.setdefault((v.verdict.model_a, v.verdict.model_b, others), []).append(v)
        for (a, b, others), group in groups.items():
            if len(group) < 2:
                continue
            for metric, view, words, kinds in _views(group):
                # The verdict itself (greater, less, unclear, none), not its words: two levels
                # without a verdict differ only in why ("1 of 3 seeds …" vs "0 of 3 …").
                if len(set(kinds)) > 1:
                    changed.add(axis)
                    at = f" (at {levels_text(dict(others))})" if others else ""
                    shown = "; ".join(f"{w} at {axis}={format_value(lv)} ({e})"
                                      for lv, w, e in words)
                    lines.append(f"{metric}, {view}, {a} vs {b}{at}: the verdict changes with "
                                 f"{axis}: {shown}")
    for axis in axes:
        values = list(dict.fromkeys(format_value(v.levels[axis]) for v in verdicts))
        if len(values) < 2:
            lines.append(f"Only one level of {axis} ({values[0]}) has a BN pair to compare.")
        elif axis not in changed:
            lines.append(f"The verdicts are the same at every level of {axis} "
                         f"({', '.join(values)}).")
    return lines


def _views(group: Sequence[LevelVerdict]):
    """(metric, view, [(level of the varied axis, verdict words, 'ratio [interval]')],
    [each level's verdict]) for every metric and view that each verdict of `group` has."""
    axis_value = [_varied_level(v, group) for v in group]
    metrics = [r.metric for r in group[0].verdict.rows]
    for metric in metrics:
        for view, get in (("all steps", lambda r: r.per_step),
                          ("matched loss", lambda r: r.matched)):
            estimates = []
            for v in group:
                rows = [r for r in v.verdict.rows if r.metric == metric]
                estimates.append(get(rows[0]) if rows else None)
            if any(e is None for e in estimates):
                continue
            yield metric, view, [(lv, verdict_words(e), f"ratio {e.ratio:.3g}, {e.interval_text()}")
                                 for lv, e in zip(axis_value, estimates)], \
                [e.verdict for e in estimates]


def _varied_level(v: LevelVerdict, group: Sequence[LevelVerdict]) -> Any:
    """The level of the axis that varies within `group` (the one key whose values differ)."""
    for key, value in v.levels.items():
        if len({repr(g.levels[key]) for g in group}) > 1:
            return value
    return None


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


def factor_summary(runs: Sequence[LoadedRun]) -> str | None:
    """The text of `summary.txt`: without factors, `compare.summary_text` of the runs; with
    them, the axes, where the verdict changes between levels, the verdict within every cell,
    and notes on runs that did not finish. Both end with the ablation table. None when there
    is no BN pair to compare and no factor."""
    finished = [r for r in runs if r.last_step is not None]
    rows = ablation_rows(finished)
    table = ablation_text(rows)
    seeds = max((len(row["seeds"]) for row in rows), default=1)
    ablation = (f"Ablation table (per run group; medians over seeds, each with its "
                f"{interval_name(seeds)} over seeds):\n" + table)
    if not report_axes(runs):
        text = summary_text(group_by_model(finished))
        return None if text is None else text + "\n" + ablation + "\n"
    verdicts = level_verdicts(finished)
    parts = [axes_text(runs)]
    if verdicts:
        parts.append("Where the BN vs no-BN verdict depends on the levels:\n"
                     + "\n".join(f"  {line}" for line in verdict_changes(verdicts)))
        parts += [v.to_text() for v in verdicts]
    else:
        parts.append("No model X with its BatchNorm variant X_bn in any cell: no verdict.")
    parts.append(ablation)
    notes = run_notes(runs)
    if notes:
        parts.append("Runs that did not finish as planned:\n" + "\n".join(f"  {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


__all__ = ["FactorCell", "LevelVerdict", "report_axes", "factor_cells", "level_verdicts",
           "verdict_changes",
           "axes_text", "factor_summary"]
