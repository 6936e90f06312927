"""`landscape record`: train every (model, learning rate) run into one HDF5 record."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
from tqdm import tqdm

from landscape.cli.common import echo_table, user_errors
from landscape.config import DEFAULT_TAP, ProbeConfig, RecordConfig, parse_float_list
from landscape.config import parse_name_list
from landscape.data import load_dataset
from landscape.errors import ConfigError
from landscape.models import MODELS
from landscape.sweep import RunPlan, plan_runs, record as record_sweep, resolve_device


class _Bar:
    """A tqdm progress bar per run: step, loss and images per second."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        self._bar.set_postfix_str(f"loss {loss:.4g}, {images_per_second:,.0f} img/s",
                                  refresh=False)
        self._bar.update(steps)


@contextlib.contextmanager
def _progress(plan: RunPlan, n_runs: int, total: int):
    desc = f"[{plan.index + 1}/{n_runs}] {plan.model} lr={plan.lr:g}"
    with tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True) as bar:
        yield _Bar(bar)


@click.command()
@click.option("-m", "--model", "models", multiple=True, default=("vgg,vgg_bn",),
              show_default=True,
              help=f"Models to train (repeat or comma-separate): {', '.join(MODELS)}.")
@click.option("--lrs", default="1e-3,2e-3,5e-4,1e-4", show_default=True,
              help="Comma-separated learning rates; one run per model and learning rate.")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam",
              show_default=True)
@click.option("--momentum", type=float, default=0.0, show_default=True, help="SGD momentum.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--max-steps", type=int, default=None,
              help="Stop every run after this many steps (for quick runs on a CPU).")
@click.option("--subset", type=int, default=None, help="Train on the first N training images.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds initialization, data order and augmentation (same for every run).")
@click.option("--device", default="auto", show_default=True,
              help="cpu, cuda, cuda:N, or auto (CUDA when available).")
@click.option("--tf32/--no-tf32", default=False, show_default=True,
              help="Allow TF32 matmuls/convolutions on CUDA (faster, less exact).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with CIFAR-10's cifar-10-batches-py. Without it, the embedded "
                   "2,000-image subset of CIFAR-10 is used.")
@click.option("--download", is_flag=True, help="Download CIFAR-10 into --data-dir if missing.")
@click.option("--no-verify", is_flag=True,
              help="Read CIFAR-10 files even if their MD5 differs from the official release.")
@click.option("--crop-padding", type=int, default=0, show_default=True,
              help="Random-crop augmentation with this much zero padding (0: off).")
@click.option("--flip", is_flag=True, help="Random horizontal flip augmentation.")
@click.option("--width", type=float, default=1.0, show_default=True,
              help="Multiply every channel width (small values make tiny test models).")
@click.option("--tap", "taps", multiple=True, default=(DEFAULT_TAP,), show_default=True,
              help="Parameter whose gradient and weight delta are stored every step "
                   "(repeatable).")
@click.option("--no-taps", is_flag=True, help="Tap no parameter.")
@click.option("--tap-every", type=int, default=1, show_default=True,
              help="Tap steps kN and kN+1 only (pairs keep consecutive differences).")
@click.option("--tap-dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True)
@click.option("--probe-every", type=int, default=0, show_default=True,
              help="Probe loss and gradient along the gradient every N steps (0: off).")
@click.option("--probe-range", default="0.5,4", show_default=True,
              help="LOW,HIGH step lengths probed (multiples of lr with --probe-scale relative).")
@click.option("--probe-scale", type=click.Choice(["relative", "absolute"]), default="relative",
              show_default=True)
@click.option("--probe-count", type=int, default=8, show_default=True,
              help="Number of step lengths per probe.")
@click.option("--probe-spacing", type=click.Choice(["linear", "log"]), default="linear",
              show_default=True)
@click.option("--probe-params", multiple=True,
              help="Restrict the probe's norms to parameters starting with this prefix "
                   "(repeatable).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("record.h5"), show_default=True, help="The HDF5 record to write.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@user_errors
def record(models, lrs, optimizer, momentum, weight_decay, batch_size, epochs, max_steps, subset,
           seed, device, tf32, data_dir, download, no_verify, crop_padding, flip, width, taps,
           no_taps, tap_every, tap_dtype, probe_every, probe_range, probe_scale, probe_count,
           probe_spacing, probe_params, out, overwrite):
    """Train each model at each learning rate and record every step into one HDF5 file."""
    low, high = _parse_range(probe_range)
    config = RecordConfig(
        models=parse_name_list(models),
        lrs=parse_float_list(lrs, option="--lrs"),
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        batch_size=batch_size,
        epochs=epochs,
        max_steps=max_steps,
        seed=seed,
        device=str(resolve_device(device)),
        allow_tf32=tf32,
        data_dir=None if data_dir is None else str(data_dir.resolve()),
        download=download,
        verify_md5=not no_verify,
        subset=subset,
        crop_padding=crop_padding,
        flip=flip,
        width=width,
        taps=() if no_taps else parse_name_list(taps),
        tap_every=tap_every,
        tap_dtype=tap_dtype,
        probe=ProbeConfig(every=probe_every, low=low, high=high, count=probe_count,
                          scale=probe_scale, spacing=probe_spacing,
                          params=parse_name_list(probe_params) if probe_params else ()),
    )
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it")
    data = load_dataset(config.data_dir, download=config.download,
                        verify_md5=config.verify_md5, subset=config.subset)
    plans = plan_runs(config)
    click.echo(f"Data: {data.identity.describe()}", err=True)
    click.echo(f"Device: {config.device}. {len(plans)} runs "
               f"({', '.join(config.models)} x {len(config.lrs)} learning rates), "
               f"{config.optimizer}, batch {config.batch_size}. Writing {out}", err=True)
    try:
        results = record_sweep(config, out, overwrite=overwrite, data=data, progress=_progress)
    except KeyboardInterrupt:
        raise click.ClickException(
            f"interrupted: the current run is marked 'interrupted' in {out}; the runs before it "
            f"are complete") from None
    rows = [[r.plan.run_id, r.outcome.status, str(r.outcome.steps_done),
             f"{r.outcome.final_loss:.4g}", f"{r.outcome.images_per_second:,.0f}"]
            for r in results]
    echo_table(rows, ["run", "status", "steps", "last loss", "img/s"])
    click.echo(f"Wrote {out}. Inspect it with: landscape info {out}")


def _parse_range(text: str) -> tuple[float, float]:
    values = parse_float_list(text, option="--probe-range")
    if len(values) != 2:
        raise ConfigError(f"--probe-range takes LOW,HIGH, got {text!r}")
    return values
