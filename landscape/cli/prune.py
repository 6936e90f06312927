"""`landscape prune`: held-out accuracy with the weakest groups of a layer zeroed."""

from __future__ import annotations

from pathlib import Path

import click

from landscape.cli._names import is_last_kept
from landscape.cli._figures import check_figure_path, save_figure
from landscape.cli._types import CommaList, flatten
from landscape.cli.common import echo_table, user_errors
from landscape.plot.prune import plot_filters, plot_prune
from landscape.kept.models import kept_step
from landscape.kept.prune import BY_GAMMA, filters_and_support, prune_run
from landscape.store import open_record
from landscape.sweep.plans import resolve_device

DEFAULT_PERCENTS = "0,10,20,30,40,50,60"


@click.command()
@click.argument("record_path", metavar="RECORD.h5",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run", "runs", type=CommaList(), multiple=True, required=True,
              help="Run id (repeat or comma-separate to compare runs, e.g. SGD and slbi).")
@click.option("--layer", required=True,
              help="The conv or linear weight to prune, e.g. conv3, fc1 or "
                   "features.conv3.weight; several comma-separated (conv3,fc1) are pruned "
                   "together, each by the same percentage of its own groups.")
@click.option("--fractions", type=CommaList(float, unique=True), default=DEFAULT_PERCENTS,
              show_default=True, help="Percentages of the layer's groups to zero.")
@click.option("--filters", "filters_layer", default=None,
              help="Also draw this conv layer's filters, Γ's support framed (e.g. conv1).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The accuracy figure [default: RECORD-prune-LAYER.png].")
@click.option("--step", "which", default="last", show_default=True,
              help="Whose weights: a step number, 'last' (the last kept) or 'best' (the best "
                   "validation accuracy, recorded with --keep-best).")
@click.option("--device", default="auto", show_default=True,
              help="cpu, cuda, cuda:N, or auto (CUDA when available).")
@user_errors
def prune(record_path: Path, runs, layer: str, fractions, filters_layer: str | None,
          out: Path | None, which: str, device: str) -> None:
    """Zero the weakest groups of LAYER (filters of a conv, weights of a linear layer) and
    print the held-out accuracy: by Γ for DessiLBI runs, by weight magnitude otherwise.

    Needs the run's weights after its last step in the record (landscape record
    --save-weights-at end).
    """
    runs = flatten(runs, unique="--run")
    out = out or record_path.with_name(
        f"{record_path.stem}-prune-{layer.replace(',', '+')}.png")
    check_figure_path(out, inputs=[record_path])
    filter_paths = {run: record_path.with_name(f"{record_path.stem}-filters-{run}-"
                                               f"{filters_layer}.png")
                    for run in runs} if filters_layer else {}
    for path in filter_paths.values():
        check_figure_path(path, "--filters", inputs=[record_path])
    device = str(resolve_device(device))
    record = open_record(record_path)
    last = is_last_kept(which)
    results = [prune_run(record_path, run, layer, fractions, device=device,
                         step=None if last else kept_step(record, run, which))
               for run in runs]
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
    save_figure(plot_prune(results), out, dpi=120)
    click.echo(f"Wrote {out}")
    if filters_layer:
        for run, path in filter_paths.items():
            parameter, weight, support = filters_and_support(record_path, run, filters_layer)
            save_figure(plot_filters(weight, support, layer=f"{run}: {parameter}"), path,
                        dpi=120)
            click.echo(f"Wrote {path}")
