"""One run of a record, trained in the process that calls it: its model, optimizer, probes and
recorder built from the config, continued from a checkpoint when it has one. Both executors
call `train_one` (the local one in its own process, the Ray one inside each task), so a run
measures the same whoever schedules it."""

from __future__ import annotations

import contextlib
import math
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from landscape.config import RecordConfig
from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.optim import SLBI_OPTIMIZERS, make_slbi
from landscape.instrument.measurements import make_probes
from landscape.probes.sparsity import slbi_probes
from landscape.store import RecordWriter, RunStatus
from landscape.sweep.init_from import InitFrom
from landscape.sweep.plans import RunPlan, RunResult, model_options, plan_config, resolve_taps
from landscape.training.checkpoint import Checkpoint, checkpoint_path, save_checkpoint
from landscape.training.loop import LoopState, NoProgress, Progress, train_run
from landscape.training.loop_settings import TapPlan
from landscape.training.precision import autocast_dtype, is_reduced
from landscape.training.recorder import HDF5Recorder
from landscape.training.schedules import learning_rate
from landscape.training.tasks import Task, data_shape, for_run, penalized

ProgressFactory = Callable[[RunPlan, int, int], contextlib.AbstractContextManager[Progress]]


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



def train_one(config: RecordConfig, plan: RunPlan, n_runs: int, task: Task,
               writer: RecordWriter, device: torch.device, progress: ProgressFactory | None,
               should_stop: Callable[[], bool], path: Path,
               saved: Checkpoint | None) -> RunResult:
    config = plan_config(config, plan)  # from here on, this run's own configuration
    task = for_run(task, config)
    recording = config.recording
    recorder = HDF5Recorder(writer, plan.run_id, flush_seconds=recording.flush_seconds,
                            steps_recorded=saved.loop.next_step if saved else 0)
    torch.manual_seed(plan.seed)  # the same initialization at every learning rate
    model = build_model(plan.model, **model_options(config), **data_shape(task))
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
    probes = make_probes(config.recording, model) + slbi_probes(optimizer, total)
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
