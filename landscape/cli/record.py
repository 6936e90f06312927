"""`landscape record`: train every (model, learning rate) run into one HDF5 record.

The options are declared in `_record_options` and turned into a `RecordConfig` by
`_record_config`; `--resume` continues a record (`_resume`); `_record_progress` shows the runs."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

import click
import torch
from click.core import ParameterSource

from landscape.cli._executor import executor_for, pop_executor
from landscape.cli._record_config import build_config
from landscape.cli._record_help import RECORD_SECTIONS
from landscape.cli._record_options import record_options
from landscape.cli._record_progress import report_results, run_progress
from landscape.cli._resume import resume_record
from landscape.cli._sections import sectioned
from landscape.cli.common import graceful_stop, user_errors
from landscape.config import RecordConfig
from landscape.errors import ConfigError
from landscape.probes.hessian_cost import cost_text, estimate_costs
from landscape.store import check_record_output, open_record
from landscape.sweep import plan_runs, record as record_sweep
from landscape.sweep.init_from import init_from_records
from landscape.sweep.limits import check_counts, check_hessian_resources
from landscape.sweep.plans import RunPlan, planned_steps, probe_model
from landscape.training.tasks import make_task


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def runs_text(config: RecordConfig, plans: Sequence[RunPlan]) -> str:
    """'4 runs (2 models x 1 lr x 2 seeds: vgg_light, vgg_light_bn)': seeds counted as seeds.
    Where an axis applies to some models only (BatchNorm's placement), the product per model:
    '18 runs (vgg_light: 1 lr x 2 batch_size x 3 seeds = 6; vgg_light_bn: 1 lr x 2
    norm_placement x 2 batch_size x 3 seeds = 12)', so that the factors multiply to the count."""
    def factors(model_plans) -> str:
        counts = [len({p.factors[a.name] for p in model_plans if a.name in p.factors})
                  for a in config.axes]
        return "".join(f" x {n} {a.name}" for n, a in zip(counts, config.axes) if n)

    models = config.model.models
    lrs, seeds = _count(len(config.optim.lrs), 'lr'), _count(len(config.seeds), 'seed')
    by_model = {m: [p for p in plans if p.model == m] for m in models}
    if len({factors(ps) for ps in by_model.values()}) <= 1:
        return (f"{_count(len(plans), 'run')} ({_count(len(models), 'model')} x {lrs}"
                f"{factors(plans)} x {seeds}: {', '.join(models)})")
    parts = [f"{m}: {lrs}{factors(ps)} x {seeds} = {len(ps)}" for m, ps in by_model.items()]
    return f"{_count(len(plans), 'run')} ({'; '.join(parts)})"


def _check_resume_output(ctx: click.Context, resume_path: Path, out: Path,
                         overwrite: bool) -> None:
    """--resume continues a record in place: an -o naming another file, or --overwrite, would
    be ignored without a word."""
    open_record(resume_path)  # a missing or foreign file is named first
    if ctx.get_parameter_source("out") is not ParameterSource.DEFAULT and not (
            out.exists() and resume_path.exists() and out.samefile(resume_path)):
        raise ConfigError(f"--resume {resume_path} continues that record in place; -o {out} "
                          f"would be ignored: leave -o out (copy the record first to continue "
                          f"a copy)")
    if overwrite:
        raise ConfigError(f"--resume {resume_path} continues that record in place; --overwrite "
                          f"would be ignored: leave it out")


@click.command(cls=sectioned(RECORD_SECTIONS))
@record_options
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
        _check_resume_output(ctx, resume_path, out, overwrite)
        resume_record(ctx, resume_path, preset, options, ray_options)
        return
    config = build_config(ctx, preset, options)
    check_record_output(out, inputs=init_from_records(config))  # as record_sweep: said first
    check_counts(config)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it, or "
                          f"--resume {out} to continue it")
    task = make_task(config, torch.device(config.device))
    plans = plan_runs(config)
    click.echo(f"Data: {task.identity.describe()}", err=True)
    batch = "varied" if any(a.name == "batch_size" for a in config.axes) else \
        config.optim.batch_size
    click.echo(f"Device: {config.device}. {runs_text(config, plans)}, "
               f"{config.optim.optimizer}, batch {batch}. Writing {out}",
               err=True)
    if config.recording.hessian.enabled:  # what the probe will cost, before the wait
        check_hessian_resources(config, task)  # its vectors fit: before they are timed
        click.echo(cost_text(estimate_costs(config, task, plans,
                                            partial(probe_model, config))), err=True)
    with graceful_stop() as should_stop:
        try:
            with executor_for(ray_options, run_progress, len(plans),
                              planned_steps(config, task, plans)) as executor:
                results = record_sweep(config, out, executor=executor, overwrite=overwrite,
                                       task=task, should_stop=should_stop)
        except KeyboardInterrupt:
            raise click.ClickException(
                f"stopped at once: the current run is marked 'interrupted' in {out}; "
                f"continue with: landscape record --resume {out}") from None
    report_results(results, out)
