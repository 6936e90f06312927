"""Bounds on every option that sizes memory or disk, checked before anything is allocated.

Two kinds of check, both raising ConfigError (one line naming the option):

- `check_counts(config)`: documented limits on counts that size arrays directly (step lengths
  per probe, learning rates, seeds, runs). They are far above any study the paper or the
  course describes and far below what exhausts a machine. Another measurement that sizes
  memory by a count (a loss surface's resolution, say) adds a row to `COUNT_LIMITS`.
- `check_resources(...)`: estimates, from the model and the data, of the memory one training
  step needs (which grows with the batch size) and of the disk the record will fill (steps ×
  taps × runs), against what this machine has free.

The limits are listed in docs/errors.md ("Limits").
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from landscape.config import RecordConfig
from landscape.config.record import MAX_RUNS, check_run_count  # noqa: F401 (MAX_RUNS re-exported)
from landscape.errors import ConfigError, field_ref
from landscape.store.side_files import file_size_limit


@dataclass(frozen=True)
class CountLimit:
    field: str  # the configuration field (named by its flag on the command line)
    count: Callable[[RecordConfig], int]
    limit: int
    message: str  # with {flag}, {n} and {limit}


COUNT_LIMITS: list[CountLimit] = [
    CountLimit("recording.probe.count", lambda c: c.recording.probe.count, 1000,
               "{flag} {n} is more than {limit:,}, the most step lengths one probe takes"),
    CountLimit("optim.lrs", lambda c: len(c.optim.lrs), 100,
               "{flag} lists {n:,} learning rates, more than {limit:,}, the most a record "
               "holds; split the sweep into several records"),
    CountLimit("seeds", lambda c: len(c.seeds), 100,
               "{flag} lists {n:,} seeds, more than {limit:,}, the most a record holds; split "
               "the sweep into several records"),
    # The Hessian probe holds one vector of the model's size per Lanczos step, per Hutchinson
    # sample and per density vector at once (landscape/curvature.py).
    CountLimit("recording.hessian.iters", lambda c: c.recording.hessian.iters, 500,
               "{flag} {n:,} is more than {limit:,}, the most Lanczos steps one measurement "
               "takes"),
    CountLimit("recording.hessian.trace_samples", lambda c: c.recording.hessian.trace_samples,
               500, "{flag} {n:,} is more than {limit:,}, the most vectors one trace estimate "
                    "takes"),
    CountLimit("recording.hessian.density_iters", lambda c: c.recording.hessian.density_iters,
               500, "{flag} {n:,} is more than {limit:,}, the most Lanczos steps per density "
                    "vector"),
    CountLimit("recording.hessian.density_vectors",
               lambda c: c.recording.hessian.density_vectors, 100,
               "{flag} {n:,} is more than {limit:,}, the most vectors one density takes"),
]


def check_counts(config: RecordConfig) -> None:
    """The documented limits (see the module docstring)."""
    for rule in COUNT_LIMITS:
        n = rule.count(config)
        if n > rule.limit:
            raise ConfigError(rule.message.format(flag=field_ref(rule.field), n=n,
                                                  limit=rule.limit), field=rule.field)
    check_run_count(config)  # models x lrs x seeds x the axes' levels, counted


# One training step keeps every layer's output for the backward pass and builds a gradient of
# the same size; the probe repeats forward and backward at its points, and BatchNorm and the
# activation functions keep copies: four times the forward outputs, a generous estimate.
ACTIVATION_FACTOR = 4
# Parameters, their gradients, the previous step's copies, the optimizer's state (Adam: two)
# and the probe's moved weights.
PARAMETER_COPIES = 8


def step_memory_bytes(model: nn.Module, example: torch.Tensor, batch_size: int) -> int:
    """An estimate of the memory one training step of `model` takes at `batch_size`: the
    outputs of every module on `example` (scaled to the batch) and copies of the parameters."""
    outputs = 0

    def count(module, inputs, output):
        nonlocal outputs
        if isinstance(output, torch.Tensor) and not list(module.children()):
            outputs += output.numel() * output.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            was_training = model.training
            model.eval()
            model(example)
            model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    per_sample = outputs / len(example)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(per_sample * batch_size * ACTIVATION_FACTOR + parameters * PARAMETER_COPIES)


def available_memory(device: torch.device) -> int:
    """Bytes free for a new allocation on `device` (CPU: the kernel's MemAvailable)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_disk(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def record_bytes(config: RecordConfig, layouts: Sequence, total_steps: int) -> int:
    """An estimate of the bytes a record of these runs fills when every run takes all its
    steps: the per-step rows, the tapped tensors, the probes, the kept weights, the evaluations."""
    recording = config.recording
    kept = kept_weight_steps(recording, total_steps)
    step_row = 8 + 5 * 4 + 8  # step; loss, |g|, |g - g_prev|, |dw|, applied |g|; lr
    tapped = total_steps if recording.tap_every == 1 else 2 * (total_steps // recording.tap_every
                                                               + 1)
    tap_item = 2 if recording.tap_dtype == "float16" else 4
    probes = total_steps // recording.probe.every + 1 if recording.probe.every else 0
    total = 0
    for layout in layouts:
        total += total_steps * step_row
        for shape in layout.taps.values():  # a table per tap: step, gradient, weight delta
            total += tapped * (8 + 2 * int(torch.Size(shape).numel()) * tap_item)
        total += probes * (8 + layout.n_eta * (8 + 4 + 4 + 8) + 8)
        state = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                    for shape, dtype in layout.weights.values())
        total += kept * (8 + state)  # a whole state_dict per kept step
    return total


def kept_weight_steps(recording, total_steps: int) -> int:
    """How many times a run keeps its weights (--save-weights-every/-at, final)."""
    steps = set(recording.save_weights_at)
    if recording.save_weights_every:
        steps.update(range(0, total_steps, recording.save_weights_every))
    return len({s for s in steps if s < total_steps}) + bool(recording.save_final_weights)


def check_resources(config: RecordConfig, *, model: nn.Module, example: torch.Tensor,
                    device: torch.device, layouts: Sequence, total_steps: int,
                    out: Path) -> None:
    """Refuse a batch size whose step would not fit in `device`'s free memory, and a record
    that would not fit on the disk that holds `out`."""
    batch = config.optim.batch_size
    need = step_memory_bytes(model, example, batch)
    have = available_memory(device)
    if need > have:
        raise ConfigError(f"{field_ref('optim.batch_size')} {batch} needs about "
                          f"{_gib(need)} of memory per training step on {device}, and "
                          f"{_gib(have)} is free; use a smaller {field_ref('optim.batch_size')}")
    check_hessian_memory(config, model, device, have - need)
    check_disk(record_bytes(config, layouts, total_steps), len(layouts), total_steps, out)


# What each count of the Hessian probe holds at once, in vectors of the model's size
# (landscape/probes/curvature.py): Lanczos keeps its whole basis (full reorthogonalization);
# Hutchinson draws all its Rademacher vectors at once, as int8 and then as two float arrays
# while they become ±1; a density runs Lanczos once per vector, one after another.
_HESSIAN_VECTORS = (("recording.hessian.iters", "Lanczos steps", lambda h: h.iters * 4),
                    ("recording.hessian.trace_samples", "trace vectors",
                     lambda h: h.trace_samples * 9),
                    ("recording.hessian.density_iters", "Lanczos steps per density vector",
                     lambda h: h.density_iters * 4))
_HESSIAN_WORK_VECTORS = 6  # v, w, Hv and the reorthogonalization's products


def hessian_memory_bytes(config: RecordConfig, n_params: int) -> tuple[int, str]:
    """(bytes, the count that needs most) the Hessian probe holds at once for a model of
    `n_params` parameters (float32 vectors), besides the training step; (0, "") without it."""
    hessian = config.recording.hessian
    used = {"recording.hessian.iters": hessian.every > 0,
            "recording.hessian.trace_samples": hessian.every > 0,
            "recording.hessian.density_iters": bool(hessian.density_at)}
    sizes = [(bytes_per(hessian) * n_params, field, words)
             for field, words, bytes_per in _HESSIAN_VECTORS if used[field]]
    if not sizes:
        return 0, ""
    largest = max(sizes)
    return largest[0] + _HESSIAN_WORK_VECTORS * 4 * n_params, largest[1]


def check_hessian_memory(config: RecordConfig, model: nn.Module, device: torch.device,
                         have: int) -> None:
    """Refuse Hessian counts whose vectors would not fit beside a training step."""
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    need, field = hessian_memory_bytes(config, n_params)
    if need > have:
        count = {"recording.hessian.iters": config.recording.hessian.iters,
                 "recording.hessian.trace_samples": config.recording.hessian.trace_samples,
                 "recording.hessian.density_iters": config.recording.hessian.density_iters
                 }[field]
        raise ConfigError(f"{field_ref(field)} {count:,} needs about {_gib(need)} of memory "
                          f"for the Hessian probe's vectors ({count:,} of the model's "
                          f"{n_params:,} parameters at once) beside a training step on "
                          f"{device}, and {_gib(max(have, 0))} is free; use fewer",
                          field=field)


def check_disk(need: int, n_runs: int, total_steps: int, out: Path) -> None:
    """Refuse a record of `need` bytes that would not fit on the disk that holds `out`."""
    if not n_runs:
        return
    folder = Path(out).resolve().parent
    if not folder.is_dir():
        return  # said when the record is created
    free, limit = free_disk(folder), file_size_limit()
    if need > min(free, limit):
        size = _gib if free <= limit else _size  # a file-size limit is often a few MiB
        room = (f"{folder} has {_gib(free)} free" if free <= limit else
                f"the file-size limit (ulimit -f) lets a file grow to {_size(limit)}")
        raise ConfigError(
            f"the record would need about {size(need)} ({n_runs} runs of {total_steps:,} "
            f"steps with their taps, probes and kept weights), and {room}; record fewer "
            f"steps, tap less ({field_ref('recording.tap_every')}, "
            f"{field_ref('recording.taps')}), keep weights less often or make room")


def _size(n: int) -> str:
    return _gib(n) if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_hessian_resources(config: RecordConfig, task) -> None:
    """`check_hessian_memory` for each model of the record on the task's data (before the
    probe's cost is measured: timing a Hessian-vector product of a large model takes minutes)."""
    from landscape.models import build_model  # as in check_sweep_resources

    if not config.recording.hessian.enabled:
        return
    device, example = torch.device(config.device), task.example_input()
    for name in config.model.models:
        with torch.random.fork_rng(devices=[]):
            model = build_model(name, **config.model.options())
        step = step_memory_bytes(model, example, config.optim.batch_size)
        check_hessian_memory(config, model, device, available_memory(device) - step)


def check_sweep_resources(config: RecordConfig, task, layouts: Sequence, out: Path, *,
                          runs: Sequence[tuple] | None = None) -> None:
    """`check_resources` for the largest model of a sweep, on the task's data. A record with
    axes gives `runs`: (configuration, task, layouts) per distinct run configuration; each is
    checked for memory, and the disk for all of them together."""
    from landscape.models import build_model  # models sit below; imported here to stay light
    from landscape.training.tasks import data_shape

    device = torch.device(config.device)
    example = task.example_input()
    need, longest, n_runs = 0, 0, 0
    for run_config, run_task, run_layouts in (runs or [(config, task, layouts)]):
        with torch.random.fork_rng(devices=[]):  # the runs' random state is not touched
            models = [build_model(name, **run_config.model.options(), **data_shape(task))
                      for name in run_config.model.models]
        total_steps = run_config.optim.total_steps(
            run_task.stream(run_config.seeds[0]).steps_per_epoch)
        batch = run_config.optim.batch_size
        largest = max(models, key=lambda m: step_memory_bytes(m, example, batch))
        check_resources(run_config, model=largest, example=example, device=device, layouts=(),
                        total_steps=total_steps, out=out)  # memory; the disk below, once
        need += record_bytes(run_config, run_layouts, total_steps)
        longest, n_runs = max(longest, total_steps), n_runs + len(run_layouts)
    check_disk(need, n_runs, longest, out)


def check_run_resources(config: RecordConfig, task, model_name: str, layout, out: Path,
                        device: torch.device) -> None:
    """`check_resources` for one run where it executes: a Ray worker checks its own device's
    memory and the disk that holds its shard (the driver's check saw only the driver's)."""
    from landscape.models import build_model  # as in check_sweep_resources
    from landscape.training.tasks import data_shape

    with torch.random.fork_rng(devices=[]):  # the run's initialization is drawn after this
        model = build_model(model_name, **config.model.options(), **data_shape(task))
    total_steps = config.optim.total_steps(task.stream(config.seeds[0]).steps_per_epoch)
    check_resources(config, model=model, example=task.example_input(), device=device,
                    layouts=[layout], total_steps=total_steps, out=out)
