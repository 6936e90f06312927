"""`landscape plot`: every figure the runs of one or more records allow, and the BN comparison."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from landscape.cli.common import user_errors
from landscape.errors import ConfigError
from landscape.plot import all_figures
from landscape.report import group_by_model, load_runs, record_differences, run_notes
from landscape.report import factor_summary
from landscape.report.compare import NO_PAIR
from landscape.store import check_output, write_output


@click.command()
@click.argument("records", metavar="RECORD.h5 [MORE.h5 ...]", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Folder to write the figures (and summary.txt) into; created if needed.")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf", "svg"]), default="png",
              show_default=True, help="File format of the figures.")
@click.option("--smooth", type=click.IntRange(min=1), default=None,
              help="Smooth each run's curve by a trailing moving average over N steps before "
                   "taking min/max (loss landscape and trajectory figures; default: raw).")
@click.option("--dpi", type=click.IntRange(min=30, max=1200), default=150, show_default=True,
              help="Resolution of PNG figures.")
@user_errors
def plot(records, out, fmt, smooth, dpi):
    """Draw the loss landscape, the paper's probe panels, trajectory quantities, training
    curves, internal covariate shift (runs recorded with --ics-every) and activation
    distributions (--activation-every) of the runs in RECORD.h5 (runs of several records are
    combined; run ids must be unique across them). Prints the vgg vs vgg_bn style comparison
    when a model X and its BN variant X_bn are both present, and writes it to
    OUT/summary.txt."""
    runs = load_runs(records)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    for note in record_differences(runs):
        click.echo(f"Note: the records differ in {note}", err=True)
    for note in run_notes(runs):
        click.echo(f"Note: {note}", err=True)
    figures = all_figures(runs, smooth=smooth)
    summary = factor_summary(runs)
    files = {out / f"{name}.{fmt}": partial(figure.savefig, format=fmt, dpi=dpi)
             for name, figure in figures.items()}
    if summary is not None:
        files[out / "summary.txt"] = lambda file: file.write(summary.encode("utf-8"))
    for path in files:  # every one before the first is written
        check_output(path, inputs=records, flag="--out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out}: {exc.strerror or exc}") from None
    written = [write_output(path, write) for path, write in files.items()]
    click.echo(f"Wrote {len(written)} files to {out}:")
    for path in written:
        click.echo(f"  {path}")
    if summary is not None:
        click.echo("")
        click.echo(summary, nl=False)
    else:
        models = ", ".join(group_by_model(runs))
        click.echo(f"{NO_PAIR} among {models}: no comparison table.")
