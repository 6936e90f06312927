"""The grid of runs of a record: one training run per (model, learning rate), into one file."""

from __future__ import annotations

import contextlib
import difflib
import math
import platform
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

import h5py
import numpy as np
import torch
from torch import nn

from landscape.checkpoint import Checkpoint, checkpoint_path, load_checkpoint, save_checkpoint
from landscape.config import FINAL_TAP, RecordConfig, resume_differences, run_id
from landscape.errors import ConfigError, RecordError, field_ref
from landscape.limits import check_counts, check_sweep_resources
from landscape.models import build_model
from landscape.optim import SLBI_OPTIMIZERS, make_slbi, resolve_sparse_layers
from landscape.probes import ActivationProbe, GradientProbe, ICSProbe, layer_indices
from landscape.probes import WeightsProbe, output_channels, select_parameters, weight_entries
from landscape.init_weights import InitFrom
from landscape.formats import memory_formats, recorded_memory_formats, with_memory_formats
from landscape.precision import autocast_dtype, is_reduced, numerics
from landscape.probes.gradient import check_float64_probe
from landscape.probes.hessian import hessian_probes
from landscape.probes.sparsity import slbi_probes
from landscape.recorder import HDF5Recorder
from landscape.schedules import learning_rate
from landscape.store import RecordWriter, RunLayout, RunStatus, open_record
from landscape.tasks import Task, make_task, penalized
from landscape.train import LoopState, NoProgress, Progress, RunOutcome, TapPlan, train_run
from landscape.tuning import FORMATS
from landscape.version import __version__
from landscape.writer_lock import writer_lock


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model: str
    lr: float
    index: int
    seed: int = 0


@dataclass(frozen=True)
class RunResult:
    plan: RunPlan
    outcome: RunOutcome


ProgressFactory = Callable[[RunPlan, int, int], contextlib.AbstractContextManager[Progress]]


def plan_runs(config: RecordConfig) -> list[RunPlan]:
    """Seeds in the order given; for each, the models in the order given, each at every
    learning rate in the order given (so a sweep cut short has whole seeds of every model).
    Run ids carry the seed when the record has several."""
    several = len(config.seeds) > 1
    plans = []
    for seed in config.seeds:
        for model in config.model.models:
            for lr in config.optim.lrs:
                plans.append(RunPlan(run_id(model, lr, seed if several else None), model, lr,
                                     len(plans), seed))
    return plans


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else must exist on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{field_ref('device')} {name}: no CUDA device is available on "
                              f"this machine; use {field_ref('device')} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{field_ref('device')} {name}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def model_options(config: RecordConfig) -> dict:
    """The build_model options the config asks for beyond the model's own defaults (a model
    without such an option refuses it with a clear error)."""
    return config.model.options()


def parameter_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def resolve_taps(taps: tuple[str, ...], model: nn.Module, model_name: str) -> tuple[str, ...]:
    """The parameters a run taps: "final" stands for the weight of the model's last linear
    layer (classifier.fc3.weight in VGG-A, fc.weight in the ResNets, layers.fc25.weight in the
    deep linear network)."""
    if FINAL_TAP not in taps:
        return taps
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ConfigError(f"model {model_name!r} has no linear layer for "
                          f"{field_ref('recording.taps')} {FINAL_TAP}; name a parameter instead")
    return tuple(dict.fromkeys(f"{linear[-1]}.weight" if t == FINAL_TAP else t for t in taps))


def probe_model(config: RecordConfig, model_name: str) -> nn.Module:
    """A model to read names and shapes from, built without touching the global random state
    (which the runs' initialization, dropout and noise draw from)."""
    with torch.random.fork_rng(devices=[]):
        return build_model(model_name, **model_options(config))


def check_taps(taps: tuple[str, ...], shapes: dict[str, tuple[int, ...]],
               model_name: str) -> None:
    for tap in taps:
        if tap not in shapes:
            close = difflib.get_close_matches(tap, list(shapes), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else \
                f"e.g. {', '.join(list(shapes)[-4:])}"
            raise ConfigError(f"unknown tap {tap!r} for model {model_name!r}; {hint}")


def run_layouts(config: RecordConfig, plans: list[RunPlan], example: torch.Tensor
                ) -> list[RunLayout]:
    """What every run will record; checks taps and probed layers against each model."""
    recording = config.recording
    models = {m: probe_model(config, m) for m in config.model.models}
    for name, model in models.items():
        check_input(model, name, example)
    shapes = {m: parameter_shapes(model) for m, model in models.items()}
    channels = {m: activation_channels(config, model, example) for m, model in models.items()}
    layouts = []
    for plan in plans:
        taps = resolve_taps(recording.taps, models[plan.model], plan.model)
        check_taps(taps, shapes[plan.model], plan.model)
        # Layers are checked only for measurements that are on (a preset's ICS layers need
        # not exist in a model that is recorded with --ics-every 0).
        for layer in recording.ics_layers if recording.ics_every else ():
            layer_indices(list(shapes[plan.model]), layer)
        if recording.probe.every:
            select_parameters(list(shapes[plan.model]), recording.probe.params)
            if recording.probe.dtype == "float64":  # refused before the file exists
                check_float64_probe(models[plan.model],
                                    penalties=bool(config.optim.l1 or config.optim.l2))
        sparse = (resolve_sparse_layers(config.optim.slbi_layers, shapes[plan.model], plan.model)
                  if config.optim.optimizer in SLBI_OPTIMIZERS else [])
        layouts.append(RunLayout(
            run_id=plan.run_id,
            attrs={
                "model": plan.model,
                "lr": plan.lr,
                "optimizer": config.optim.optimizer,
                "seed": plan.seed,
                "index": plan.index,
                "parameter_count": int(sum(np.prod(s) for s in shapes[plan.model].values())),
                **({"probe_direction": recording.probe.direction,
                    "probe_dtype": recording.probe.dtype} if recording.probe.every else {}),
            },
            taps={t: shapes[plan.model][t] for t in taps},
            tap_dtype=recording.tap_dtype,
            n_eta=recording.probe.count if recording.probe.every else 0,
            ics_layers=recording.ics_layers if recording.ics_every else (),
            activations=channels[plan.model],
            weights=weight_entries(models[plan.model]) if recording.saves_weights else {},
            hessian_k=recording.hessian.k if recording.hessian.every else 0,
            hessian_density_nodes=(recording.hessian.density_iters
                                   * recording.hessian.density_vectors
                                   if recording.hessian.density_at else 0),
            sparse_layers={n: shapes[plan.model][n] for n in sparse},
        ))
    return layouts


def check_input(model: nn.Module, model_name: str, example: torch.Tensor) -> None:
    """Refuse, before the file exists, a model that cannot take the data's images (LeNet-5's
    28x28 single-channel input and CIFAR-10's 3x32x32, say)."""
    if example.dim() != 4:
        return  # not images: the deep linear network's vectors
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            model.eval()(example)
        except RuntimeError as exc:
            shape = "x".join(map(str, example.shape[1:]))
            raise ConfigError(f"model {model_name!r} cannot take the data's {shape} images "
                              f"({str(exc).splitlines()[0]}); pick a model for this dataset "
                              f"(lenet5 for mnist)") from None


def activation_channels(config: RecordConfig, model: nn.Module, example: torch.Tensor
                        ) -> dict[str, int]:
    if not config.recording.activation_every:
        return {}
    with torch.random.fork_rng(devices=[]):
        return {layer: output_channels(model, layer, example)
                for layer in config.recording.activation_layers}


def versions() -> dict[str, str]:
    return {
        "landscape": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": platform.python_version(),
    }


def make_optimizer(config: RecordConfig, params, lr: float, *,
                   model: nn.Module | None = None, model_name: str = "") -> torch.optim.Optimizer:
    """torch's optimizer with its own defaults for everything the config does not set (betas,
    eps, RMSprop's alpha). Weight decay is the optimizer's: L2 added to the gradient for sgd,
    adam and rmsprop, decoupled for adamw; it is not part of the recorded loss (--l2 is)."""
    optim = config.optim
    wd = optim.weight_decay
    if optim.optimizer in SLBI_OPTIMIZERS:  # needs the parameters' names: the model
        return make_slbi(model, model_name, adam=optim.optimizer == "slbi_adam", lr=lr,
                         kappa=optim.slbi_kappa, mu=optim.slbi_mu, layers=optim.slbi_layers,
                         momentum=optim.momentum, weight_decay=wd)
    if optim.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=optim.momentum,
                               nesterov=optim.nesterov, weight_decay=wd)
    betas = {} if optim.betas is None else {"betas": optim.betas}
    if optim.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, **betas)
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, **betas)
    if optim.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=optim.momentum, weight_decay=wd)
    raise ConfigError(f"unknown optimizer {optim.optimizer!r}", field="optim.optimizer")


def record(
    config: RecordConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    task: Task | None = None,
    progress: ProgressFactory | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunResult]:
    """Train every (model, lr) run of `config` and write the record to `out`.

    `task` (see landscape.tasks.make_task) holds the data on the device; by default it is made
    from `config`. Everything that can be wrong with the options or the data is checked before
    the file is created. A run whose loss becomes non-finite is recorded as diverged and the
    sweep goes on. When `should_stop()` says yes, the current run stops after its step, is
    checkpointed and marked interrupted, and no further run starts (`resume` continues). On
    KeyboardInterrupt the current run is marked interrupted and the interrupt propagates.
    """
    check_counts(config)
    device = torch.device(config.device)
    if task is None:
        task = make_task(config, device)
    plans = plan_runs(config)
    check_weight_steps(config, task.stream(plans[0].seed).steps_per_epoch)
    layouts = run_layouts(config, plans, task.example_input())
    check_init_from(config)
    formats = memory_formats(config, task, device)  # after the checks: they fail fast
    layouts = with_memory_formats(layouts, plans, formats)
    check_sweep_resources(config, task, layouts, Path(out))
    with writer_lock(out):  # one writer per record (see landscape.writer_lock)
        checkpoint_path(out).unlink(missing_ok=True)  # a stale one would belong to another record
        with RecordWriter.create(out, config=config.to_dict(), data=task.identity.to_dict(),
                                 runs=layouts, versions=versions(), overwrite=overwrite) as writer:
            return _train_runs(config, plans, task, writer, Path(out), progress, should_stop,
                               resume_from=None, formats=formats)


def check_init_from(config: RecordConfig) -> None:
    """Refuse (before the file exists) --init-from weights that are missing or do not fit
    one of the models."""
    if config.model.init_from is not None:
        source = InitFrom.parse(config.model.init_from)
        for name in config.model.models:
            source.load_into(probe_model(config, name), name)


def check_weight_steps(config: RecordConfig, steps_per_epoch: int) -> None:
    """Refuse (before the file exists) weights asked for at steps the runs will not reach."""
    total = config.optim.total_steps(steps_per_epoch)
    late = [s for s in config.recording.save_weights_at if s >= total]
    if late:
        raise ConfigError(f"{field_ref('recording.save_weights_at')} {late[0]} is past the last "
                          f"step of these runs (steps 0 to {total - 1}); 'final' keeps the "
                          f"weights after the last step")


def check_resume_compatible(path: str | Path, recorded: RecordConfig, *,
                            asked: RecordConfig | None = None,
                            data_now: Mapping | None = None,
                            data_then: Mapping | None = None) -> None:
    """Refuse to continue the record at `path` (configured as `recorded`) with other options
    (`asked`: ConfigError naming every difference; the device may differ) or with other data
    than it was recorded with (`data_now` and `data_then`, identity dicts: RecordError)."""
    if asked is not None:
        differences = resume_differences(recorded, asked)
        if differences:
            raise ConfigError(f"{field_ref('resume')} continues {path} with its own options; "
                              f"these differ: " + "; ".join(differences))
    if data_now is not None:
        for key in ("name", "n_train", "n_test", "train_sha256", "test_sha256", "val_sha256"):
            now, then = data_now[key], (data_then or {}).get(key, "")
            if now != then:
                raise RecordError(
                    f"the data found now differ from the data {path} was recorded with "
                    f"({key}: {now} now, {then} then)")


def resume(
    path: str | Path,
    *,
    device: str | None = None,
    progress: ProgressFactory | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunResult]:
    """Continue every run of the record at `path` that is not finished, from its checkpoint
    (or from its start if it has none); finished runs are left as they are. On a CPU the result
    is identical to a record that was never interrupted. `device` overrides the record's."""
    path = Path(path)
    open_record(path)  # a missing or foreign file is named before a lock file is made for it
    with writer_lock(path):
        return _resume_locked(path, device=device, progress=progress, should_stop=should_stop)


def _resume_locked(path: Path, *, device: str | None, progress: ProgressFactory | None,
                   should_stop: Callable[[], bool]) -> list[RunResult]:
    rec = open_record(path)
    config = RecordConfig.from_dict(rec.config)
    if device is not None:
        config = config.with_changes(device=device)
    task = make_task(config, torch.device(config.device))
    check_resume_compatible(path, config, data_now=task.identity.to_dict(), data_then=rec.data)
    plans = [p for p in plan_runs(config) if not rec.runs[p.run_id].finished]
    formats = recorded_memory_formats(rec, plans)
    saved = load_checkpoint(checkpoint_path(path))
    with RecordWriter.reopen(path) as writer:
        for plan in plans:
            start = saved.loop.next_step if saved and saved.run_id == plan.run_id else 0
            writer.run(plan.run_id).truncate(start)
        writer.start_appending()
        return _train_runs(config, plans, task, writer, path, progress, should_stop,
                           resume_from=saved, formats=formats)


def _train_runs(config: RecordConfig, plans: list[RunPlan], task: Task, writer: RecordWriter,
                path: Path, progress: ProgressFactory | None, should_stop: Callable[[], bool],
                *, resume_from: Checkpoint | None,
                formats: Mapping[str, str] | None = None) -> list[RunResult]:
    device = torch.device(config.device)
    n_runs = len(plan_runs(config))
    results = []
    with numerics(device, config.allow_tf32):
        for plan in plans:
            saved = resume_from if resume_from and resume_from.run_id == plan.run_id else None
            fmt = (formats or {}).get(plan.model)
            run_task = task if fmt is None else task.using(FORMATS[fmt])
            result = _train_one(config, plan, n_runs, run_task, writer, device, progress,
                                should_stop, path, saved)
            results.append(result)
            if result.outcome.status == RunStatus.INTERRUPTED:
                return results
            checkpoint_path(path).unlink(missing_ok=True)  # nothing left to continue
    return results


def make_probes(config: RecordConfig, model: nn.Module) -> list:
    names = [n for n, _ in model.named_parameters()]
    probes: list = []
    recording = config.recording
    if recording.probe.every:
        probes.append(GradientProbe(recording.probe, names=names))
    if recording.ics_every:
        probes.append(ICSProbe(every=recording.ics_every, layers=recording.ics_layers,
                               names=names))
    for layer in recording.activation_layers if recording.activation_every else ():
        probes.append(ActivationProbe(model, layer, every=recording.activation_every))
    if recording.saves_weights:
        probes.append(WeightsProbe(model, every=recording.save_weights_every,
                                   at=recording.save_weights_at,
                                   final=recording.save_final_weights,
                                   best=recording.keep_best))
    probes.extend(hessian_probes(recording.hessian))
    return probes


def _train_one(config: RecordConfig, plan: RunPlan, n_runs: int, task: Task,
               writer: RecordWriter, device: torch.device, progress: ProgressFactory | None,
               should_stop: Callable[[], bool], path: Path,
               saved: Checkpoint | None) -> RunResult:
    recording = config.recording
    recorder = HDF5Recorder(writer, plan.run_id, flush_seconds=recording.flush_seconds,
                            steps_recorded=saved.loop.next_step if saved else 0)
    torch.manual_seed(plan.seed)  # the same initialization at every learning rate
    model = build_model(plan.model, **model_options(config))
    if config.model.init_from is not None:  # after the seeded init: the same random state
        InitFrom.parse(config.model.init_from).load_into(model, plan.model)
    model = model.to(device=device, memory_format=task.memory_format)
    optimizer = make_optimizer(config, model.parameters(), plan.lr, model=model,
                               model_name=plan.model)
    stream = task.stream(plan.seed)
    if saved is not None:
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        stream.restore(saved.stream)
        torch.set_rng_state(saved.rng_cpu)
        if saved.rng_cuda is not None and device.type == "cuda":
            torch.cuda.set_rng_state(saved.rng_cuda, device)
    total = config.optim.total_steps(stream.steps_per_epoch)
    schedule = partial(learning_rate, config.optim, plan.lr, steps_per_epoch=stream.steps_per_epoch,
                       total_steps=total)
    # The objective: the task's loss plus the penalties, over the parameters the loop trains.
    objective = penalized(task.loss_fn, [p for p in model.parameters() if p.requires_grad],
                          l1=config.optim.l1, l2=config.optim.l2)
    probes = make_probes(config, model) + slbi_probes(optimizer, total)
    taps = TapPlan(resolve_taps(recording.taps, model, plan.model), recording.tap_every,
                   torch.float16 if recording.tap_dtype == "float16" else torch.float32)
    ckpt_file = checkpoint_path(path)

    def checkpoint(loop: LoopState) -> None:
        save_checkpoint(ckpt_file, Checkpoint(
            run_id=plan.run_id, loop=loop, model=model.state_dict(),
            optimizer=optimizer.state_dict(), rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            stream=stream.state()))

    recorder.state(RunStatus.RUNNING, steps_done=saved.loop.next_step if saved else 0, flush=True)
    bar = progress(plan, n_runs, total) if progress else contextlib.nullcontext(NoProgress())
    try:
        with bar as reporter:
            if saved is not None:
                reporter.advance(saved.loop.next_step, loss=math.nan, images_per_second=0.0)
            outcome = train_run(
                model, optimizer, stream.batches(),
                total_steps=total,
                steps_per_epoch=stream.steps_per_epoch,
                eval_every=config.optim.eval_every,
                recorder=recorder,
                evaluate=task.evaluate,
                validate=task.validate,
                early_stop=config.optim.early_stop,
                early_stop_metric=config.optim.early_stop_metric,
                early_stop_min_delta=config.optim.early_stop_min_delta,
                keep_best=recording.keep_best,
                lr_schedule=schedule,
                loss_fn=objective,
                correct_fn=task.correct_fn,
                taps=taps,
                probes=probes,
                progress=reporter,
                resume_from=saved.loop if saved else None,
                checkpoint=checkpoint,
                checkpoint_seconds=recording.checkpoint_seconds,
                should_stop=should_stop,
                autocast_dtype=autocast_dtype(config.precision),
                reduced_precision=is_reduced(config.precision, device),
            )
    except KeyboardInterrupt:
        recorder.interrupted()
        raise
    return RunResult(plan, outcome)
