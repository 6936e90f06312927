"""The blocks of a study's report (`landscape.report.study`): plain text cells that carry the
numbers behind them, tables, label-value facts, notes, sections, and the verdict table of one
BN pair as such a table. No HTML here: the template of `landscape.page` renders whatever rows a
table has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from analyses.confidence import RatioEstimate
from landscape.report.verdicts import (PairVerdict, shows_ratio, verdict_columns, verdict_head,
                                       verdict_table)


@dataclass(frozen=True)
class Cell:
    """What a table cell shows, and the number behind it (full precision; None for words), so
    that a reader of the page (or a test) can check and sort by the exact value."""

    text: str
    value: float | None = None


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    notes: tuple[str, ...] = ()  # under the table
    intro: tuple[str, ...] = ()  # above it (what its numbers are)
    kind: str = "table"


@dataclass(frozen=True)
class Facts:
    """Label-value lines (what was run)."""

    items: tuple[tuple[str, str], ...]
    caption: str = ""
    kind: str = "facts"


@dataclass(frozen=True)
class Notes:
    lines: tuple[str, ...]
    caption: str = ""
    intro: str = ""  # a paragraph before the lines
    emphasis: bool = False  # what a table beside it would hide: shown as a finding, not aside
    kind: str = "notes"


Block = Union[Facts, Table, Notes]


@dataclass(frozen=True)
class Section:
    key: str  # a stable id ("run", "verdict-vgg-vgg_bn", "accuracy", "runs", "warnings")
    title: str
    blocks: tuple[Block, ...] = ()
    intro: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyReport:
    """The page's sections, in order, and its title."""

    title: str
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections: {', '.join(s.key for s in self.sections)}")


def _ratio_cells(estimate: RatioEstimate | None, texts: Sequence[str]) -> list[Cell]:
    """The three cells (ratio, interval, verdict) of one estimate: the verdict module's own
    text, with the exact ratio behind the first (an interval has no single number)."""
    if estimate is None:
        return [Cell(t) for t in texts]
    ratio = float(estimate.ratio)
    return [Cell(texts[0], ratio if shows_ratio(estimate) else None), Cell(texts[1]),
            Cell(texts[2])]


def verdict_cells(v: PairVerdict) -> Table:
    """The verdict table of one pair, cell for cell the text summary's (`verdict_table`)."""
    rows = []
    for row, texts in zip(v.rows, verdict_table(v)):
        rows.append((Cell(texts[0]), *_ratio_cells(row.per_step, texts[1:4]),
                     *_ratio_cells(row.matched, texts[4:7])))
    head = verdict_head(v)
    return Table(verdict_columns(len(v.seeds)), tuple(rows), caption=head[0], intro=tuple(head[1:]))
