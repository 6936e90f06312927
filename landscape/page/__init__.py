"""One self-contained HTML page per study (`landscape report`): the sections of
`landscape.report.study_report` and every figure of `landscape.plot.all_figures` (inline PNGs),
rendered by a Jinja2 template. The page computes nothing itself: numbers come from
`landscape.report`, figures and their captions from `landscape.plot`."""

from landscape.page.html import FigureBlock, figure_blocks, render_report, report_html, write_report

__all__ = ["FigureBlock", "figure_blocks", "render_report", "report_html", "write_report"]
