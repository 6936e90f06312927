"""The report page's sections for a study with factors (a record's axes, or records combined
that differ in a setting): the BN vs no-BN verdict within every cell of levels with the
sentences on where it changes, and the ablation table. The numbers are those of `summary.txt`
(`report.factors`, `report.ablation`), as cells that carry them."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

from analyses.confidence import interval_name
from landscape.config.axes import levels_text
from landscape.report.ablation import ablation_cells, ablation_rows, timing_cells
from landscape.report.compare import NO_PAIR
from landscape.report.factors import (VerdictGroup, axes_text, verdict_changes,
                                      verdict_groups)
from landscape.report.runs import LoadedRun, report_axes
from landscape.report.study_blocks import Block, Cell, Notes, Section, Table, verdict_cells


def has_factors(runs: Sequence[LoadedRun]) -> bool:
    return bool(report_axes([r for r in runs if r.last_step is not None]))


def level_verdict_section(runs: Sequence[LoadedRun]) -> Section:
    """One verdict table per cell of levels (the same cells as a record of that cell alone
    would show), after the sentences on where a verdict changes between levels; a cell of
    several learning rates has its pooled table followed by the verdict at each lr."""
    finished = [r for r in runs if r.last_step is not None]
    groups = verdict_groups(finished)
    intro = (axes_text(runs),
             "Each table compares the networks within one combination of the levels: pooled "
             "over levels, a verdict would mix settings.")
    if not groups:
        return Section("levels", "Verdicts by level", (Notes((
            f"{NO_PAIR} in any cell: no verdict.",)),), intro)
    changes = verdict_changes([v for g in groups for v in g.finest])
    blocks = [Notes(tuple(changes), "Where the verdict depends on the levels", emphasis=True)]
    for group in groups:
        table = verdict_cells(group.pooled.verdict)
        blocks.append(replace(table, caption=f"At {group.pooled.label}: {table.caption}"))
        blocks += lr_blocks(group)
    return Section("levels", "Verdicts by level", tuple(blocks), intro)


def lr_blocks(group: VerdictGroup) -> list[Block]:
    """Under a verdict pooled over several learning rates: what changes between them, then the
    verdict table at each lr (nothing with one lr)."""
    if not group.per_lr:
        return []
    blocks: list[Block] = [Notes(tuple(group.lr_lines()), "The verdict at each learning rate",
                                 "The table above pools the learning rates; at each one alone:",
                                 emphasis=True)]
    for v in group.per_lr:
        table = verdict_cells(v.verdict)
        # The lines under the caption (data, network, what a ratio is) are the pooled table's.
        blocks.append(replace(table, caption=f"At {v.label}: {table.caption}", intro=()))
    return blocks


def ablation_section(runs: Sequence[LoadedRun]) -> Section:
    """The ablation table: a row per run group (model, levels, lr), each number the median over
    seeds with its interval (`report.ablation_rows`), the cell's exact median behind it; the
    wall-clock time per group in a table of its own (the machine's, not a result)."""
    rows = ablation_rows([r for r in runs if r.last_step is not None])
    if not rows:
        return Section("ablation", "Ablation table", (Notes(("No run with a recorded step.",)),))
    interval = interval_name(max(len(row["seeds"]) for row in rows))
    results = _table(rows, ablation_cells(rows),
                     caption="Per run group: medians over seeds, [the " + interval +
                             " over seeds]",
                     notes=("Accuracies in %, at each run's last evaluation (final) and its "
                            "best one; the landscape metrics are medians over the probed "
                            "steps; '-': an axis that does not apply to the model, or no "
                            "value.",))
    timings = _table(rows, timing_cells(rows),
                     caption="Wall-clock time per run group: median over seeds, [the "
                             + interval + "]",
                     notes=("The machine's time, not a result: it depends on the device, "
                            "its load and the measurements recorded.",))
    return Section("ablation", "Ablation table", (results, timings))


def _table(rows: Sequence[dict], cells: tuple[list[str], list[list[str]], list[str]], *,
           caption: str, notes: tuple[str, ...]) -> Table:
    head, texts, keys = cells
    table_rows = tuple(tuple(Cell(text, _value(row, key)) for text, key in zip(line, keys))
                       for row, line in zip(rows, texts))
    return Table(tuple(head), table_rows, caption=caption, notes=notes)


def _value(row: dict, key: str) -> float | None:
    """The number behind a cell, in the unit it is shown in (accuracies in %), or the lr."""
    value = row.get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    scale = 100.0 if key.endswith("_acc") else 1.0
    return float(value) * scale if math.isfinite(value) else None
