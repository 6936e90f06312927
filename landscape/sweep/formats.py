"""Which memory format each run of a record trains in: chosen once when the record starts
(measured or cached per machine and model by `landscape.training.tuning`), kept as the run attribute
`memory_format`, and continued by `--resume` and by retried Ray tasks. A choice of speed only:
both formats compute the same numbers to float32 rounding.

`plans` below are the sweep's run plans (anything with `.run_id`, `.model`, `.lr` and
`.factors`); formats are kept per run, as the runs of a record with axes may differ in their
model's options or batch size.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Mapping, Sequence

import torch

from landscape.config import RecordConfig
from landscape.models import build_model
from landscape.training.precision import autocast_dtype, numerics
from landscape.store import Record, RunLayout
from landscape.training.tasks import IMAGE_CLASSIFICATION, Task, data_shape, for_run
from landscape.training.tuning import DEFAULT_FORMAT, choose_memory_format


def with_memory_formats(layouts: list[RunLayout], plans: Sequence,
                        formats: Mapping[str, str]) -> list[RunLayout]:
    """Each run keeps the format it trains in (a run attribute), so that --resume (and a
    retried Ray task) continues in the same one."""
    return [replace(layout, attrs={**layout.attrs, "memory_format": formats[plan.run_id]})
            for layout, plan in zip(layouts, plans)]


def recorded_memory_formats(rec: Record, plans: Sequence) -> dict[str, str]:
    """The format each run of a record started in, to continue in it. Records made before the
    choice have none: their runs trained (and continue) in the task's own format."""
    return {p.run_id: str(rec.runs[p.run_id].attrs["memory_format"]) for p in plans
            if "memory_format" in rec.runs[p.run_id].attrs}


def run_memory_formats(config: RecordConfig, task: Task, device: torch.device,
                       plans: Sequence) -> dict[str, str]:
    """The memory format of every run (by run id): `memory_formats` of the run's own
    configuration (its model options and batch size), once per distinct one."""
    chosen: dict[tuple, dict[str, str]] = {}
    out = {}
    for plan in plans:
        key = (plan.model, tuple(plan.factors.items()))
        if key not in chosen:
            run_config = config.run_config(plan.model, plan.lr, plan.factors) if config.axes \
                else config
            chosen[key] = memory_formats(run_config, for_run(task, run_config), device)
        out[plan.run_id] = chosen[key][plan.model]
    return out


def memory_formats(config: RecordConfig, task: Task, device: torch.device) -> dict[str, str]:
    """The memory format each model trains in (landscape.training.tuning): for image models the
    one the configuration pins (`memory_format`, every preset: channels_last; `--reproducible`
    pins channels_last too), else the faster of channels-last and contiguous on this machine,
    measured or cached; NCHW otherwise. A format measured under load can differ from one
    measured on an idle machine, and the two round differently: a pinned one never does."""
    if task.name != IMAGE_CLASSIFICATION:
        return {m: "contiguous" for m in config.model.models}
    pinned = config.memory_format if config.memory_format != "auto" else \
        DEFAULT_FORMAT if config.reproducible else None
    if pinned is not None:
        return {m: pinned for m in config.model.models}
    shape = (config.optim.batch_size, *task.example_input().shape[1:])
    options = {**config.model.options(), **data_shape(task)}
    formats = {}
    with numerics(device, config.allow_tf32):
        for model in config.model.models:
            formats[model], _ = choose_memory_format(
                partial(build_model, model, **options), model=model, options=options,
                batch_shape=shape, device=device, precision=config.precision,
                autocast_dtype=autocast_dtype(config.precision))
    return formats
