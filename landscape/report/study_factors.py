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
from landscape.report.ablation import ablation_cells, ablation_rows
from landscape.report.compare import NO_PAIR
from landscape.report.factors import axes_text, level_verdicts, verdict_changes
from landscape.report.runs import LoadedRun, report_axes
from landscape.report.study_blocks import Cell, Notes, Section, Table, verdict_cells


def has_factors(runs: Sequence[LoadedRun]) -> bool:
    return bool(report_axes([r for r in runs if r.last_step is not None]))


def level_verdict_section(runs: Sequence[LoadedRun]) -> Section:
    """One verdict table per cell of levels (the same cells as a record of that cell alone
    would show), after the sentences on where a verdict changes between levels."""
    finished = [r for r in runs if r.last_step is not None]
    verdicts = level_verdicts(finished)
    intro = (axes_text(runs),
             "Each table compares the networks within one combination of the levels: pooled "
             "over levels, a verdict would mix settings.")
    if not verdicts:
        return Section("levels", "Verdicts by level", (Notes((
            f"{NO_PAIR} in any cell: no verdict.",)),), intro)
    blocks = [Notes(tuple(verdict_changes(verdicts)), "Where the verdict depends on the levels")]
    for v in verdicts:
        table = verdict_cells(v.verdict)
        blocks.append(replace(table, caption=f"At {levels_text(v.levels)}: {table.caption}"))
    return Section("levels", "Verdicts by level", tuple(blocks), intro)


def ablation_section(runs: Sequence[LoadedRun]) -> Section:
    """The ablation table: a row per run group (model, levels, lr), each number the median over
    seeds with its interval (`report.ablation_rows`), the cell's exact median behind it."""
    rows = ablation_rows([r for r in runs if r.last_step is not None])
    if not rows:
        return Section("ablation", "Ablation table", (Notes(("No run with a recorded step.",)),))
    head, texts, keys = ablation_cells(rows)
    table_rows = []
    for row, cells in zip(rows, texts):
        table_rows.append(tuple(Cell(text, _value(row, key)) for text, key in zip(cells, keys)))
    interval = interval_name(max(len(row["seeds"]) for row in rows))
    return Section("ablation", "Ablation table", (Table(
        tuple(head), tuple(table_rows),
        caption="Per run group: medians over seeds, [the " + interval + " over seeds]",
        notes=("Accuracies in %, at each run's last evaluation (final) and its best one; "
               "seconds: each run's wall time; the landscape metrics are medians over the "
               "probed steps; '-': an axis that does not apply to the model, or no value.",)),))


def _value(row: dict, key: str) -> float | None:
    """The number behind a cell: the median (accuracies as fractions), or the lr."""
    value = row.get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
