"""When and on what a training loop evaluates (`EvaluationPlan`), and what an evaluation does
(`Evaluator`): the held-out and validation numbers recorded with the training loss and accuracy
since the last evaluation, early stopping (`early_stop_due`), and the weights kept at a new best
validation accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from torch import nn

from landscape.training.contracts import LoopState

if TYPE_CHECKING:  # the instrument imports nothing from here; typing only
    from landscape.training.instrument import Instrument


def early_stop_due(val_losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    """True when none of the last `patience` validation losses improved on (was lower by more
    than `min_delta` than) the best one before it. A NaN loss is no improvement. (For early
    stopping on accuracy the loop passes −accuracy: lower is better there too.)"""
    best, since_best = math.inf, 0
    for loss in val_losses:
        if loss < best - min_delta:
            best, since_best = loss, 0
        else:
            since_best += 1
    return since_best >= patience

@dataclass(frozen=True)
class EvaluationPlan:
    """When and on what the loop evaluates.

    `evaluate(model)` returns (loss, accuracy) on held-out data, every `every` steps and after
    the last step; `steps_per_epoch` converts steps to the recorded epoch. `validate(model)`
    (None: no validation data) returns (loss, accuracy) on the validation images at the same
    moments; with `early_stop` = N the run ends, complete with stop reason "early_stop", after an
    evaluation when the validation loss (`early_stop_metric` "loss") or accuracy ("acc") has not
    improved by more than `early_stop_min_delta` for N evaluations. With `keep_best`, every
    evaluation whose validation accuracy beats the best so far hands the probes that keep
    weights (`best_rows`) the moment to keep them.
    """

    evaluate: Callable[[nn.Module], tuple[float, float]]
    every: int
    steps_per_epoch: int
    validate: Callable[[nn.Module], tuple[float, float]] | None = None
    early_stop: int | None = None
    early_stop_metric: str = "loss"
    early_stop_min_delta: float = 0.0
    keep_best: bool = False

    def __post_init__(self) -> None:
        if (self.early_stop is not None or self.keep_best) and self.validate is None:
            raise ValueError("early stopping needs validation data (`validate`)")


class Evaluator:
    """The evaluations of one run of `total_steps` steps, and what early stopping and
    `keep_best` remember between them (every watched validation value, the best validation
    accuracy): the loop's checkpoint keeps both, and `resume_from` gives them back."""

    def __init__(self, plan: EvaluationPlan, total_steps: int,
                 resume_from: LoopState | None = None) -> None:
        self.plan, self.total_steps = plan, total_steps
        self.val_losses: list[float] = []  # every validation loss so far, for early stopping
        self.best_val_acc = -math.inf
        if resume_from is not None:
            self.val_losses = list(resume_from.val_losses)
            self.best_val_acc = resume_from.best_val_acc

    def due(self, step: int) -> bool:
        """Whether the loop evaluates after step `step`."""
        return (step + 1) % self.plan.every == 0 or step + 1 == self.total_steps

    def evaluate(self, step: int, model: nn.Module, instrument: "Instrument", *,
                 has_accuracy: bool) -> bool:
        """Evaluate after step `step` and record it through the run's instrument (which adds
        the training loss and accuracy since the last evaluation; `has_accuracy`: whether
        those count correct predictions); True when the run should stop early."""
        plan = self.plan
        test = plan.evaluate(model)
        val = plan.validate(model) if plan.validate is not None else (math.nan, math.nan)
        model.train()
        instrument.evaluation(test, val, epoch=(step + 1) / plan.steps_per_epoch,
                              has_accuracy=has_accuracy)
        val_loss, val_acc = val
        if plan.validate is not None:  # what early stopping watches: lower is better
            self.val_losses.append(-val_acc if plan.early_stop_metric == "acc" else val_loss)
        stop = (plan.early_stop is not None and step + 1 < self.total_steps
                and early_stop_due(self.val_losses, plan.early_stop, plan.early_stop_min_delta))
        if plan.keep_best and val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            # The weights at a new best: the rows of the probes that keep them (`last`: the
            # run ends here).
            instrument.keep_rows("best_rows", step + 1,
                                 last=stop or step + 1 == self.total_steps)
        return stop
