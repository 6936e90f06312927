"""The training loop of one run, instrumented.

Per step it measures the training-batch loss, ‖g_t‖, ‖g_t − g_{t−1}‖ and ‖w_{t+1} − w_t‖, copies
the tapped parameters' gradients and weight deltas, and lets probes measure the landscape around
w_t. Everything stays on the device until `sync_every` steps have passed, then goes to the
recorder in one transfer (a host sync per step would stall a GPU). The loop knows nothing of
files: it hands numpy arrays to the recorder it is given.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from landscape.tensors import RngState, global_norm

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RunRecorder(Protocol):
    """Where the loop puts what it measures (landscape.recorder has the implementations)."""

    def steps(self, rows: Mapping[str, np.ndarray]) -> None: ...

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None: ...

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None: ...

    def evaluation(self, row: Mapping[str, float]) -> None: ...

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None) -> None: ...


class Progress(Protocol):
    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None: ...


class NoProgress:
    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        pass


@dataclass
class StepContext:
    """What a probe may look at during step `step` (after backward, before the update)."""

    step: int
    model: nn.Module
    params: list[torch.Tensor]
    names: list[str]
    x: torch.Tensor
    y: torch.Tensor
    loss_fn: LossFn
    lr: float
    rng_before_forward: RngState  # replaying it reproduces the step's dropout/noise draws
    grad_snapshot: list[torch.Tensor]  # g_t (p.grad may be changed by a probe; this may not)
    param_snapshot: list[torch.Tensor]  # w_t


class Probe(Protocol):
    """A measurement at some steps that must leave training exactly as it would have been."""

    name: str

    def due(self, step: int) -> bool: ...

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "complete" or "diverged"
    steps_done: int
    diverged_step: int | None
    seconds: float
    images_per_second: float
    final_loss: float


@dataclass(frozen=True)
class TapPlan:
    """Which parameters to tap and at which steps.

    With `every` > 1, steps kN and kN+1 are tapped, so that differences between consecutive
    steps (the course's gradient change) remain computable from thinned taps.
    """

    names: tuple[str, ...]
    every: int = 1
    dtype: torch.dtype = torch.float32

    def due(self, step: int) -> bool:
        return bool(self.names) and (self.every == 1 or step % self.every in (0, 1))


def train_run(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
    *,
    total_steps: int,
    steps_per_epoch: int,
    recorder: RunRecorder,
    evaluate: Callable[[nn.Module], tuple[float, float]],
    loss_fn: LossFn = nn.functional.cross_entropy,
    taps: TapPlan = TapPlan(()),
    probes: Sequence[Probe] = (),
    sync_every: int = 1,
    progress: Progress = NoProgress(),
) -> RunOutcome:
    """Train `model` for `total_steps` steps, recording as it goes.

    `epochs()` yields the batches of one epoch (a fresh order each call). `evaluate(model)`
    returns (loss, accuracy) on held-out data. A non-finite training loss ends the run as
    "diverged" at that step: rows up to and including it are recorded, later ones are not.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    params = [p for _, p in named]
    tap_index = {n: names.index(n) for n in taps.names}
    device = params[0].device
    prev_grads = [torch.zeros_like(p) for p in params]
    prev_params = [torch.zeros_like(p) for p in params]  # w_t during the step, then w_t − w_{t+1}
    nan = torch.tensor(float("nan"), device=device)

    pending = _Pending()
    model.train()
    started = time.perf_counter()
    images_done = 0
    epoch_losses: list[float] = []
    epoch_correct = 0
    epoch_seen = 0
    batches: Iterator | None = None
    last_loss = math.nan

    for step in range(total_steps):
        if step % steps_per_epoch == 0:
            batches = epochs()
        x, y = next(batches)
        due = [p for p in probes if p.due(step)]
        rng = RngState.capture(device) if due else None

        logits = model(x)  # (batch, classes)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        grads = [p.grad for p in params]
        with torch.no_grad():
            grad_norm, grad_change, tapped_grads = _measure_gradients(
                step, grads, prev_grads, params, prev_params, taps, tap_index, nan)
        for probe in due:
            ctx = StepContext(step, model, params, names, x, y, loss_fn,
                              optimizer.param_groups[0]["lr"], rng, prev_grads, prev_params)
            pending.probes.setdefault(probe.name, []).append((step, probe.measure(ctx)))

        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        with torch.no_grad():
            torch._foreach_sub_(prev_params, params)
            update_norm = global_norm(prev_params)
            for (name, i), g in zip(tap_index.items(), tapped_grads):
                pending.taps.setdefault(name, []).append(
                    (step, g, (-prev_params[i]).to(taps.dtype)))
            correct = (logits.argmax(1) == y).sum()
            pending.stats.append(torch.stack([
                loss.float(), grad_norm, grad_change, update_norm, correct.float(),
            ]))
        pending.steps.append(step)
        pending.lrs.append(lr)

        end_of_epoch = (step + 1) % steps_per_epoch == 0
        last_step = step + 1 == total_steps
        if not (len(pending.steps) >= sync_every or end_of_epoch or last_step):
            continue

        # ---- host sync: hand the pending rows to the recorder -------------------------------
        stats = torch.stack(pending.stats).cpu().numpy().astype(np.float64)
        diverged_at = _first_nonfinite(stats[:, 0])
        keep = len(stats) if diverged_at is None else diverged_at + 1
        steps = np.asarray(pending.steps[:keep], dtype=np.int64)
        recorder.steps({
            "step": steps,
            "loss": stats[:keep, 0],
            "grad_norm": stats[:keep, 1],
            "grad_change": stats[:keep, 2],
            "update_norm": stats[:keep, 3],
            "lr": np.asarray(pending.lrs[:keep]),
        })
        last_step_kept = int(steps[-1])
        _flush_taps(pending, recorder, last_step_kept)
        _flush_probes(pending, recorder, last_step_kept)
        epoch_losses.extend(stats[:keep, 0].tolist())
        epoch_correct += int(stats[:keep, 4].sum())
        epoch_seen += keep * len(y)
        last_loss = float(stats[keep - 1, 0])
        images_done += keep * len(y)
        progress.advance(keep, loss=last_loss, images_per_second=images_done / max(
            time.perf_counter() - started, 1e-9))
        pending = _Pending()

        if diverged_at is not None:
            seconds = time.perf_counter() - started
            recorder.state("diverged", steps_done=last_step_kept + 1,
                           diverged_step=last_step_kept, seconds=seconds)
            return RunOutcome("diverged", last_step_kept + 1, last_step_kept, seconds,
                              images_done / seconds, last_loss)
        if end_of_epoch or last_step:
            test_loss, test_acc = evaluate(model)
            model.train()
            recorder.evaluation({
                "step": step + 1,
                "epoch": (step + 1) / steps_per_epoch,
                "train_loss": float(np.mean(epoch_losses)),
                "train_acc": epoch_correct / epoch_seen,
                "test_loss": test_loss,
                "test_acc": test_acc,
            })
            epoch_losses, epoch_correct, epoch_seen = [], 0, 0
        recorder.state("running", steps_done=step + 1, seconds=time.perf_counter() - started)

    seconds = time.perf_counter() - started
    recorder.state("complete", steps_done=total_steps, seconds=seconds)
    return RunOutcome("complete", total_steps, None, seconds, images_done / seconds, last_loss)


def _measure_gradients(step, grads, prev_grads, params, prev_params, taps, tap_index, nan):
    """‖g_t‖, ‖g_t − g_{t−1}‖ and copies of the tapped gradients; leaves g_t in `prev_grads`
    and w_t in `prev_params` (the snapshots the probes and the update norm need)."""
    grad_norm = global_norm(grads)
    if step == 0:
        grad_change = nan
    else:
        torch._foreach_sub_(prev_grads, grads)
        grad_change = global_norm(prev_grads)
    torch._foreach_copy_(prev_grads, grads)
    torch._foreach_copy_(prev_params, params)
    tapped = []
    if taps.due(step):
        tapped = [grads[i].to(taps.dtype, copy=True) for i in tap_index.values()]
    return grad_norm, grad_change, tapped


class _Pending:
    """Device tensors of the steps since the last host sync."""

    def __init__(self) -> None:
        self.stats: list[torch.Tensor] = []
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.taps: dict[str, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
        self.probes: dict[str, list[tuple[int, dict[str, torch.Tensor]]]] = {}


def _first_nonfinite(values: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if len(bad) else None


def _flush_taps(pending: _Pending, recorder: RunRecorder, last_step: int) -> None:
    for name, rows in pending.taps.items():
        rows = [r for r in rows if r[0] <= last_step]
        if rows:
            recorder.tap(name, {
                "step": np.array([r[0] for r in rows], dtype=np.int64),
                "grad": torch.stack([r[1] for r in rows]).cpu().numpy(),
                "weight_delta": torch.stack([r[2] for r in rows]).cpu().numpy(),
            })


def _flush_probes(pending: _Pending, recorder: RunRecorder, last_step: int) -> None:
    for name, rows in pending.probes.items():
        rows = [r for r in rows if r[0] <= last_step]
        if rows:
            columns = {"step": np.array([r[0] for r in rows], dtype=np.int64)}
            for key in rows[0][1]:
                columns[key] = torch.stack([r[1][key] for r in rows]).cpu().numpy()
            recorder.probe(name, columns)
