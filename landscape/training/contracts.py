"""What the training loop calls and what it hands back: the contracts that probes, recorders,
checkpoints and progress bars implement.

A module of its own so that the implementations (`landscape.probes`, `landscape.training.recorder`,
`landscape.training.checkpoint`, the CLI's progress bar) depend on these few definitions and not on the
loop itself (`landscape.training.loop`), which only calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Protocol

import numpy as np
import torch
from torch import nn

from landscape.store.schema import RunStatus, StopReason
from landscape.training.tensors import RngState

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (output, y) -> scalar loss
CorrectFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (output, y) -> count

# ---- A run's status and why it stopped (the record's `status` and `stop_reason`) -------------
# The names are the store's (landscape.store.schema); the loop takes them from here.
RUN_RUNNING = RunStatus.RUNNING  # not finished (yet)
RUN_COMPLETE = RunStatus.COMPLETE  # finished as planned, or stopped early
RUN_DIVERGED = RunStatus.DIVERGED  # the training loss became non-finite
RUN_INTERRUPTED = RunStatus.INTERRUPTED  # asked to stop; a checkpoint lets it continue

STOP_NONE = StopReason.NONE  # not finished, or interrupted
STOP_PLANNED = StopReason.PLANNED  # it ran every step it was planned to
STOP_EARLY = StopReason.EARLY_STOP  # the validation loss stopped improving
STOP_DIVERGED = StopReason.DIVERGED  # the training loss became non-finite


class RunRecorder(Protocol):
    """Where the loop puts what it measures (landscape.training.recorder has the implementations)."""

    def steps(self, rows: Mapping[str, np.ndarray]) -> None: ...

    def tap(self, parameter: str, rows: Mapping[str, np.ndarray]) -> None: ...

    def probe(self, name: str, rows: Mapping[str, np.ndarray]) -> None: ...

    def evaluation(self, row: Mapping[str, float]) -> None: ...

    def state(self, status: str, *, steps_done: int, diverged_step: int | None = None,
              seconds: float | None = None, flush: bool = False,
              stop_reason: str = STOP_NONE) -> None: ...


class Progress(Protocol):
    """A live view of the run, told about every host sync. It may also have
    `probing(name: str | None, step: int)`: the loop then tells it when a probe starts (its
    table's name) and ends (None)."""

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None: ...


class NoProgress:
    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        pass


BatchLossFn = Callable[[nn.Module, Any], torch.Tensor]  # (model, batch) -> scalar loss


def cast_floats(batch: Any, dtype: torch.dtype) -> Any:
    """`batch` with every floating-point tensor in it (in tuples, lists and dicts, as deep as
    they go) converted to `dtype`; labels, masks and everything else as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(dtype) if batch.is_floating_point() else batch
    if isinstance(batch, Mapping):
        return type(batch)({k: cast_floats(v, dtype) for k, v in batch.items()})
    if isinstance(batch, (tuple, list)):
        cast = [cast_floats(v, dtype) for v in batch]
        return type(batch)(*cast) if hasattr(batch, "_fields") else type(batch)(cast)
    return batch


@dataclass(frozen=True)
class StepBatch:
    """The data of a training step and how to recompute its loss L(w; B_t) at any weights.

    `parts` holds the step's batch, or the micro-batches of a step whose gradient was
    accumulated over several backward passes; `rng[i]` is the random state just before part
    i's training forward pass (None where nothing needs replaying), so that dropout masks and
    injected noise are those of the step. The step's loss is `loss_fn(model, part)` for one
    part, and the mean over the parts for several (the gradient a loop accumulates when it
    divides each micro-batch's loss by their number). With `eval_mode`, the loss is taken
    with the model in eval mode (BatchNorm's running statistics, no dropout): the labelled
    option of `ProbeConfig.bn`, never the default.
    """

    parts: tuple[Any, ...]
    rng: tuple[RngState | None, ...]
    loss_fn: BatchLossFn
    eval_mode: bool = False

    def loss(self, model: nn.Module, dtype: torch.dtype | None = None) -> torch.Tensor:
        """L(w; B_t) of `model` at its current weights (`dtype`: the batch's floating-point
        tensors converted first, e.g. for a float64 copy of the model)."""
        was_training = model.training
        if self.eval_mode:
            model.eval()
        try:
            total = None
            for part, rng in zip(self.parts, self.rng):
                if rng is not None:
                    rng.restore()
                loss = self.loss_fn(model, part if dtype is None else cast_floats(part, dtype))
                total = loss if total is None else total + loss
            return total if len(self.parts) == 1 else total / len(self.parts)
        finally:
            if self.eval_mode:
                model.train(was_training)


def output_loss(loss_fn: LossFn) -> BatchLossFn:
    """The batch loss of a loop that computes `loss_fn(model(x), y)` on batches (x, y)."""

    def batch_loss(model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return loss_fn(model(x), y)

    batch_loss.output_loss = loss_fn  # type: ignore[attr-defined]
    return batch_loss


@dataclass
class StepContext:
    """What a probe may look at during step `step`.

    Before the update `params` hold w_t; after it they hold w_{t+1}. The snapshots are the
    loop's own buffers: a probe reads them and never writes them. A probe recomputes the
    step's loss at other weights with `batch_loss()` (the step's batch, its random state
    replayed); `x`, `y`, `loss_fn` and `rng_before_forward` describe a step of one (x, y)
    batch and a loss of the model's output, as the built-in loop trains (`batch` is then made
    from them), and are None for other batches.
    """

    step: int
    model: nn.Module
    params: list[torch.Tensor]
    names: list[str]
    x: torch.Tensor | None
    y: torch.Tensor | None
    loss_fn: LossFn | None
    lr: float
    rng_before_forward: RngState | None  # replaying it reproduces the step's dropout/noise draws
    grad_snapshot: list[torch.Tensor]  # g_t (p.grad may be changed by a probe; this may not)
    param_snapshot: list[torch.Tensor]  # w_t
    # True when training ran in reduced precision (bf16, or TF32 on CUDA): g_t then carries
    # that arithmetic's rounding, and a float32 probe recomputes its reference gradient.
    reduced_precision: bool = False
    batch: StepBatch | None = None

    def __post_init__(self) -> None:
        if self.batch is None:
            if self.loss_fn is None:
                raise TypeError("StepContext needs a batch, or x, y and loss_fn")
            self.batch = StepBatch(((self.x, self.y),), (self.rng_before_forward,),
                                   output_loss(self.loss_fn))

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    @property
    def recompute_reference(self) -> bool:
        """Whether a probe must recompute ∇L(w_t; B_t) rather than take the training step's
        g_t: training's arithmetic rounded more than the probe's (reduced precision), or the
        probe's function is not training's (eval mode, `StepBatch.eval_mode`)."""
        return self.reduced_precision or self.batch.eval_mode

    def batch_loss(self, model: nn.Module | None = None, *,
                   dtype: torch.dtype | None = None) -> torch.Tensor:
        """L(w; B_t) of `model` (default: the run's) at its current weights, the step's
        random state replayed before each forward pass."""
        return self.batch.loss(self.model if model is None else model, dtype)


class Probe(Protocol):
    """A measurement at some steps that must leave training exactly as it would have been.

    `phase` says when `measure` runs: "forward" probes are `arm`ed (a method only they have)
    before the training forward pass and observe it (e.g. activation statistics);
    "before_update" probes run after the backward pass, at w_t; "after_update" probes run after
    the optimizer step, at w_{t+1}. `measure` returns device tensors; the loop moves them to the
    host at its next sync, as the rows of the probe's table `name`.

    A probe may set `reads_only = True` when it only reads (the weights, the optimizer's state,
    an activation): it neither changes `p.grad` nor replays the step's random state, so on its
    steps the loop keeps its fast path (no copy of g_t, no capture of the random state, and
    `StepContext.rng_before_forward` is None). Without it the loop assumes both are needed.

    A probe that carries state from one of its steps to the next (the Hessian probe's Lanczos
    starts) has `state_dict() -> dict` (CPU tensors and plain values) and
    `load_state_dict(dict)`: the loop keeps `{probe.name: probe.state_dict()}` in its
    checkpoint (`LoopState.probe_states`) and gives each back on resume.
    """

    name: str
    phase: Literal["forward", "before_update", "after_update"]

    def due(self, step: int) -> bool: ...

    def measure(self, ctx: StepContext) -> dict[str, torch.Tensor]: ...


@dataclass
class LoopState:
    """The training loop's own state at a step boundary (what a checkpoint adds to the model,
    optimizer, random and data-order state; see `train.train_run`)."""

    next_step: int
    prev_grads: list[torch.Tensor]  # g_{next_step − 1}, for the next gradient change
    since_eval: dict  # training loss/accuracy accumulated since the last evaluation
    images_done: int
    seconds: float
    val_losses: list[float] = field(default_factory=list)  # what early stopping watched so far
    best_val_acc: float = -math.inf  # the best validation accuracy so far (for keep_best)
    # {probe.name: probe.state_dict()} of the probes that carry state from step to step (those
    # with `state_dict` and `load_state_dict`, e.g. the Hessian probe's Lanczos starts): CPU
    # tensors and plain values, restored into the probes on resume.
    probe_states: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended."""

    status: str  # RUN_COMPLETE, RUN_DIVERGED or RUN_INTERRUPTED
    steps_done: int
    diverged_step: int | None
    seconds: float
    images_per_second: float
    final_loss: float
    stop_reason: str = STOP_NONE  # STOP_PLANNED, STOP_EARLY, STOP_DIVERGED; "" when interrupted
