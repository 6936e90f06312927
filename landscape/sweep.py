"""The grid of runs of a record: one training run per (model, learning rate), into one file."""

from __future__ import annotations

import contextlib
import difflib
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np
import torch
from torch import nn

import landscape
from landscape.config import RecordConfig, run_id
from landscape.data import BatchOptions, BatchStream, DeviceImages, ImageData, eval_batches
from landscape.data import load_dataset
from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.probes import GradientProbe
from landscape.recorder import HDF5Recorder
from landscape.store import RecordWriter, RunLayout
from landscape.train import NoProgress, Progress, RunOutcome, TapPlan, train_run


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model: str
    lr: float
    index: int


@dataclass(frozen=True)
class RunResult:
    plan: RunPlan
    outcome: RunOutcome


ProgressFactory = Callable[[RunPlan, int, int], contextlib.AbstractContextManager[Progress]]


def plan_runs(config: RecordConfig) -> list[RunPlan]:
    """Models in the order given, each at every learning rate in the order given."""
    plans = []
    for model in config.models:
        for lr in config.lrs:
            plans.append(RunPlan(run_id(model, lr), model, lr, len(plans)))
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
            raise ConfigError(f"--device {name}: no CUDA device is available on this machine; "
                              f"use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s)")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def model_options(config: RecordConfig) -> dict:
    return {} if config.width == 1.0 else {"width": config.width}


def parameter_shapes(config: RecordConfig, model_name: str) -> dict[str, tuple[int, ...]]:
    model = build_model(model_name, **model_options(config))
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def check_taps(config: RecordConfig, shapes: dict[str, tuple[int, ...]], model_name: str) -> None:
    for tap in config.taps:
        if tap not in shapes:
            close = difflib.get_close_matches(tap, list(shapes), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else \
                f"e.g. {', '.join(list(shapes)[-4:])}"
            raise ConfigError(f"unknown tap {tap!r} for model {model_name!r}; {hint}")


def run_layouts(config: RecordConfig, plans: list[RunPlan]) -> list[RunLayout]:
    shapes = {m: parameter_shapes(config, m) for m in config.models}
    layouts = []
    for plan in plans:
        check_taps(config, shapes[plan.model], plan.model)
        layouts.append(RunLayout(
            run_id=plan.run_id,
            attrs={
                "model": plan.model,
                "lr": plan.lr,
                "optimizer": config.optimizer,
                "seed": config.seed,
                "index": plan.index,
                "parameter_count": int(sum(np.prod(s) for s in shapes[plan.model].values())),
            },
            taps={t: shapes[plan.model][t] for t in config.taps},
            tap_dtype=config.tap_dtype,
            n_eta=config.probe.count if config.probe.every else 0,
        ))
    return layouts


def versions() -> dict[str, str]:
    return {
        "landscape": landscape.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def numerics(device: torch.device, allow_tf32: bool) -> Iterator[None]:
    """Full float32 unless TF32 is asked for; restores torch's global flags afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.backends.cudnn.benchmark = device.type == "cuda"
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved


def make_optimizer(config: RecordConfig, params, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    raise ConfigError(f"unknown optimizer {config.optimizer!r}")


def evaluator(images: DeviceImages, options: BatchOptions,
              memory_format: torch.memory_format) -> Callable[[nn.Module], tuple[float, float]]:
    def evaluate(model: nn.Module) -> tuple[float, float]:
        model.eval()
        total_loss = torch.zeros((), dtype=torch.float64, device=images.device)
        correct = torch.zeros((), dtype=torch.int64, device=images.device)
        with torch.no_grad():
            for x, y in eval_batches(images, options, memory_format=memory_format):
                logits = model(x)
                total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
        n = len(images)
        return float(total_loss) / n, int(correct) / n

    return evaluate


def record(
    config: RecordConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    data: ImageData | None = None,
    progress: ProgressFactory | None = None,
) -> list[RunResult]:
    """Train every (model, lr) run of `config` and write the record to `out`.

    Everything that can be wrong with the options or the data is checked before the file is
    created. A run whose loss becomes non-finite is recorded as diverged and the sweep goes on.
    On KeyboardInterrupt the current run is marked interrupted and the interrupt propagates.
    """
    device = torch.device(config.device)
    if data is None:
        data = load_dataset(config.data_dir, download=config.download,
                            verify_md5=config.verify_md5, subset=config.subset)
    plans = plan_runs(config)
    layouts = run_layouts(config, plans)
    batch_options = BatchOptions(batch_size=config.batch_size, mean=config.mean, std=config.std,
                                 crop_padding=config.crop_padding, flip=config.flip)
    if len(data.train_y) < config.batch_size:
        raise ConfigError(f"batch size {config.batch_size} is larger than the "
                          f"{len(data.train_y)} training images")
    train_images = DeviceImages(data.train_x, data.train_y, device)
    test_images = DeviceImages(data.test_x, data.test_y, device)
    # NHWC is what the conv kernels are fastest with, on CPU (oneDNN) and GPU (cuDNN) alike.
    memory_format = torch.channels_last

    results = []
    with RecordWriter.create(out, config=config.to_dict(), data=data.identity.to_dict(),
                             runs=layouts, versions=versions(), overwrite=overwrite) as writer, \
            numerics(device, config.allow_tf32):
        for plan in plans:
            recorder = HDF5Recorder(writer, plan.run_id, flush_seconds=config.flush_seconds)
            torch.manual_seed(config.seed)
            model = build_model(plan.model, **model_options(config))
            model = model.to(device=device, memory_format=memory_format)
            optimizer = make_optimizer(config, model.parameters(), plan.lr)
            stream = BatchStream(train_images, batch_options, seed=config.seed,
                                 memory_format=memory_format)
            total = stream.steps_per_epoch * config.epochs
            if config.max_steps is not None:
                total = min(total, config.max_steps)
            names = [n for n, _ in model.named_parameters()]
            probes = [GradientProbe(config.probe, lr=plan.lr, names=names)] \
                if config.probe.every else []
            taps = TapPlan(config.taps, config.tap_every,
                           torch.float16 if config.tap_dtype == "float16" else torch.float32)
            recorder.state("running", steps_done=0)
            bar = progress(plan, len(plans), total) if progress else \
                contextlib.nullcontext(NoProgress())
            try:
                with bar as reporter:
                    outcome = train_run(
                        model, optimizer, stream.epoch,
                        total_steps=total,
                        steps_per_epoch=stream.steps_per_epoch,
                        recorder=recorder,
                        evaluate=evaluator(test_images, batch_options, memory_format),
                        taps=taps,
                        probes=probes,
                        sync_every=1 if device.type == "cpu" else 25,
                        progress=reporter,
                    )
            except KeyboardInterrupt:
                recorder.interrupted()
                raise
            results.append(RunResult(plan, outcome))
    return results
