"""The `landscape` command: a thin layer of options and messages over the library."""

from __future__ import annotations

import click

from landscape.cli._lazy import LazyGroup
from landscape.version import __version__

# Each command's module is imported only when that command runs (most import torch, which takes
# seconds; `--version` and `info` need none of it).
COMMANDS = {
    "record": "landscape.cli.record.record",
    "info": "landscape.cli.info.info",
    "plot": "landscape.cli.plot.plot",
    "report": "landscape.cli.report.report",
    "summary": "landscape.cli.summary.summary",
    "presets": "landscape.cli.presets.presets",
    "surface": "landscape.cli.surface.surface",
    "prune": "landscape.cli.prune.prune",
    "export": "landscape.cli.export.export",
}


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="landscape")
def main() -> None:
    """Measure how BatchNorm changes the optimization landscape (Santurkar et al., 2018).

    \b
    landscape record   train models at several learning rates into one HDF5 record
    landscape info     show what a record holds
    landscape plot     draw figures and a BN vs no-BN comparison from records
    landscape report   one self-contained HTML page of records: verdicts, figures, runs
    landscape summary  list a model's layers, output shapes, parameters and MACs
    landscape surface  compute a loss surface around the weights a run kept at a step
    landscape presets  list the named setups of `landscape record --preset`
    landscape prune    held-out accuracy with a layer's weakest groups zeroed (DessiLBI)
    landscape export   a record's tables as CSV or Parquet files (pandas, R, spreadsheets)
    """
