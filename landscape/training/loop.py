"""`landscape record`'s training loop of one run.

It trains as any PyTorch loop does (forward, backward, the optimizer's step) and drives the
instrument (`landscape.training.instrument`) between the backward pass and the step, exactly as
a user's loop drives `landscape.Recorder`: the measurements (loss, ‖g_t‖, ‖g_t − g_{t−1}‖,
‖w_{t+1} − w_t‖, taps, the probes) are the instrument's, which also hands them to the recorder it
was given. The loop knows nothing of files.

The loop also applies a learning-rate schedule (a function of the step, set on the optimizer
before each step) and stops early when a validation loss stops improving (`early_stop_due`).

`TrainingLoop` is the loop; `train_run` is its convenience entry point with every setting as a
keyword. Its settings are `landscape.training.loop_settings`'s and
`landscape.training.evaluation`'s (which also evaluates and decides on early stopping); what the
loop calls and returns (probes, recorders, progress, loop state, outcome) is defined in
`landscape.training.contracts` and re-exported here.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from landscape.training.contracts import (  # noqa: F401 (re-exported: `from landscape.training.loop import ...`)
    RUN_COMPLETE, RUN_DIVERGED, RUN_INTERRUPTED, RUN_RUNNING, STOP_DIVERGED, STOP_EARLY,
    STOP_NONE, STOP_PLANNED, CorrectFn, LoopState, LossFn, NoProgress, Probe, Progress,
    RunOutcome, RunRecorder, StepContext,
)
from landscape.training.evaluation import EvaluationPlan, Evaluator
from landscape.training.instrument import Instrument, Sampling
from landscape.training.loop_settings import (Arithmetic, Measurements, Objective, Reliability,
                                              TapPlan, batch_correct, classification_correct)
from landscape.training.contracts import output_loss
from landscape.training.precision import training_autocast


class TrainingLoop:
    """One run's training loop: `run()` repeats `step`, and at a host sync `evaluate` and
    `checkpoint` when they are due; every way out goes through `finish`.

    The measurements are the instrument's (`landscape.training.instrument.Instrument`), which
    this loop drives exactly as a user's loop drives `landscape.Recorder`: a forward pass, a
    backward pass, `instrument.step(batch, loss)`, the optimizer's step. Without an
    `instrument` the loop makes one from its settings (objective, measurements, arithmetic,
    resume state) over `recorder`.

    A non-finite training loss ends the run as "diverged" at that step: rows up to and including
    it are recorded, later ones are not.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
        *,
        total_steps: int,
        recorder: RunRecorder,
        evaluation: EvaluationPlan,
        objective: Objective = Objective(),
        lr_schedule: Callable[[int], float] | None = None,
        measurements: Measurements = Measurements(),
        reliability: Reliability = Reliability(),
        progress: Progress = NoProgress(),
        arithmetic: Arithmetic = Arithmetic(),
        instrument: Instrument | None = None,
    ) -> None:
        self.model, self.optimizer, self.batches = model, optimizer, batches
        self.arithmetic = arithmetic
        self.total_steps = total_steps
        self.recorder = recorder
        self.objective, self.lr_schedule = objective, lr_schedule
        self.reliability = reliability
        if instrument is None:
            instrument = Instrument(
                model, optimizer, recorder=recorder, loss_fn=output_loss(objective.loss_fn),
                correct_fn=batch_correct(objective.correct_fn), taps=measurements.taps,
                probes=measurements.probes,
                sampling=Sampling(measurements.sync_every, measurements.sync_seconds),
                progress=progress, reduced_precision=arithmetic.reduced,
                resume_from=reliability.resume_from)
        self.instrument = instrument
        self.evaluator = Evaluator(evaluation, total_steps, reliability.resume_from)
        self.last_checkpoint = 0.0  # set when `run` starts

    @property
    def pending(self):
        """The measurements not yet handed to the recorder (the instrument's)."""
        return self.instrument.pending

    def run(self) -> RunOutcome:
        self.model.train()
        instrument = self.instrument.attach()
        self.last_checkpoint = time.perf_counter()
        should_stop = self.reliability.should_stop
        try:
            for step in range(instrument.next_step, self.total_steps):
                self.step(step)
                if instrument.diverged_step is not None:
                    return self.diverged()
                evaluation_due = self.evaluator.due(step)
                stop = should_stop()
                # What follows a host sync (the instrument's own, every few steps, or one the
                # evaluation or a stop needs): evaluating, checkpointing, the run's state.
                if not (instrument.synced or evaluation_due or stop):
                    continue
                instrument.sync()
                if instrument.diverged_step is not None:
                    return self.diverged()
                if evaluation_due and self.evaluate(step):
                    return self.finish(RUN_COMPLETE, step + 1, STOP_EARLY)
                if step + 1 == self.total_steps:
                    break
                if stop or self.checkpoint_due():
                    self.checkpoint(step + 1)
                    if stop:
                        return self.finish(RUN_INTERRUPTED, step + 1, STOP_NONE)
                else:
                    self.recorder.state(RUN_RUNNING, steps_done=step + 1,
                                        seconds=instrument.elapsed())
            instrument.sync()
            if instrument.diverged_step is not None:
                return self.diverged()
            return self.finish(RUN_COMPLETE, self.total_steps, STOP_PLANNED)
        finally:
            instrument.detach()

    def step(self, step: int) -> None:
        """One optimization step, driven as any loop drives the instrument."""
        model, optimizer = self.model, self.optimizer
        if self.lr_schedule is not None:
            lr_t = self.lr_schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr_t
        x, y = next(self.batches)
        with training_autocast(x.device, self.arithmetic.autocast):
            output = model(x)  # (batch, classes) logits, or (batch, dim) for regression
            loss = self.objective.loss_fn(output, y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.instrument.step((x, y), loss, output=output)
        optimizer.step()

    def evaluate(self, step: int) -> bool:
        """Evaluate after step `step` and record it; True when the run should stop early."""
        return self.evaluator.evaluate(step, self.model, self.instrument,
                                       has_accuracy=bool(self.objective.correct_fn))

    def checkpoint_due(self) -> bool:
        every = self.reliability.checkpoint_seconds
        return (self.reliability.checkpoint is not None
                and time.perf_counter() - self.last_checkpoint >= every)

    def checkpoint(self, steps_done: int) -> None:
        """Flush the recorder, then hand the loop's state to the checkpoint (if there is one)."""
        # Rows first, then the checkpoint: a checkpoint never refers to unwritten rows.
        self.recorder.state(RUN_RUNNING, steps_done=steps_done,
                            seconds=self.instrument.elapsed(), flush=True)
        save = self.reliability.checkpoint
        if save is not None:
            save(self.instrument.loop_state(val_losses=list(self.evaluator.val_losses),
                                            best_val_acc=self.evaluator.best_val_acc))
        self.last_checkpoint = time.perf_counter()

    def diverged(self) -> RunOutcome:
        step = self.instrument.diverged_step
        return self.finish(RUN_DIVERGED, step + 1, STOP_DIVERGED, diverged_step=step)

    def finish(self, status: str, steps_done: int, stop_reason: str, *,
               diverged_step: int | None = None) -> RunOutcome:
        """The one way out of a run: its final state to the recorder, and its outcome."""
        return self.instrument.finish(status, steps_done, stop_reason,
                                      diverged_step=diverged_step)


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
    early_stop_metric: str = "loss",
    early_stop_min_delta: float = 0.0,
    keep_best: bool = False,
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
    autocast_dtype: torch.dtype | None = None,
    reduced_precision: bool = False,
) -> RunOutcome:
    """Train `model` for `total_steps` steps from `batches`, recording as it goes: the
    convenience entry point to `TrainingLoop`, with every setting as a keyword.

    `eval_every` (default: once per epoch of `steps_per_epoch` steps), `validate`,
    `early_stop`, `early_stop_metric`, `early_stop_min_delta` and `keep_best` are the
    `EvaluationPlan`; `loss_fn` and `correct_fn` the `Objective`;
    `taps`, `probes`, `sync_every` and `sync_seconds` the `Measurements`; `resume_from`,
    `checkpoint`, `checkpoint_seconds` and `should_stop` the `Reliability`: see those for what
    each does. `lr_schedule(step)` is the learning rate of each step, set on every parameter
    group before the step (None: the optimizer's own). `autocast_dtype` and
    `reduced_precision` are the `Arithmetic`.
    """
    evaluation = EvaluationPlan(evaluate, eval_every or steps_per_epoch, steps_per_epoch,
                                validate, early_stop, early_stop_metric, early_stop_min_delta,
                                keep_best)
    return TrainingLoop(
        model, optimizer, batches,
        total_steps=total_steps,
        recorder=recorder,
        evaluation=evaluation,
        objective=Objective(loss_fn, correct_fn),
        lr_schedule=lr_schedule,
        measurements=Measurements(taps, probes, sync_every, sync_seconds),
        reliability=Reliability(resume_from, checkpoint, checkpoint_seconds, should_stop),
        progress=progress,
        arithmetic=Arithmetic(autocast_dtype, reduced_precision),
    ).run()
