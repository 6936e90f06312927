"""`landscape report`: one self-contained HTML page of a study (its records' runs)."""

from __future__ import annotations

from pathlib import Path

import click

from landscape.cli.common import user_errors
from landscape.page import write_report


@click.command(short_help="Write one self-contained HTML report of one or more records.")
@click.argument("records", metavar="RECORD.h5 [MORE.h5 ...]", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="The HTML file to write (its folder is created if needed).")
@click.option("--smooth", type=click.IntRange(min=1), default=None,
              help="Smooth each run's curve by a trailing moving average over N steps in the "
                   "loss landscape and trajectory figures (as `landscape plot --smooth`).")
@click.option("--dpi", type=click.IntRange(min=30, max=300), default=100, show_default=True,
              help="Resolution of the figures inlined in the page.")
@user_errors
def report(records, out, smooth, dpi):
    """Write one HTML page (figures inline, no network needed) of the runs in RECORD.h5 and
    MORE.h5: what was run, the BN vs no-BN verdict tables with their 95% intervals over seeds,
    the accuracy table, every figure `landscape plot` draws with a caption on how to read it,
    each run's status and initial plateau, and the warnings (reduced data, a single seed,
    diverged or incomplete runs). Prints the path of the page."""
    path = write_report(records, out, smooth=smooth, dpi=dpi)
    click.echo(f"Wrote the report ({path.stat().st_size / 1e6:.1f} MB): {path}")
