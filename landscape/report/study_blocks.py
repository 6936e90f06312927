"""The blocks of a study's report (`landscape.report.study`): plain text cells that carry the
numbers behind them, tables, label-value facts, notes, sections. No HTML here: the template of
`landscape.page` renders whatever rows a table has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


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
