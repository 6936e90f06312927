"""A study's report as one HTML file: figures drawn by `landscape.plot`, rendered to PNG in
memory and inlined as data: URIs (no network, no side files), and the sections of
`landscape.report.study_report` filled into `templates/report.html.j2`."""

from __future__ import annotations

import base64
import datetime
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import jinja2
from markupsafe import Markup, escape
from matplotlib.figure import Figure

from landscape.errors import ConfigError
from landscape.plot import all_figures
from landscape.plot.captions import figure_caption
from landscape.report import LoadedRun, load_runs
from landscape.report.study import Section, StudyReport, study_report
from landscape.store import check_output, write_output
from landscape.version import __version__

# Figures go before the table of runs: the page reads verdict, accuracy, pictures, details.
_FIGURES_BEFORE = "runs"


@dataclass(frozen=True)
class FigureBlock:
    """One figure of the page: its stem (as `landscape plot` names the file), its caption and
    the PNG as a data: URI."""

    name: str
    caption: str
    src: str
    width: int  # pixels of the PNG
    height: int
    kind: str = "figure"


def figure_blocks(figures: dict[str, Figure], *, dpi: int = 100) -> tuple[FigureBlock, ...]:
    """Each figure as an inline PNG with its caption from `landscape.plot.captions`."""
    blocks = []
    for name, figure in figures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        width, height = (round(v) for v in figure.get_size_inches() * dpi)
        src = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        blocks.append(FigureBlock(name, figure_caption(name), src, width, height))
    return tuple(blocks)


def report_html(study: StudyReport, figures: Sequence[FigureBlock], *,
                sources: Sequence[str] = ()) -> str:
    """The page: `study`'s sections with a "Figures" section (one block per figure) before the
    runs table."""
    sections = list(study.sections)
    where = next((i for i, s in enumerate(sections) if s.key == _FIGURES_BEFORE), len(sections))
    if figures:
        sections.insert(where, Section("figures", "Figures", tuple(figures)))
    template = _environment().get_template("report.html.j2")
    return template.render(
        study=replace(study, sections=tuple(sections)),
        version=__version__, sources=list(sources),
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def render_report(runs: Sequence[LoadedRun], *, smooth: int | None = None,
                  dpi: int = 100) -> str:
    """The HTML page of the runs of one or more records (`landscape.report.load_runs`)."""
    study = study_report(runs)
    drawable = [r for r in runs if r.last_step is not None]
    figures = figure_blocks(all_figures(drawable, smooth=smooth), dpi=dpi) if drawable else ()
    sources = list(dict.fromkeys(str(r.source) for r in runs))
    return report_html(study, figures, sources=sources)


def write_report(records: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 smooth: int | None = None, dpi: int = 100) -> Path:
    """Write the report of `records` to the HTML file `out` (its folder is created if
    needed); returns the path."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"-o {out} is a folder; give the HTML file to write, e.g. "
                          f"{out / 'report.html'}")
    # Before anything is computed: a record, an input or a file being written is no page's
    # place (landscape.store.check_output).
    check_output(out, inputs=records)
    page = render_report(load_runs(records), smooth=smooth, dpi=dpi)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    check_output(out, inputs=records)  # again: the page took a while to draw
    return write_output(out, lambda file: file.write(page.encode("utf-8")))


def split_interval(text: str) -> tuple[str, str]:
    """A number cell's text as (the number, its interval): '45.0 [44.1, 46.0]' ->
    ('45.0', '[44.1, 46.0]'), so that the page sets the interval under the number and a wide
    table fits; ('1.3', '') for a cell without one."""
    number, bracket, rest = text.partition(" [")
    return (number, bracket.strip() + rest) if bracket and rest.endswith("]") else (text, "")


def breakable(text: str) -> Markup:
    """`text`, escaped, with a line-break opportunity after each underscore, so that a narrow
    column breaks 'loss_band_width' at its parts rather than widening the table."""
    return escape(text).replace("_", Markup("_<wbr>"))


def _environment() -> jinja2.Environment:
    # Autoescape: run ids, notes and record names are text, never markup. StrictUndefined: a
    # misspelt field in the template fails the render instead of printing nothing.
    env = jinja2.Environment(loader=jinja2.PackageLoader("landscape.page", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["split_interval"] = split_interval
    env.filters["breakable"] = breakable
    return env
