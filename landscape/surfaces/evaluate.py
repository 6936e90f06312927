"""The loss of one model at many weight sets w + Σⱼ cⱼ·dⱼ, many per forward pass.

`torch.func.functional_call` under `torch.vmap` runs K weight sets through the network in one
batched pass (convolutions become one grouped convolution, matrix products one batched
product): on a GPU, where a small network's pass leaves most of the device idle, that is where
a surface's time is won. On a CPU one weight set at a time is faster (see `default_chunk`), and
with several cores several weight sets at once, each on its own core and its own copy of the
model, where that measures faster than one set on all cores (`landscape.surfaces.speed`).
Where vmap cannot run the model (a layer that updates a buffer in place during the forward
pass, such as the ℓp normalizations' running statistics, or an operation without a batching
rule) the evaluator falls back to one weight set at a time and says so in `vectorized`.

BatchNorm in training mode (`bn="train"`) normalizes with the statistics of the batch, as in
training; its running statistics are then neither used nor updated, so the evaluator drops
them from its own copy of the model (`torch.func.replace_all_batch_norm_modules_`), which is
also what makes the layer run under vmap. In `bn="eval"` mode the running statistics the run
had kept are used, unmoved: a surface moves the parameters only.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Callable, Literal, Sequence

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.surfaces.speed import cpu_workers, on_threads

BnMode = Literal["train", "eval"]
BN_MODES = ("train", "eval")
Direction = dict[str, torch.Tensor]
# The most weight sets one pass evaluates: beyond this the batched pass is no faster per point.
MAX_CHUNK = 64


class GridEvaluator:
    """Loss (and accuracy) of `model` at w + Σⱼ c[k, j]·dⱼ for rows k of a coefficient matrix,
    on `batches` (a list of (x, y); the loss is the image-weighted mean over them, each batch
    normalized on its own in training mode, as training did).

    `objective(output, y)` is the loss of one batch; `penalty(params)` (optional) adds the
    record's ℓ1/ℓ2 terms at the moved weights. `correct_fn(output, y)` counts correct
    predictions (None: accuracy NaN). Stochastic layers (dropout, noisy BatchNorm) draw from a
    generator reseeded with `seed` before every pass, so every grid point sees the same draws.
    `chunk` weight sets go through one batched pass (None: `default_chunk`); with 1, one at a
    time without vmap. On a CPU, without `chunk`, `workers` threads evaluate as many weight
    sets at once (None: as many as torch has threads where that measured faster, else 1:
    `speed.cpu_workers`). `compile` runs the one-at-a-time passes through `torch.compile`
    (tens of seconds to compile, then faster passes: for large grids; off by default).
    """

    def __init__(self, model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 directions: Sequence[Direction], *,
                 objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 correct_fn: Callable | None = None,
                 penalty: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
                 bn: BnMode = "train", seed: int = 0, chunk: int | None = None,
                 workers: int | None = None, compile: bool = False) -> None:
        if bn not in BN_MODES:
            raise ConfigError(f"--bn must be one of {', '.join(BN_MODES)}, got {bn!r}")
        if chunk is not None and chunk < 1:
            raise ConfigError(f"--chunk must be at least 1, got {chunk}")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        # A copy: its BatchNorm layers lose their running statistics in training mode.
        self.model = copy.deepcopy(model)
        self.model.train(bn == "train")
        if bn == "train":
            torch.func.replace_all_batch_norm_modules_(self.model)
        self.batches = list(batches)
        self.n_images = sum(len(y) for _, y in self.batches)
        self.objective, self.correct_fn, self.penalty = objective, correct_fn, penalty
        self.seed = seed
        # A copy: the one-by-one path writes every weight set into the model's parameters.
        self.base = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        self.buffers = {n: b.detach() for n, b in self.model.named_buffers()}
        missing = [n for d in directions for n in self.base if n not in d]
        if missing:
            raise ValueError(f"directions lack parameters {missing[:3]}")
        # [D, *shape] per parameter: the directions stacked, for one einsum per chunk.
        self.stacked = {n: torch.stack([d[n].to(w) for d in directions]) for n, w in
                        self.base.items()}
        self.device = next(iter(self.base.values())).device
        self.forward_model = torch.compile(self.model) if compile else self.model
        self.workers = 1
        if chunk is not None or self.device.type == "cuda":  # weight sets per batched pass
            self.chunk = chunk if chunk is not None else default_chunk(self)
        else:  # a CPU: one weight set per pass, on each of `workers` threads
            self.workers = workers if workers is not None else (
                1 if compile else cpu_workers(self.model, self.batches))
            self.chunk = self.workers
        self.vectorized = self.workers == 1 and self.chunk > 1
        self.replicas = [copy.deepcopy(self.model) for _ in range(self.workers - 1)]

    def weights(self, coefficients: torch.Tensor) -> dict[str, torch.Tensor]:
        """[K, D] coefficients -> parameter name -> [K, *shape] weight sets."""
        c = coefficients.to(self.device)
        return {n: w.unsqueeze(0) + torch.einsum("kd,d...->k...", c.to(w.dtype),
                                                 self.stacked[n])
                for n, w in self.base.items()}

    def __call__(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and accuracy (float64 [K] on the CPU) at the K rows of `coefficients`,
        `self.chunk` at a time."""
        losses, accuracies = [], []
        start = 0
        while start < len(coefficients):
            part = coefficients[start:start + self.chunk]
            try:
                loss, accuracy = self._chunk(part)
            except torch.OutOfMemoryError:
                if self.chunk == 1:
                    raise
                self.chunk = max(1, self.chunk // 2)  # the estimate was too bold: halve it
                continue
            losses.append(loss)
            accuracies.append(accuracy)
            start += len(part)
        return torch.cat(losses), torch.cat(accuracies)

    def _chunk(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices()):
            if self.vectorized:
                try:
                    total, correct = self._vmapped(coefficients)
                except torch.OutOfMemoryError:
                    raise
                except (RuntimeError, NotImplementedError):
                    # vmap cannot run this model (see the module docstring): from here on one
                    # weight set at a time.
                    self.vectorized, self.chunk = False, 1
                    total, correct = self._one_by_one(coefficients)
            elif self.workers > 1:
                total, correct = on_threads(self._one_by_one, coefficients,
                                            [self.model, *self.replicas])
            else:
                total, correct = self._one_by_one(coefficients)
        accuracy = (correct / self.n_images if self.correct_fn is not None
                    else torch.full_like(correct, math.nan))
        return (total / self.n_images).cpu(), accuracy.cpu()

    def _forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        output = torch.func.functional_call(self.model, (params, self.buffers), (x,))
        right = (self.correct_fn(output, y) if self.correct_fn is not None
                 else output.new_zeros(()))
        return self.objective(output, y), right

    def _vmapped(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss (times images) and correct counts, float64 [K], in batched passes."""
        weights = self.weights(coefficients)
        k = len(coefficients)
        total = torch.zeros(k, dtype=torch.float64, device=self.device)
        correct = torch.zeros(k, dtype=torch.float64, device=self.device)
        batched = torch.vmap(self._forward, in_dims=(0, None, None), randomness="same")
        for x, y in self.batches:
            self._reseed()
            loss, right = batched(weights, x, y)
            total += loss.double() * len(y)
            correct += right.double()
        if self.penalty is not None:
            total += self.n_images * torch.stack(
                [self.penalty({n: w[i] for n, w in weights.items()}) for i in range(k)]
            ).double()
        return total, correct

    def _one_by_one(self, coefficients: torch.Tensor, model: nn.Module | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same, one weight set at a time. Each is written into the evaluator's own model
        (or `model`, a replica of it) in place (w, then + cⱼ·dⱼ) and the model called as it
        is: building the weight set out of place and functional_call's re-parametrization cost
        more than the forward pass of a small model."""
        run = self.forward_model if model is None else model
        params = list((model or self.model).parameters())
        base = list(self.base.values())
        directions = [[self.stacked[n][j] for n in self.base] for j in
                      range(coefficients.shape[1])]
        totals, corrects = [], []
        for row in coefficients.tolist():
            torch._foreach_copy_(params, base)
            for c, direction in zip(row, directions):
                torch._foreach_add_(params, direction, alpha=c)
            total = torch.zeros((), dtype=torch.float64, device=self.device)
            correct = torch.zeros((), dtype=torch.float64, device=self.device)
            for x, y in self.batches:
                self._reseed()
                output = run(x)
                total += self.objective(output, y).double() * len(y)
                if self.correct_fn is not None:
                    correct += self.correct_fn(output, y).double()
            if self.penalty is not None:
                total += self.n_images * self.penalty(
                    dict(zip(self.base, params))).double()
            totals.append(total)
            corrects.append(correct)
        return torch.stack(totals), torch.stack(corrects)

    def _reseed(self) -> None:
        # The generators the model can draw from, seeded directly: torch.manual_seed would
        # also queue seeds for every other backend, which costs more than a small forward pass.
        torch.default_generator.manual_seed(self.seed)
        if self.device.type == "cuda":
            torch.cuda.default_generators[self.device.index or 0].manual_seed(self.seed)

    def _rng_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of every module's output in one forward pass of `x` (no gradients kept): what one
    more weight set in a batched pass adds, besides its weights."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


def memory_budget(device: torch.device) -> int:
    """Bytes a batched pass may use: half the free memory of a GPU; on a CPU a quarter of the
    available memory, at most 4 GiB (beyond that the CPU is the limit, not memory)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        available = 4 << 30
    return min(available // 4, 4 << 30)


def default_chunk(evaluator: GridEvaluator) -> int:
    """How many weight sets one pass can take: on a GPU the memory budget over what one weight
    set needs (its weights, and its activations on the largest batch, twice for the
    temporaries of the batched kernels), at most MAX_CHUNK. On a CPU 1: there a batched pass
    is much slower than one pass per weight set (benchmarks/curvature_surfaces.py, vgg_light
    with BN, 256 images, 2 threads: 68.6 ms per point with 8 points per vmap pass, 8.75 ms one
    by one), as the grouped convolutions vmap turns convolutions into have no fast CPU
    kernels."""
    if evaluator.device.type != "cuda":
        return 1
    x = max((x for x, _ in evaluator.batches), key=len)
    weight_bytes = sum(w.numel() * w.element_size() for w in evaluator.base.values())
    per_point = weight_bytes + 2 * activation_bytes(evaluator.model, x)
    return int(max(1, min(MAX_CHUNK, memory_budget(evaluator.device) // max(per_point, 1))))
