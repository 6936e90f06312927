"""Several grid points at once on a CPU: one weight set per core, each on its own copy of the
model, where that measures faster than one weight set on all cores.

A small network's forward pass on a few hundred images is too small to keep several cores
busy: torch's threads synchronize after every operation, and on a CPU shared with other work
they wait for each other. Evaluating W weight sets at once, each in its own Python thread with
torch's intra-op parallelism at one thread (torch releases the GIL inside its kernels), keeps
every core on a pass of its own. Which is faster depends on the machine, the model and its
load, so it is measured on the surface's own model and batch before the grid starts (a few
passes, well under a second for the models a surface is usually drawn for); the values are
the same to float32 rounding either way (one thread sums in another order than two).

Stochastic layers (dropout, noisy BatchNorm) draw from torch's one global generator, reseeded
before every pass so that every grid point sees the same draws: threads would interleave those
draws, so a model whose forward pass draws random numbers is evaluated one point at a time.
"""

from __future__ import annotations

import copy
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

# Parallel points are kept only when they beat one point at a time by this fraction (closer is
# noise, and the serial path is the simpler one).
MARGIN = 0.05
ROUNDS = 3  # timed rounds of each way; the fastest counts


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def draws_random_numbers(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether a forward pass of `model` on `x` draws from torch's CPU generator."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        before = torch.get_rng_state()
        model(x)
        return not torch.equal(before, torch.get_rng_state())


def cpu_workers(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """How many weight sets to evaluate at once on this CPU: torch's thread count where W
    passes on W threads (one intra-op thread each) beat W passes one after another on all
    threads by MARGIN, else 1. Measured on `model` (left unchanged) and the first batch."""
    threads = torch.get_num_threads()
    x = batches[0][0]
    if threads < 2 or draws_random_numbers(model, x):
        return 1
    replicas = [model] + [copy.deepcopy(model) for _ in range(threads - 1)]

    def serial() -> None:
        for _ in replicas:
            model(x)

    def parallel() -> None:
        with intra_op_threads(1):
            _run_threads([lambda m=m: m(x) for m in replicas])

    with torch.no_grad():
        serial(), parallel()  # warm-up (allocator, oneDNN primitives)
        times = {way: min(_timed(fn) for _ in range(ROUNDS))
                 for way, fn in (("serial", serial), ("parallel", parallel))}
    return threads if times["parallel"] < (1 - MARGIN) * times["serial"] else 1


def on_threads(evaluate: Callable, coefficients: torch.Tensor, models: Sequence[nn.Module]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """`evaluate(rows, model)` -> (totals, corrects) for the rows of `coefficients`, spread
    round-robin over one thread per model (each its own copy: weights are written in place),
    one intra-op thread each; the results in the rows' order."""
    parts: list = [None] * len(models)

    def work(k: int) -> None:
        rows = coefficients[k::len(models)]
        if len(rows):
            parts[k] = evaluate(rows, models[k])

    with intra_op_threads(1):
        _run_threads([lambda k=k: work(k) for k in range(len(models))])
    totals = torch.empty(len(coefficients), dtype=torch.float64)
    corrects = torch.empty(len(coefficients), dtype=torch.float64)
    for k, part in enumerate(parts):
        if part is not None:
            totals[k::len(models)], corrects[k::len(models)] = part[0].cpu(), part[1].cpu()
    return totals, corrects


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _run_threads(jobs: list[Callable[[], object]]) -> None:
    """Run each job on a thread of its own, without gradients (the grad mode is per thread);
    an exception in one is raised here."""
    errors: list[BaseException] = []

    def guarded(job):
        try:
            with torch.no_grad():
                job()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller below)
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
