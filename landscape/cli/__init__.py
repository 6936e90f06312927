"""The `landscape` command: a thin layer of options and messages over the library."""

from __future__ import annotations

import click

from landscape.cli.info import info
from landscape.cli.plot import plot
from landscape.cli.presets import presets
from landscape.cli.prune import prune
from landscape.cli.record import record
from landscape.cli.report import report
from landscape.cli.summary import summary
from landscape.cli.surface import surface
from landscape.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    """


main.add_command(record)
main.add_command(info)
main.add_command(plot)
main.add_command(report)
main.add_command(summary)
main.add_command(presets)
main.add_command(surface)
main.add_command(prune)
