"""`landscape prune`: held-out accuracy with the weakest groups of a layer zeroed."""

from __future__ import annotations

from pathlib import Path

import click

from landscape.cli._types import CommaList, flatten
from landscape.cli.common import echo_table, user_errors
from landscape.plot.prune import plot_filters, plot_prune
from landscape.kept.prune import BY_GAMMA, filters_and_support, prune_run

DEFAULT_PERCENTS = "0,10,20,30,40,50,60"


@click.command()
@click.argument("record_path", metavar="RECORD.h5",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run", "runs", type=CommaList(), multiple=True, required=True,
              help="Run id (repeat or comma-separate to compare runs, e.g. SGD and slbi).")
@click.option("--layer", required=True,
              help="The conv or linear weight to prune, e.g. conv3, fc1 or "
                   "features.conv3.weight.")
@click.option("--fractions", type=CommaList(float), default=DEFAULT_PERCENTS,
              show_default=True, help="Percentages of the layer's groups to zero.")
@click.option("--filters", "filters_layer", default=None,
              help="Also draw this conv layer's filters, Γ's support framed (e.g. conv1).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The accuracy figure [default: RECORD-prune-LAYER.png].")
@click.option("--device", default="cpu", show_default=True)
@user_errors
def prune(record_path: Path, runs, layer: str, fractions, filters_layer: str | None,
          out: Path | None, device: str) -> None:
    """Zero the weakest groups of LAYER (filters of a conv, weights of a linear layer) and
    print the held-out accuracy: by Γ for DessiLBI runs, by weight magnitude otherwise.

    Needs the run's final weights in the record (landscape record --save-weights-at final).
    """
    results = [prune_run(record_path, run, layer, fractions, device=device)
               for run in flatten(runs)]
    for result in results:
        by = "Γ, then |W|" if result.criterion == BY_GAMMA else "|W|"
        support = (f"; Γ's support: {result.support} of {result.groups} {result.group_kind}"
                   if result.support >= 0 else "")
        click.echo(f"{result.run_id}: {result.layer}, {result.groups} {result.group_kind}, "
                   f"weakest by {by}{support}; weights after step {result.weights_step}; "
                   f"{result.data}")
        echo_table([[f"{r.percent:g}%", str(r.zeroed), f"{100 * r.accuracy:.2f}",
                     f"{r.loss:.4f}"] for r in result.rows],
                   ["zeroed", result.group_kind, "held-out acc %", "held-out loss"])
    out = out or record_path.with_name(f"{record_path.stem}-prune-{layer}.png")
    plot_prune(results).savefig(out, dpi=120)
    click.echo(f"Wrote {out}")
    if filters_layer:
        for run in flatten(runs):
            parameter, weight, support = filters_and_support(record_path, run, filters_layer)
            path = record_path.with_name(f"{record_path.stem}-filters-{run}-{filters_layer}.png")
            plot_filters(weight, support, layer=f"{run}: {parameter}").savefig(path, dpi=120)
            click.echo(f"Wrote {path}")
