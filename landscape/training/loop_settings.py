"""What a training loop is told besides its model, data and evaluations
(`landscape.training.evaluation`): what it minimizes (`Objective`), what it measures and how
often it hands it over (`TapPlan`, `Measurements`), in what arithmetic (`Arithmetic`), and how it
checkpoints, resumes and stops when asked (`Reliability`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from landscape.training.contracts import CorrectFn, LoopState, LossFn, Probe


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


def batch_correct(correct_fn: CorrectFn | None) -> Callable | None:
    """`correct_fn(output, y)` as the instrument calls it: on the output and the (x, y) batch."""
    if correct_fn is None:
        return None

    def correct(output, batch) -> torch.Tensor:
        return correct_fn(output, batch[1])

    return correct


@dataclass(frozen=True)
class Objective:
    """What the loop minimizes, records and probes (`loss_fn(output, y)`), and how it counts
    correct predictions for the training accuracy (`correct_fn`; None: no accuracy, e.g. for
    regression)."""

    loss_fn: LossFn = nn.functional.cross_entropy
    correct_fn: CorrectFn | None = classification_correct


@dataclass(frozen=True)
class Measurements:
    """What the loop measures besides the per-step rows, and how often it hands it all over.

    Measurements go to the host every `sync_every` steps or `sync_seconds` seconds, whichever
    comes first: rarely enough not to stall a GPU or to cost Python time per step on small
    models, often enough for a live progress bar.
    """

    taps: TapPlan = TapPlan(())
    probes: Sequence[Probe] = ()
    sync_every: int = 25
    sync_seconds: float = 0.5


@dataclass(frozen=True)
class Arithmetic:
    """The training step's precision (landscape.training.precision): `autocast` is the dtype of the
    forward pass's autocast (None: float32); `reduced` tells probes that g_t carries more
    rounding than float32's. Probes themselves always run in float32."""

    autocast: torch.dtype | None = None
    reduced: bool = False


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Reliability:
    """Checkpoints, resuming and being asked to stop.

    At a host sync at least `checkpoint_seconds` after the last one, the recorder is flushed and
    then `checkpoint(state)` is called with the loop's own state (the caller adds model,
    optimizer, random and data-order state); `resume_from` continues from such a state.
    `should_stop()` is asked after every step; when it says yes, the loop finishes the step,
    records and checkpoints it, and returns with status "interrupted".
    """

    resume_from: LoopState | None = None
    checkpoint: Callable[[LoopState], None] | None = None
    checkpoint_seconds: float = 60.0
    should_stop: Callable[[], bool] = _never

