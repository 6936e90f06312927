"""The training loop of one run, instrumented.

Per step it measures the training-batch loss, ‖g_t‖, ‖g_t − g_{t−1}‖ and ‖w_{t+1} − w_t‖, copies
the tapped parameters' gradients and weight deltas, and lets probes measure the landscape around
w_t. Everything stays on the device until `sync_every` steps have passed, then goes to the
recorder in one transfer (a host sync per step would stall a GPU). The loop knows nothing of
files: it hands numpy arrays to the recorder it is given.

The loop also applies a learning-rate schedule (a function of the step, set on the optimizer
before each step) and stops early when a validation loss stops improving (`early_stop_due`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from landscape.tensors import RngState, global_norm

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CorrectFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RunRecorder(Protocol):
    """Where the loop puts what it measures (landscape.recorder has the implementations)."""

    def steps(self, rows: Mapping[str, np.ndarray]) -> None: ...

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None: ...

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None: ...

    def evaluation(self, row: Mapping[str, float]) -> None: ...

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None, flush: bool = False,
              stop_reason: str = "") -> None: ...


# Why a finished run stopped (the record's `stop_reason`; "" while it has not finished).
STOP_PLANNED = "planned"  # it ran every step it was planned to
STOP_EARLY = "early_stop"  # the validation loss stopped improving (`early_stop_due`)
STOP_DIVERGED = "diverged"  # the training loss became non-finite


class Progress(Protocol):
    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None: ...


class NoProgress:
    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        pass


@dataclass
class StepContext:
    """What a probe may look at during step `step`.

    Before the update `params` hold w_t; after it they hold w_{t+1}. The snapshots are the
    loop's own buffers: a probe reads them and never writes them.
    """

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
    """A measurement at some steps that must leave training exactly as it would have been.

    `phase` says when `measure` runs: "forward" probes are `arm`ed before the training forward
    pass and observe it (e.g. activation statistics); "before_update" probes run after the
    backward pass, at w_t; "after_update" probes run after the optimizer step, at w_{t+1}.
    """

    name: str
    phase: Literal["forward", "before_update", "after_update"]

    def due(self, step: int) -> bool: ...

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "complete", "diverged" or "interrupted"
    steps_done: int
    diverged_step: int | None
    seconds: float
    images_per_second: float
    final_loss: float
    stop_reason: str = ""  # STOP_PLANNED, STOP_EARLY, STOP_DIVERGED; "" when interrupted


def early_stop_due(val_losses: Sequence[float], patience: int) -> bool:
    """True when none of the last `patience` validation losses improved on (was strictly lower
    than) the best one before it. A NaN loss is no improvement."""
    best, since_best = math.inf, 0
    for loss in val_losses:
        if loss < best:
            best, since_best = loss, 0
        else:
            since_best += 1
    return since_best >= patience


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


def classification_correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).sum()


def train_run(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    *,
    total_steps: int,
    steps_per_epoch: int,
    recorder: RunRecorder,
    evaluate: Callable[[nn.Module], tuple[float, float]],
    eval_every: int | None = None,
    validate: Callable[[nn.Module], tuple[float, float]] | None = None,
    early_stop: int | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    loss_fn: LossFn = nn.functional.cross_entropy,
    correct_fn: CorrectFn | None = classification_correct,
    taps: TapPlan = TapPlan(()),
    probes: Sequence[Probe] = (),
    sync_every: int = 25,
    sync_seconds: float = 0.5,
    progress: Progress = NoProgress(),
    resume_from: LoopState | None = None,
    checkpoint: Callable[[LoopState], None] | None = None,
    checkpoint_seconds: float = 60.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunOutcome:
    """Train `model` for `total_steps` steps from `batches`, recording as it goes.

    `evaluate(model)` returns (loss, accuracy) on held-out data; it runs every `eval_every`
    steps (default: once per epoch of `steps_per_epoch` steps) and after the last step.
    `validate(model)` (None: no validation data) returns (loss, accuracy) on the validation
    images at the same moments; with `early_stop` = N the run ends, "complete" with stop reason
    "early_stop", after an evaluation when the validation loss has not improved for N
    evaluations. `lr_schedule(step)` is the learning rate of each step, set on every parameter
    group before the step (None: the optimizer's own). `loss_fn(output, y)` is the objective
    that is minimized, recorded and probed.
    `correct_fn(output, y)` counts correct predictions for the training accuracy (None: no
    accuracy, e.g. for regression). A non-finite training loss ends the run as "diverged" at that
    step: rows up to and including it are recorded, later ones are not.

    Measurements go to the host every `sync_every` steps or `sync_seconds` seconds, whichever
    comes first: rarely enough not to stall a GPU or to cost Python time per step on small
    models, often enough for a live progress bar.

    Reliability: at a host sync at least `checkpoint_seconds` after the last one, the recorder
    is flushed and then `checkpoint(state)` is called with the loop's own state (the caller adds
    model, optimizer, random and data-order state); `resume_from` continues from such a state.
    `should_stop()` is asked after every step; when it says yes, the loop finishes the step,
    records and checkpoints it, and returns with status "interrupted".
    """
    eval_every = eval_every or steps_per_epoch
    if early_stop is not None and validate is None:
        raise ValueError("early stopping needs validation data (`validate`)")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    params = [p for _, p in named]
    tap_index = {n: names.index(n) for n in taps.names}
    device = params[0].device
    prev_grads = [torch.zeros_like(p) for p in params]  # g_{t−1}, then g_t
    prev_params = [torch.zeros_like(p) for p in params]  # w_t, then w_t − w_{t+1}
    nan = torch.tensor(float("nan"), device=device)

    pending = _Pending()
    since_eval = _TrainAccumulator()
    first_step, images_done, seconds_before = 0, 0, 0.0
    val_losses: list[float] = []  # every validation loss so far, for early stopping
    if resume_from is not None:
        first_step = resume_from.next_step
        with torch.no_grad():
            torch._foreach_copy_(prev_grads, [g.to(device) for g in resume_from.prev_grads])
        since_eval = _TrainAccumulator(**resume_from.since_eval)
        images_done, seconds_before = resume_from.images_done, resume_from.seconds
        val_losses = list(resume_from.val_losses)
    model.train()
    started = last_sync = last_checkpoint = time.perf_counter()
    last_loss = math.nan

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - started

    for step in range(first_step, total_steps):
        if lr_schedule is not None:
            lr_t = lr_schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr_t
        x, y = next(batches)
        due = [p for p in probes if p.due(step)]
        rng = RngState.capture(device) if due else None
        for probe in due:
            if probe.phase == "forward":
                probe.arm()

        output = model(x)  # (batch, classes) logits, or (batch, dim) for regression
        loss = loss_fn(output, y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        grads = [p.grad for p in params]
        with torch.no_grad():
            grad_norm, grad_change, tapped_grads = _measure_gradients(
                step, grads, prev_grads, params, prev_params, taps, tap_index, nan)

        def context() -> StepContext:
            return StepContext(step, model, params, names, x, y, loss_fn,
                               optimizer.param_groups[0]["lr"], rng, prev_grads, prev_params)

        for probe in due:
            if probe.phase != "after_update":
                pending.add_probe(probe.name, step, probe.measure(context()))

        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        for probe in due:
            if probe.phase == "after_update":
                pending.add_probe(probe.name, step, probe.measure(context()))

        with torch.no_grad():
            torch._foreach_sub_(prev_params, params)
            update_norm = global_norm(prev_params)
            for (name, i), g in zip(tap_index.items(), tapped_grads):
                pending.taps.setdefault(name, []).append(
                    (step, g, (-prev_params[i]).to(taps.dtype)))
            correct = correct_fn(output, y).float() if correct_fn else nan
            pending.stats.append(torch.stack([
                loss.float(), grad_norm, grad_change, update_norm, correct,
            ]))
        pending.steps.append(step)
        pending.lrs.append(lr)
        pending.batch_sizes.append(len(y))

        evaluation_due = (step + 1) % eval_every == 0 or step + 1 == total_steps
        stop = should_stop()
        if not (len(pending.steps) >= sync_every or evaluation_due or stop
                or time.perf_counter() - last_sync >= sync_seconds):
            continue
        last_sync = time.perf_counter()

        # ---- host sync: hand the pending rows to the recorder ----------------------------
        kept = pending.hand_over(recorder)
        images_done += kept.images
        since_eval.add(kept)
        last_loss = kept.last_loss
        progress.advance(kept.n, loss=last_loss, images_per_second=images_done / max(
            elapsed(), 1e-9))
        pending = _Pending()

        if kept.diverged_step is not None:
            seconds = elapsed()
            recorder.state("diverged", steps_done=kept.diverged_step + 1,
                           diverged_step=kept.diverged_step, seconds=seconds,
                           stop_reason=STOP_DIVERGED)
            return RunOutcome("diverged", kept.diverged_step + 1, kept.diverged_step, seconds,
                              images_done / seconds, last_loss, STOP_DIVERGED)
        if evaluation_due:
            test_loss, test_acc = evaluate(model)
            val_loss, val_acc = validate(model) if validate is not None else (math.nan,
                                                                               math.nan)
            model.train()
            recorder.evaluation({
                "step": step + 1,
                "epoch": (step + 1) / steps_per_epoch,
                "train_loss": since_eval.mean_loss(),
                "train_acc": since_eval.accuracy() if correct_fn else math.nan,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
            })
            since_eval = _TrainAccumulator()
            if validate is not None:
                val_losses.append(val_loss)
            if (early_stop is not None and step + 1 < total_steps
                    and early_stop_due(val_losses, early_stop)):
                seconds = elapsed()
                recorder.state("complete", steps_done=step + 1, seconds=seconds,
                               stop_reason=STOP_EARLY)
                return RunOutcome("complete", step + 1, None, seconds,
                                  images_done / max(seconds, 1e-9), last_loss, STOP_EARLY)
        if step + 1 == total_steps:
            break
        if stop or (checkpoint is not None
                    and time.perf_counter() - last_checkpoint >= checkpoint_seconds):
            # Rows first, then the checkpoint: a checkpoint never refers to unwritten rows.
            recorder.state("running", steps_done=step + 1, seconds=elapsed(), flush=True)
            if checkpoint is not None:
                checkpoint(LoopState(step + 1, [g.detach().cpu() for g in prev_grads],
                                     since_eval.as_dict(), images_done, elapsed(),
                                     list(val_losses)))
            last_checkpoint = time.perf_counter()
            if stop:
                recorder.state("interrupted", steps_done=step + 1, seconds=elapsed())
                return RunOutcome("interrupted", step + 1, None, elapsed(),
                                  images_done / max(elapsed(), 1e-9), last_loss)
        else:
            recorder.state("running", steps_done=step + 1, seconds=elapsed())

    seconds = elapsed()
    recorder.state("complete", steps_done=total_steps, seconds=seconds,
                   stop_reason=STOP_PLANNED)
    return RunOutcome("complete", total_steps, None, seconds, images_done / seconds, last_loss,
                      STOP_PLANNED)


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


@dataclass
class LoopState:
    """The training loop's own state at a step boundary (see `train_run`'s checkpoint)."""

    next_step: int
    prev_grads: list[torch.Tensor]  # g_{next_step − 1}, for the next gradient change
    since_eval: dict  # training loss/accuracy accumulated since the last evaluation
    images_done: int
    seconds: float
    val_losses: list[float] = field(default_factory=list)  # validation losses so far


@dataclass
class _Kept:
    """What one host sync handed to the recorder."""

    n: int
    images: int
    losses: np.ndarray
    correct: np.ndarray
    last_loss: float
    diverged_step: int | None


@dataclass
class _TrainAccumulator:
    """Training loss and accuracy of the steps since the last evaluation."""

    losses: list[float] = field(default_factory=list)
    correct: float = 0.0
    seen: int = 0

    def add(self, kept: _Kept) -> None:
        self.losses.extend(kept.losses.tolist())
        self.correct += float(np.sum(kept.correct))
        self.seen += kept.images

    def mean_loss(self) -> float:
        return float(np.mean(self.losses)) if self.losses else math.nan

    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else math.nan

    def as_dict(self) -> dict:
        return {"losses": list(self.losses), "correct": self.correct, "seen": self.seen}


class _Pending:
    """Device tensors of the steps since the last host sync."""

    def __init__(self) -> None:
        self.stats: list[torch.Tensor] = []
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.batch_sizes: list[int] = []
        self.taps: dict[str, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
        self.probes: dict[str, list[tuple[int, dict[str, torch.Tensor]]]] = {}

    def add_probe(self, name: str, step: int, values: dict[str, torch.Tensor]) -> None:
        self.probes.setdefault(name, []).append((step, values))

    def hand_over(self, recorder: RunRecorder) -> _Kept:
        """Move everything to the host in one transfer, cut at the first non-finite loss, and
        give it to the recorder."""
        stats = torch.stack(self.stats).cpu().numpy().astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(stats[:, 0]))
        keep = len(stats) if not len(bad) else int(bad[0]) + 1
        steps = np.asarray(self.steps[:keep], dtype=np.int64)
        recorder.steps({
            "step": steps,
            "loss": stats[:keep, 0],
            "grad_norm": stats[:keep, 1],
            "grad_change": stats[:keep, 2],
            "update_norm": stats[:keep, 3],
            "lr": np.asarray(self.lrs[:keep]),
        })
        last = int(steps[-1])
        for name, rows in self.taps.items():
            rows = [r for r in rows if r[0] <= last]
            if rows:
                recorder.tap(name, {
                    "step": np.array([r[0] for r in rows], dtype=np.int64),
                    "grad": torch.stack([r[1] for r in rows]).cpu().numpy(),
                    "weight_delta": torch.stack([r[2] for r in rows]).cpu().numpy(),
                })
        for name, rows in self.probes.items():
            rows = [r for r in rows if r[0] <= last]
            if rows:
                columns = {"step": np.array([r[0] for r in rows], dtype=np.int64)}
                for key in rows[0][1]:
                    columns[key] = torch.stack([r[1][key] for r in rows]).cpu().numpy()
                recorder.probe(name, columns)
        return _Kept(
            n=keep,
            images=int(sum(self.batch_sizes[:keep])),
            losses=stats[:keep, 0],
            correct=stats[:keep, 4],
            last_loss=float(stats[keep - 1, 0]),
            diverged_step=last if len(bad) else None,
        )
