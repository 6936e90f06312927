"""`landscape surface`: a 1D or 2D loss surface around the weights a run kept at a step,
stored in the record (docs/measurements.md, "Loss surfaces")."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from landscape.cli._names import LAST_KEPT, is_last_kept
from landscape.cli._types import CommaList
from landscape.cli.common import graceful_stop, user_errors
from landscape.errors import ConfigError
from landscape.kept.models import kept_step
from landscape.store import open_record
from landscape.surfaces.directions import BN_PARAMS
from landscape.surfaces.evaluate import BN_MODES
from landscape.surfaces.from_record import BATCHES, DIRECTIONS, SurfaceOptions, record_surface


def _step(record_path: Path, run_id: str, text: str) -> int:
    """A step number, 'last' (the last weights the run kept; the old 'final' too) or 'best'
    (--keep-best)."""
    return kept_step(open_record(record_path), run_id, LAST_KEPT if is_last_kept(text) else text)


@click.command()
@click.argument("record_path", metavar="RECORD.h5", type=click.Path(path_type=Path))
@click.option("--run", "run_id", required=True, help="The run (see `landscape info`).")
@click.option("--step", required=True,
              help=f"The step whose kept weights are the centre ('{LAST_KEPT}': the last "
                   "kept; 'best': those of the best validation accuracy, --keep-best).")
@click.option("--dims", type=int, default=2, show_default=True, help="1 (a line) or 2 (a plane).")
@click.option("--points", "--resolution", "points", type=int, default=21, show_default=True,
              help="Grid points per axis.")
@click.option("--range", "span", type=CommaList(float, 2, "LOW,HIGH"), default="-1,1",
              show_default=True, help="The coordinates α along each direction: LOW,HIGH.")
@click.option("--direction", type=click.Choice(DIRECTIONS), default="random", show_default=True,
              help="random: filter-normalized random directions (Li et al. 2018); update: "
                   "d1 = w[S+1] - w[S], d2 = w[S] - w[S-1] (needs those weights kept).")
@click.option("--bn-params", type=click.Choice(BN_PARAMS), default=None,
              help="Random directions' 1-D parameters (biases, BN's gamma and beta): ignore "
                   "(zero, loss-landscape's default) or filter (rescaled to their norm).  "
                   "[default: ignore]")
@click.option("--bn", type=click.Choice(BN_MODES), default="train", show_default=True,
              help="BatchNorm with the statistics of each batch, as in training (train), or "
                   "with the run's running statistics (eval).")
@click.option("--batch", type=click.Choice(BATCHES), default=None,
              help="step: the step's own batch (the centre is the recorded loss); images: the "
                   "first --images training images.  [default: step, or images with --images]")
@click.option("--images", type=int, default=None,
              help="With --batch images: how many training images (default 1024), in batches "
                   "of the run's batch size.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random directions (and of dropout or noise layers).")
@click.option("--name", default=None,
              help="The surface's name in the record (default from step, dims, direction, bn).")
@click.option("--chunk", type=int, default=None,
              help="Grid points per batched (vmap) forward pass; 1: one at a time.  "
                   "[default: from free GPU memory; 1 on a CPU]")
@click.option("--compile", "compile_model", is_flag=True, default=False,
              help="Run the model through torch.compile: tens of seconds to compile, then "
                   "faster points (pays on large grids; values equal to float32 rounding).")
@click.option("--device", default="auto", show_default=True,
              help="cpu, cuda, cuda:N, or auto (CUDA when available).")
@click.option("--data-dir", default=None,
              help="Where the record's CIFAR-10 is now, if not where it was recorded.")
@user_errors
def surface(record_path, run_id, step, dims, points, span, direction, bn_params, bn, batch,
            images, seed, name, chunk, compile_model, device, data_dir):
    """Compute a loss surface around the weights run ID kept at step S (record it with
    --save-weights-at or --save-weights-every) and store it in RECORD.h5. Running the same
    command again continues an interrupted surface."""
    if direction == "update" and bn_params is not None:
        raise ConfigError("--bn-params applies to random directions; --direction update moves "
                          "every parameter as the updates did")
    options = SurfaceOptions(
        step=_step(record_path, run_id, step), dims=dims, points=points, low=span[0],
        high=span[1], seed=seed, direction=direction,
        bn_params=(bn_params or "ignore") if direction == "random" else "all", bn=bn,
        batch=batch or ("images" if images is not None else "step"), images=images)
    bar = None  # opened at the first progress report: after every check has passed

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, desc=f"{run_id} step {options.step}",
                       unit="point", dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        with graceful_stop() as should_stop:
            result = record_surface(record_path, run_id, options, name=name, device=device,
                                    chunk=chunk, compile=compile_model, data_dir=data_dir,
                                    progress=progress,
                                    should_stop=should_stop)
    finally:
        if bar is not None:
            bar.close()
    if not result.complete:
        click.echo(f"Stopped with {int(result.done.sum())} of {result.done.size} points; the "
                   f"same command continues the surface.", err=True)
        sys.exit(130)
    centre = result.centre
    where = f"; at the centre {result.loss[centre]:.6g}" if centre is not None else ""
    click.echo(f"Surface {result.name!r} of run {run_id} at step {options.step}: loss "
               f"{result.loss.min():.6g} to {result.loss.max():.6g}{where}")
