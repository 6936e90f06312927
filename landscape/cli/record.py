"""`landscape record`: train every (model, learning rate) run into one HDF5 record."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import click
import torch
from click.core import ParameterSource
from tqdm import tqdm

from landscape.cli.common import duration, echo_table, graceful_stop, user_errors
from landscape.cli._hessian import hessian_config, hessian_options
from landscape.cli._executor import executor_for, executor_options, pop_executor
from landscape.cli._names import END, LAST_LINEAR, is_end, taps_from_cli, taps_to_cli
from landscape.cli._names import warn_if_given
from landscape.cli._practice import NORMALIZATION_OPTIONS, normalization_values, practice_options
from landscape.cli._record_help import RECORD_SECTIONS
from landscape.cli._sections import sectioned
from landscape.cli._types import CommaList, flatten
from landscape.cli._vary import VARY_HELP, parse_vary
from landscape.config import OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULES, ProbeConfig, RecordConfig
from landscape.config import preset
from landscape.config.axes import levels_text
from landscape.errors import ConfigError
from landscape.sweep.limits import check_counts
from landscape.models import MODELS
from landscape.store import RunStatus, StopReason, open_record
from landscape.probes.hessian_cost import cost_text, estimate_costs
from landscape.sweep import RunPlan, plan_runs, record as record_sweep, resolve_device
from landscape.sweep.plans import probe_model
from landscape.sweep import check_resume_compatible, resume as resume_sweep
from landscape.sweep.plans import planned_steps
from landscape.training.tasks import make_task


class _Bar:
    """A tqdm progress bar per run: step, loss and images per second."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar
        self._postfix = ""
        self._seconds: dict[str, float] = {}  # how long each probe took last time
        self._running: tuple[str, float] | None = None

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        self._postfix = f"loss {loss:.4g}, {images_per_second:,.0f} samples/s"
        self._bar.set_postfix_str(self._postfix, refresh=False)
        self._bar.update(steps)

    def probing(self, name: str | None, step: int) -> None:
        """Which probe is running, so that a slow one (the Hessian's) does not look like a
        hang. The bar is redrawn only around probes that took a while last time (and the
        first time), so that a probe at every fast step costs no terminal writes."""
        now = time.perf_counter()
        if name is not None:
            self._running = (name, now)
            slow = self._seconds.get(name, math.inf) >= _SLOW_PROBE_SECONDS
            text = f"{self._postfix + ', ' if self._postfix else ''}running {name} (step {step})"
            self._bar.set_postfix_str(text, refresh=slow)
            return
        if self._running is not None:
            running, start = self._running
            self._seconds[running] = now - start
            self._running = None
            self._bar.set_postfix_str(self._postfix,
                                      refresh=now - start >= _SLOW_PROBE_SECONDS)


_SLOW_PROBE_SECONDS = 0.5


@contextlib.contextmanager
def _progress(plan: RunPlan, n_runs: int, total: int):
    desc = f"[{plan.index + 1}/{n_runs}] {plan.model} lr={plan.lr:g} seed={plan.seed}" + \
        (f" {levels_text(plan.factors)}" if plan.levels else "")
    with tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True) as bar:
        yield _Bar(bar)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def runs_text(config: RecordConfig, n_runs: int) -> str:
    """'4 runs (2 models x 1 lr x 2 seeds: vgg_light, vgg_light_bn)': seeds counted as seeds."""
    axes = "".join(f" x {len(a.values)} {a.name}" for a in config.axes)
    return (f"{_count(n_runs, 'run')} ({_count(len(config.model.models), 'model')} x "
            f"{_count(len(config.optim.lrs), 'lr')}{axes} x "
            f"{_count(len(config.seeds), 'seed')}: {', '.join(config.model.models)})")


_DEFAULT = RecordConfig()


@click.command(cls=sectioned(RECORD_SECTIONS))
@click.option("--preset", default=None,
              help=f"Start from a named setup ({', '.join(PRESETS)}; see `landscape presets`); "
                   f"options given explicitly override it.")
@click.option("-m", "--model", "models", type=CommaList(), multiple=True,
              default=(",".join(_DEFAULT.model.models),),
              show_default=True,
              help=f"Models to train (repeat or comma-separate): {', '.join(MODELS)}.")
@click.option("--lrs", type=CommaList(float),
              default=",".join(f"{lr:g}" for lr in _DEFAULT.optim.lrs), show_default=True,
              help="Comma-separated learning rates; one run per model, learning rate and "
                   "seed.")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), default=_DEFAULT.optim.optimizer,
              show_default=True, help="torch's optimizer of that name, with its own defaults "
                                      "(betas, eps, alpha) for what is not set here; slbi and "
                                      "slbi_adam: DessiLBI (docs/dessilbi.md).")
@click.option("--momentum", type=float, default=_DEFAULT.optim.momentum, show_default=True,
              help="Momentum of sgd or rmsprop (adam and adamw have their own betas).")
@click.option("--nesterov", is_flag=True,
              help="Nesterov momentum (sgd with --momentum > 0).")
@click.option("--weight-decay", type=float, default=_DEFAULT.optim.weight_decay, show_default=True,
              help="The optimizer's weight decay (decoupled for adamw). Not part of the "
                   "recorded loss; see --l2 for a penalty that is.")
@click.option("--slbi-kappa", type=float, default=_DEFAULT.optim.slbi_kappa, show_default=True,
              help="slbi, slbi_adam: the damping kappa (W moves with step kappa*lr).")
@click.option("--slbi-mu", type=float, default=_DEFAULT.optim.slbi_mu, show_default=True,
              help="slbi, slbi_adam: the coupling mu of each weight W to its sparse Gamma "
                   "(loss + |W - Gamma|^2 / (2 mu)).")
@click.option("--slbi-layers", type=CommaList(), multiple=True,
              help="slbi, slbi_adam: the layers given a sparse Gamma (conv or linear weights, "
                   "e.g. conv3,fc1) [default: every conv and linear weight].")
@click.option("--schedule", type=click.Choice(list(SCHEDULES)), default=_DEFAULT.optim.schedule,
              show_default=True,
              help="Learning-rate schedule, applied per step: constant; step (x --lr-gamma "
                   "every --lr-step-epochs); multistep (x --lr-gamma at each of "
                   "--lr-milestones); cosine (annealed from lr towards --lr-min over the run); "
                   "cyclic (triangular between --lr-min and lr, --cycle-steps per half cycle).")
@click.option("--lr-min", type=float, default=_DEFAULT.optim.lr_min, show_default=True,
              help="cosine: the learning rate annealed to; cyclic: the bottom of the cycle.")
@click.option("--lr-step-epochs", type=int, default=None,
              help="step: multiply the learning rate by --lr-gamma every N epochs.")
@click.option("--lr-gamma", type=float, default=_DEFAULT.optim.lr_gamma, show_default=True,
              help="step, multistep: the factor applied at each boundary.")
@click.option("--lr-milestones", type=CommaList(int), default=None,
              help="multistep: comma-separated epochs at which the learning rate is "
                   "multiplied by --lr-gamma, e.g. 100,150.")
@click.option("--cycle-steps", type=int, default=None,
              help="cyclic: steps from --lr-min up to lr (half a cycle).")
@click.option("--label-smoothing", type=float, default=_DEFAULT.optim.label_smoothing,
              show_default=True,
              help="Label smoothing of the training cross-entropy (held-out losses stay plain).")
@click.option("--l1", type=float, default=_DEFAULT.optim.l1, show_default=True,
              help="Add l1 * sum|w| over all parameters to the training objective (recorded "
                   "as the loss and probed).")
@click.option("--l2", type=float, default=_DEFAULT.optim.l2, show_default=True,
              help="Add (l2 / 2) * sum w^2 over all parameters to the training objective "
                   "(recorded as the loss and probed).")
@click.option("--dropout", type=float, default=None,
              help="Dropout probability of models that have dropout [default: the model's "
                   "own].")
@click.option("--batch-size", type=int, default=_DEFAULT.optim.batch_size, show_default=True,
              help="Training images per step (the probes use the step's batch).")
@click.option("--epochs", type=int, default=_DEFAULT.optim.epochs, show_default=True,
              help="Passes over the training images per run (--max-steps may stop it sooner).")
@click.option("--max-steps", type=int, default=None,
              help="Stop every run after this many steps (for quick runs on a CPU).")
@click.option("--eval-every", type=int, default=None,
              help="Evaluate on held-out data every N steps [default: every epoch].")
@click.option("--subset", type=int, default=None,
              help="Train on the first N training images (N samples for the DLN).")
@click.option("--seeds", type=CommaList(int), default=",".join(map(str, _DEFAULT.seeds)),
              show_default=True,
              help="Comma-separated seeds: every (model, lr) is trained once per seed (its "
                   "initialization, data order and augmentation); the BN vs no-BN verdict "
                   "then gives the per-seed range, and from 5 seeds on 95% bootstrap "
                   "intervals over seeds.")
@click.option("--seed", type=int, default=None, hidden=True,
              callback=warn_if_given("--seed N", "--seeds N"),
              help="One seed (the same as --seeds N).")
@click.option("--device", default="auto", show_default=True,
              help="cpu, cuda, cuda:N, or auto (CUDA when available).")
@click.option("--tf32/--no-tf32", default=False, show_default=True, hidden=True,
              callback=warn_if_given("--tf32", "--precision tf32"),
              help="Allow TF32 matmuls/convolutions on CUDA (faster, less exact).")
@click.option("--dataset", type=click.Choice(["cifar10", "mnist"]), default=_DEFAULT.data.dataset,
              show_default=True,
              help="cifar10, or mnist (official IDX files in --data-dir/MNIST/raw; without "
                   "--data-dir an embedded split of the official MNIST *test* set: 8,000 "
                   "training, 2,000 held-out images). Use the lenet5 models for mnist.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="Training arithmetic: float32; tf32 (TF32 matmuls and convolutions on "
                   "CUDA: faster, less exact; on a CPU the same as float32); bf16 (autocast forward, float32 weights and gradients). Probes "
                   "always run in float32 (docs/measurements.md).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with CIFAR-10's cifar-10-batches-py (or, with --dataset mnist, "
                   "MNIST/raw). Without it, the embedded subset is used (2,000 CIFAR-10 "
                   "training images).")
@click.option("--download", is_flag=True, help="Download the dataset into --data-dir if missing.")
@click.option("--no-verify", is_flag=True,
              help="Read CIFAR-10 files even if their MD5 differs from the official release.")
@click.option("--crop-padding", type=int, default=_DEFAULT.data.crop_padding, show_default=True,
              help="Random-crop augmentation with this much zero padding (0: off).")
@click.option("--flip", is_flag=True, help="Random horizontal flip augmentation.")
@click.option("--erase-prob", type=float, default=_DEFAULT.data.erase_prob, show_default=True,
              help="Random erasing: with this probability per image, set a rectangle of "
                   "2-33% of the image (--erase-scale; aspect 0.3-3.3) to 0 after "
                   "normalization.")
@click.option("--val-split", type=float, default=None,
              help="Hold out this fraction of the training images (stratified by class, "
                   "seeded by --seed) as a validation split, never trained on.")
@click.option("--early-stop", type=int, default=None,
              help="Stop a run when the validation loss has not improved for N evaluations "
                   "(needs --val-split).")
@click.option("--width", type=float, default=_DEFAULT.model.width, show_default=True,
              help="Multiply every channel width (small values make tiny test models).")
@click.option("--tap", "taps", type=CommaList(), multiple=True,
              default=taps_to_cli(_DEFAULT.recording.taps), show_default=True,
              help="Parameter whose gradient and weight delta are stored every step "
                   f"(repeatable); '{LAST_LINEAR}' is the weight of the model's last linear "
                   "layer.")
@click.option("--no-taps", is_flag=True, help="Tap no parameter.")
@click.option("--tap-every", type=int, default=_DEFAULT.recording.tap_every, show_default=True,
              help="Tap steps kN and kN+1 only (pairs keep consecutive differences).")
@click.option("--tap-dtype", type=click.Choice(["float32", "float16"]),
              default=_DEFAULT.recording.tap_dtype, show_default=True,
              help="How the taps are stored (float16 halves their size; finer differences "
                   "than its 3 digits are lost).")
@click.option("--probe-every", type=int, default=_DEFAULT.recording.probe.every, show_default=True,
              help="Probe loss and gradient along the gradient every N steps (0: off).")
@click.option("--probe-range", type=CommaList(float, length=2, length_hint="LOW,HIGH"),
              default=f"{_DEFAULT.recording.probe.low:g},{_DEFAULT.recording.probe.high:g}",
              show_default=True,
              help="LOW,HIGH step lengths probed (multiples of lr with --probe-scale relative).")
@click.option("--probe-scale", type=click.Choice(["relative", "absolute"]),
              default=_DEFAULT.recording.probe.scale, show_default=True,
              help="relative: --probe-range is in multiples of the run's lr (of the update, "
                   "probing along it); absolute: in step lengths as given.")
@click.option("--probe-count", type=int, default=_DEFAULT.recording.probe.count, show_default=True,
              help="Number of step lengths per probe.")
@click.option("--probe-spacing", type=click.Choice(["linear", "log"]),
              default=_DEFAULT.recording.probe.spacing, show_default=True,
              help="How the --probe-count step lengths fill --probe-range: evenly, or evenly "
                   "in log (needs LOW > 0).")
@click.option("--probe-direction", type=click.Choice(["auto", "gradient", "update"]),
              default="auto", show_default=True,
              help="Probe along the gradient (w - eta*g, the paper's definition) or along the "
                   "step the optimizer took (w + c*(w_next - w)); auto: gradient for plain SGD "
                   "(where both are the same line), update for every other optimizer.")
@click.option("--probe-dtype", type=click.Choice(["float32", "float64"]),
              default="float32", show_default=True,
              help="Recompute the probe's losses and gradients in float64 (slower; exact).")
@click.option("--probe-params", type=CommaList(), multiple=True,
              help="Restrict the probe's norms to parameters starting with this prefix "
                   "(repeatable).")
@click.option("--ics-every", type=int, default=0, show_default=True,
              help="Measure internal covariate shift every N steps (0: off).")
@click.option("--ics-layer", "ics_layers", type=CommaList(), multiple=True,
              help="Layer whose internal covariate shift is measured (repeatable), "
                   "e.g. features.stage4.conv1.")
@click.option("--activation-every", "activation_every", type=int, default=0,
              show_default=True,
              help="Record per-channel activation mean/variance every N steps (0: off).")
@click.option("--activations-every", "old_activations_every", type=int, default=None,
              hidden=True, callback=warn_if_given("--activations-every", "--activation-every"))
@click.option("--activation-layer", "activation_layers", type=CommaList(), multiple=True,
              help="Layer whose output statistics are recorded (repeatable), "
                   "e.g. features.stage3.norm1.")
@click.option("--save-weights-every", type=int, default=0, show_default=True,
              help="Keep the model's weights at the start of every N-th step in the record "
                   "(0: never), for `landscape surface` and `landscape prune`.")
@click.option("--save-weights-at", type=CommaList(), multiple=True,
              help=f"Keep the model's weights at these steps; '{END}' keeps them after the last "
                   f"step of a finished run, e.g. 0,500,{END}.")
@click.option("--flush-seconds", type=float, default=_DEFAULT.recording.flush_seconds,
              show_default=True, help="Write recorded rows to the file at least this often.")
@click.option("--checkpoint-seconds", type=float, default=_DEFAULT.recording.checkpoint_seconds,
              show_default=True,
              help="Checkpoint the run in progress (for --resume) at least this often.")
@hessian_options
@practice_options
@click.option("--vary", multiple=True, metavar="NAME=V1,V2", help=VARY_HELP)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("record.h5"), show_default=True, help="The HDF5 record to write.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Continue the unfinished runs of this record with its own options.")
@executor_options
@click.pass_context
@user_errors
def record(ctx: click.Context, preset: str | None, out: Path, overwrite: bool,
           resume_path: Path | None, **options) -> None:
    """Train each model at each learning rate and record every step into one HDF5 file.

    Ctrl-C (or SIGTERM) stops after the current step, leaving a valid record and a checkpoint;
    `landscape record --resume RECORD.h5` continues it.
    """
    ray_options = pop_executor(ctx, options)  # None: the local executor
    if resume_path is not None:
        _resume(ctx, resume_path, preset, options, ray_options)
        return
    config = build_config(ctx, preset, options)
    check_counts(config)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it, or "
                          f"--resume {out} to continue it")
    task = make_task(config, torch.device(config.device))
    plans = plan_runs(config)
    click.echo(f"Data: {task.identity.describe()}", err=True)
    batch = "varied" if any(a.name == "batch_size" for a in config.axes) else \
        config.optim.batch_size
    click.echo(f"Device: {config.device}. {runs_text(config, len(plans))}, "
               f"{config.optim.optimizer}, batch {batch}. Writing {out}",
               err=True)
    if config.recording.hessian.enabled:  # what the probe will cost, before the wait
        click.echo(cost_text(estimate_costs(config, task, plans,
                                            partial(probe_model, config))), err=True)
    with graceful_stop() as should_stop:
        try:
            with executor_for(ray_options, _progress, len(plans),
                              planned_steps(config, task, plans)) as executor:
                results = record_sweep(config, out, executor=executor, overwrite=overwrite,
                                       task=task, should_stop=should_stop)
        except KeyboardInterrupt:
            raise click.ClickException(
                f"stopped at once: the current run is marked 'interrupted' in {out}; "
                f"continue with: landscape record --resume {out}") from None
    _report(results, out)


def _resume(ctx: click.Context, path: Path, preset: str | None, options: dict,
            ray_options=None) -> None:
    given = sorted(name for name in options
                   if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
                   and name != "device")
    asked = None
    if preset is not None or given:
        recorded = RecordConfig.from_dict(open_record(path).config)
        asked = build_config(ctx, preset, options, base=recorded)
        check_resume_compatible(path, recorded, asked=asked)
    device = None
    if ctx.get_parameter_source("device") is not ParameterSource.DEFAULT:
        device = str(resolve_device(options["device"]))
    click.echo(f"Resuming {path}", err=True)
    unfinished = sum(1 for r in open_record(path).runs.values() if not r.finished)
    with graceful_stop() as should_stop:
        try:
            with executor_for(ray_options, _progress, unfinished, None) as executor:
                results = resume_sweep(path, executor=executor, device=device,
                                       should_stop=should_stop)
        except KeyboardInterrupt:
            raise click.ClickException(
                f"stopped at once; continue with: landscape record --resume {path}") from None
    _report(results, path)


def _report(results, out: Path) -> None:
    rows = [[r.plan.run_id, r.outcome.status + (" (early stop)" if r.outcome.stop_reason
                                                == StopReason.EARLY_STOP else ""),
             str(r.outcome.steps_done),
             f"{r.outcome.final_loss:.4g}", f"{r.outcome.images_per_second:,.0f}",
             duration(r.outcome.seconds)]
            for r in results]
    if rows:
        echo_table(rows, ["run", "status", "steps", "last loss", "samples/s", "time"])
    if any(r.outcome.status == RunStatus.INTERRUPTED for r in results):
        click.echo(f"Stopped: {out} is valid and the run in progress is checkpointed. "
                   f"Continue with: landscape record --resume {out}")
        ctx = click.get_current_context()
        ctx.exit(130)
    click.echo(f"Wrote {out}. Inspect it with: landscape info {out}")


def _weight_step(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--save-weights-at takes step numbers or '{END}', got {text!r}") \
            from None


def build_config(ctx: click.Context, preset_name: str | None, options: dict,
                 base: RecordConfig | None = None) -> RecordConfig:
    """Defaults (or `base`), then the preset, then the options given on the command line.

    Presets and options are applied to the flat dict of RecordConfig.to_dict."""
    values = (base or _DEFAULT).flat_values()
    if preset_name is not None:
        values.update(preset(preset_name))
    given = {name for name in options
             if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if preset_name is None and base is None:
        given = set(options)  # without a preset, every option's value (default or not) counts
    probe_changes, hessian_changes = {}, {}
    values.update(normalization_values(options, given))
    for name in given:
        value = options[name]
        if name in NORMALIZATION_OPTIONS:
            pass  # above
        elif name in ("color_jitter", "erase_scale") and value is None:
            pass  # not given: the base's
        elif name == "taps":
            values[name] = taps_from_cli(flatten(value))
        elif name in ("models", "ics_layers", "activation_layers", "slbi_layers"):
            values[name] = flatten(value)
        elif name == "old_activations_every":
            pass  # below: after --activation-every, whatever the order of `given`
        elif name == "seed":
            if value is not None:
                if "seeds" in given and ctx.get_parameter_source("seeds") \
                        is not ParameterSource.DEFAULT:
                    raise ConfigError("give --seeds or --seed, not both")
                values["seeds"] = (value,)
        elif name == "seeds":
            if options.get("seed") is None:
                values["seeds"] = value
        elif name == "save_weights_at":
            steps = flatten(value, unique="--save-weights-at")
            ends = [is_end(s) for s in steps]
            values["save_final_weights"] = any(ends)
            values["save_weights_at"] = tuple(_weight_step(s) for s, e in zip(steps, ends)
                                              if not e)
        elif name == "no_taps":
            if value:
                values["taps"] = ()
        elif name == "no_verify":
            values["verify_md5"] = not value
        elif name == "tf32":
            values["allow_tf32"] = value
        elif name == "device":
            pass  # resolved below, always
        elif name == "vary":
            if value:  # a preset's axis of the same name is replaced, the others kept
                values["axes"] = {**_axes_dict(values.get("axes")), **parse_vary(value)}
        elif name == "data_dir":
            values["data_dir"] = None if value is None else str(value.resolve())
        elif name == "init_from" and value is not None:
            path, _, run = value.rpartition(":")  # the record's path absolute, as data_dir's
            values["init_from"] = f"{Path(path).resolve()}:{run}" if path else value
        elif name == "lr_milestones":
            values[name] = () if value is None else value
        elif name.startswith("probe_"):
            probe_changes[name] = value
        elif name.startswith("hessian_"):
            hessian_changes[name] = value
        else:
            values[name] = value
    if options.get("old_activations_every") is not None:
        values["activation_every"] = options["old_activations_every"]
    values["device"] = str(resolve_device(options["device"]))
    values["probe"] = _probe_config(values["probe"], probe_changes)
    values["hessian"] = hessian_config(values["hessian"], hessian_changes)
    return RecordConfig(**values)


def _axes_dict(axes) -> dict:
    """Axes as {name: values}, from a configuration's Axis tuple or a preset's mapping."""
    if not axes:
        return {}
    return dict(axes) if isinstance(axes, dict) else {a.name: a.values for a in axes}


def _probe_config(base: ProbeConfig, changes: dict) -> ProbeConfig:
    fields = {}
    for name, value in changes.items():
        if name == "probe_range":
            fields["low"], fields["high"] = value
        elif name == "probe_params":
            fields["params"] = flatten(value)
        else:
            fields[name.removeprefix("probe_")] = value
    return replace(base, **fields)
