"""Figures faceted by the axes of a record (or of records combined): one panel per cell, i.e.
per combination of the axes' levels (`report.factor_cells`), so that "does BN's smoothing hold
at every batch size?" is read off side by side.

The last axis runs along the columns and the one before it along the rows; with more than two
axes, each combination of the others gets a figure of its own (`facet_groups`), which keeps 2–3
axes of 2–4 levels readable. Panels are drawn by the single-panel functions, in the same
colors, with the same y range across the panels of a figure.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.config.axes import levels_text
from landscape.plot._style import literal_text, _empty, _figure_and_grid
from landscape.plot.paper import plot_paper
from landscape.report import FactorCell

PANEL_SIZE = (5.2, 3.8)  # inches per panel of an envelope grid


def facet_groups(cells: Sequence[FactorCell]
                 ) -> list[tuple[dict, list[list[FactorCell | None]]]]:
    """(the levels the figure holds fixed, its rows × columns of cells) per figure: columns
    over the last axis, rows over the one before it (None where a combination has no runs)."""
    if not cells or not cells[0].levels:
        return [({}, [[cell] for cell in cells])]
    names = list(cells[0].levels)
    col_axis, row_axis = names[-1], (names[-2] if len(names) > 1 else None)
    fixed_names = names[:-2]
    groups: dict[tuple, list[FactorCell]] = {}
    for cell in cells:
        groups.setdefault(tuple(cell.levels[n] for n in fixed_names), []).append(cell)
    out = []
    for fixed, members in groups.items():
        cols = list(dict.fromkeys(c.levels[col_axis] for c in members))
        rows = list(dict.fromkeys(c.levels[row_axis] for c in members)) if row_axis else [None]
        grid = [[next((c for c in members if c.levels[col_axis] == cv
                       and (row_axis is None or c.levels[row_axis] == rv)), None)
                 for cv in cols] for rv in rows]
        out.append((dict(zip(fixed_names, fixed)), grid))
    return out


@literal_text
def plot_facets(cells: Sequence[FactorCell], draw: Callable[[FactorCell, Axes], bool | str],
                *, title: str, share_y: bool = True) -> list[tuple[dict, Figure]]:
    """One figure per group of `facet_groups`: `draw(cell, ax)` fills a panel and returns True,
    or False (or why, as a string shown in the panel) when it drew nothing; the panel's title
    names the cell's levels, the figure's is `title` and the levels it holds fixed."""
    out = []
    for fixed, grid in facet_groups(cells):
        rows, cols = len(grid), len(grid[0])
        fig, axes = _figure_and_grid(None, rows, cols,
                                     (PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + 0.8))
        drawn = []
        for r, row in enumerate(grid):
            for c, cell in enumerate(row):
                ax = axes[r][c]
                drew = draw(cell, ax) if cell is not None else "no runs at these levels"
                if drew is not True:
                    _empty(ax, drew if isinstance(drew, str) else "nothing to draw")
                    ax.set_title(cell.label if cell else "", fontsize=9)
                    continue
                ax.set_title(cell.label, fontsize=10)  # each keeps its legend: cells differ
                drawn.append(ax)
        if share_y and drawn:
            _share_y(drawn)
        fixed_text = f" at {levels_text(fixed)}" if fixed else ""
        fig.suptitle(title + fixed_text, fontsize=11)
        out.append((fixed, fig))
    return out


def title_levels(fig: Figure, label: str) -> None:
    """Start a figure's title with a line of the levels it is drawn at ("At batch_size=16"),
    for figures drawn once per cell (a line of its own: the title's lines keep their width)."""
    # matplotlib keeps the suptitle's Text here: set_text keeps the size the figure chose.
    title = fig._suptitle
    if title is None:
        fig.suptitle(f"At {label}", fontsize=11)
    else:
        title.set_text(f"At {label}\n{title.get_text()}")


def _share_y(axes: Sequence[Axes]) -> None:
    """The same y range (and scale) in every panel: the union of their own ranges."""
    log = any(ax.get_yscale() == "log" for ax in axes)
    lows, highs = zip(*(ax.get_ylim() for ax in axes))
    low, high = min(lows), max(highs)
    for ax in axes:
        if log:
            ax.set_yscale("log")
        ax.set_ylim(low if not log or low > 0 else min(l for l in lows if l > 0), high)


@literal_text
def plot_paper_facets(cells_data: Sequence[tuple[FactorCell, object]], *,
                      colors: Mapping[str, str]) -> Figure:
    """The paper's three panels (`plot_paper`) once per cell, one row per cell, each row
    titled with its levels. `cells_data`: (cell, PaperData at one lr) pairs."""
    rows = len(cells_data)
    fig, grid = _figure_and_grid(None, rows, 3, (16, 4.6 * rows + 1.0))
    lr = None
    for row, (cell, data) in zip(grid, cells_data):
        plot_paper(data, axes=row, colors=colors)
        lr = data.lr
        for ax in row:
            ax.set_title(f"{cell.label}\n{ax.get_title()}", fontsize=9)
        for ax in row[1:]:
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
    for column in zip(*grid):  # each quantity on one y range down the rows
        _share_y(column)
    if rows:
        fig.suptitle(f"Paper's measurement per level, lr = {lr:g}: loss band, gradient "
                     f"predictiveness and effective β (median over seeds)", fontsize=11)
    return fig


__all__ = ["facet_groups", "plot_facets", "plot_paper_facets", "title_levels", "PANEL_SIZE"]
