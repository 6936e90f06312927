"""What the Hessian probe will cost, said before a record starts: Hessian-vector products per
probed step (an upper bound: Lanczos may stop early) times the measured time of one product on
this machine, for each model of the record.

A Hessian step on a BatchNorm VGG takes most of a minute on a CPU; without a word up front, a
bar that reads `46.99s/step` looks like a hang. One product is timed per model (a warm-up
product first: the first double backward allocates), on the task's first batch, in float32
(as the probe runs)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from landscape.config.hessian import HessianConfig
from landscape.probes.curvature import HessianOperator
from landscape.training.precision import float32_math


def products_per_probed_step(config: HessianConfig) -> int:
    """At most this many products at each `every`-th step: Lanczos (`iters`) and the trace."""
    return config.iters + config.trace_samples if config.every else 0


def density_products(config: HessianConfig) -> int:
    """Products at each `density_at` step."""
    return config.density_iters * config.density_vectors


def probed_steps(config: HessianConfig, total_steps: int) -> tuple[int, int]:
    """(steps probed for eigenvalues and trace, steps with a density) in a run of
    `total_steps` steps (0 … total_steps − 1)."""
    every = math.ceil(total_steps / config.every) if config.every else 0
    density = sum(0 <= s < total_steps for s in config.density_at)
    return every, density


def seconds_per_product(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        loss_fn: Callable, *, repeats: int = 2) -> float:
    """Measured seconds of one Hessian-vector product of loss_fn(model(x), y) (the median of
    `repeats` after a warm-up), with the model in training mode like the probe. The model's
    parameters and gradients are untouched; BatchNorm's running statistics move by one forward
    (time it on a model that is not trained afterwards)."""
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    with float32_math():
        op = HessianOperator(loss_fn(model(x), y), params)
        v = torch.ones(op.n, dtype=op.dtype, device=op.device)
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            out = op(v)
            if out.is_cuda:
                torch.cuda.synchronize(out.device)
            times.append(time.perf_counter() - start)
    del op
    return sorted(times[1:])[len(times[1:]) // 2]


@dataclass(frozen=True)
class HessianCost:
    """The probe's cost for one model: products per run and the measured time of one."""

    model: str
    seconds_per_product: float
    products_per_step: int
    probed_steps: int
    density_steps: int
    density_products: int
    runs: int

    @property
    def products_per_run(self) -> int:
        return (self.products_per_step * self.probed_steps
                + self.density_products * self.density_steps)

    @property
    def seconds(self) -> float:
        """At most this many seconds of probing over all the model's runs."""
        return self.products_per_run * self.runs * self.seconds_per_product

    def text(self) -> str:
        parts = []
        if self.probed_steps:
            per_step = _seconds(self.products_per_step * self.seconds_per_product)
            parts.append(f"{self.probed_steps} probed steps x up to {self.products_per_step} "
                         f"products (up to {per_step} per probed step)")
        if self.density_steps:
            parts.append(f"{self.density_steps} density step{'s' if self.density_steps > 1 else ''}"
                         f" x {self.density_products} products")
        return (f"{self.model}: one Hessian-vector product takes "
                f"{_seconds(self.seconds_per_product)} here; per run {' + '.join(parts)}; "
                f"up to {_seconds(self.seconds)} over its {self.runs} "
                f"run{'s' if self.runs != 1 else ''}")


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def cost_text(costs: list[HessianCost]) -> str:
    """The lines `landscape record` prints before training."""
    total = sum(c.seconds for c in costs)
    return "\n".join([f"Hessian probe: up to {_seconds(total)} of Hessian-vector products in "
                      "all (Lanczos may stop early), besides training:",
                      *(f"  {c.text()}" for c in costs)])


def estimate_costs(config, task, plans, build: Callable[[str], nn.Module]) -> list[HessianCost]:
    """The probe's cost per model of a record (`config` a RecordConfig, `task` its Task, `plans`
    its RunPlans; `build(model_name)` a fresh model). Timing draws nothing from the global
    random state the runs use (dropout in the timed forward included)."""
    hessian = config.recording.hessian
    device = torch.device(config.device)
    costs = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        stream = task.stream(plans[0].seed)
        steps = config.optim.total_steps(stream.steps_per_epoch)
        every, density = probed_steps(hessian, steps)
        x, y = next(iter(stream.batches()))
        for name in dict.fromkeys(p.model for p in plans):
            model = build(name).to(device=x.device, memory_format=task.memory_format)
            seconds = seconds_per_product(model, x, y, task.loss_fn)
            del model
            costs.append(HessianCost(name, seconds, products_per_probed_step(hessian), every,
                                     density, density_products(hessian),
                                     sum(p.model == name for p in plans)))
    return costs
