"""The training loop of one run, instrumented.

Per step it measures the training-batch loss, ‖g_t‖, ‖g_t − g_{t−1}‖ and ‖w_{t+1} − w_t‖, copies
the tapped parameters' gradients and weight deltas, and lets probes measure the landscape around
w_t. Everything stays on the device until `sync_every` steps have passed, then goes to the
recorder in one transfer (a host sync per step would stall a GPU). The loop knows nothing of
files: it hands numpy arrays to the recorder it is given.

The loop also applies a learning-rate schedule (a function of the step, set on the optimizer
before each step) and stops early when a validation loss stops improving (`early_stop_due`).

`TrainingLoop` is the loop; `train_run` is its convenience entry point with every setting as a
keyword. Its settings are `landscape.training.loop_settings`'s and
`landscape.training.evaluation`'s (which also evaluates and decides on early stopping); what the
loop calls and returns (probes, recorders, progress, loop state, outcome) is defined in
`landscape.training.contracts` and re-exported here.
"""

from __future__ import annotations

import math
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
from landscape.training.loop_settings import (Arithmetic, Measurements, Objective, Reliability,
                                              TapPlan, classification_correct)
from landscape.training.precision import float32_math, training_autocast
from landscape.training.step_rows import KeptRows, PendingRows, TrainAccumulator, measure_gradients
from landscape.training.tensors import RngState, global_norm


class TrainingLoop:
    """One run's training loop: `run()` repeats `step`, and at a host sync `sync`, then
    `evaluate` and `checkpoint` when they are due; every way out goes through `finish`.

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
    ) -> None:
        self.model, self.optimizer, self.batches = model, optimizer, batches
        self.arithmetic = arithmetic
        self.total_steps = total_steps
        self.recorder, self.progress = recorder, progress
        self.objective, self.lr_schedule = objective, lr_schedule
        self.measurements, self.reliability = measurements, reliability

        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.tap_index = {n: self.names.index(n) for n in measurements.taps.names}
        self.device = self.params[0].device
        # g_{t−1}, then g_t. Between probed steps these are the previous step's own gradient
        # tensors (the loop swaps them with p.grad instead of copying: see `step`).
        self.prev_grads = [torch.zeros_like(p) for p in self.params]
        self.has_prev_grad = False  # whether prev_grads holds g_{t−1}
        self.prev_params = [torch.zeros_like(p) for p in self.params]  # w_t, then w_t − w_{t+1}
        self.nan = torch.tensor(float("nan"), device=self.device)

        self.pending = PendingRows()
        self.since_eval = TrainAccumulator()
        self.first_step, self.images_done, self.seconds_before = 0, 0, 0.0
        self.last_loss = math.nan
        resume = reliability.resume_from
        self.evaluator = Evaluator(evaluation, total_steps, resume)
        if resume is not None:
            self.first_step = resume.next_step
            with torch.no_grad():
                torch._foreach_copy_(self.prev_grads,
                                     [g.to(self.device) for g in resume.prev_grads])
            self.has_prev_grad = resume.next_step > 0
            self.since_eval = TrainAccumulator(**resume.since_eval)
            self.images_done, self.seconds_before = resume.images_done, resume.seconds
            for probe in measurements.probes:
                if str(probe.name) in resume.probe_states and hasattr(probe, "load_state_dict"):
                    probe.load_state_dict(resume.probe_states[str(probe.name)])
        self.started = self.last_sync = self.last_checkpoint = 0.0  # set when `run` starts

    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def run(self) -> RunOutcome:
        self.model.train()
        self.started = self.last_sync = self.last_checkpoint = time.perf_counter()
        sync = self.measurements
        should_stop = self.reliability.should_stop
        for step in range(self.first_step, self.total_steps):
            self.step(step)
            evaluation_due = self.evaluator.due(step)
            stop = should_stop()
            if not (len(self.pending.steps) >= sync.sync_every or evaluation_due or stop
                    or time.perf_counter() - self.last_sync >= sync.sync_seconds):
                continue
            kept = self.sync()
            if kept.diverged_step is not None:
                return self.finish(RUN_DIVERGED, kept.diverged_step + 1, STOP_DIVERGED,
                                   diverged_step=kept.diverged_step)
            if evaluation_due and self.evaluate(step):
                return self.finish(RUN_COMPLETE, step + 1, STOP_EARLY)
            if step + 1 == self.total_steps:
                break
            if stop or self.checkpoint_due():
                self.checkpoint(step + 1)
                if stop:
                    return self.finish(RUN_INTERRUPTED, step + 1, STOP_NONE)
            else:
                self.recorder.state(RUN_RUNNING, steps_done=step + 1, seconds=self.elapsed())
        return self.finish(RUN_COMPLETE, self.total_steps, STOP_PLANNED)

    def step(self, step: int) -> None:
        """One optimization step; its measurements stay on the device, in `self.pending`."""
        model, optimizer, params = self.model, self.optimizer, self.params
        loss_fn, correct_fn = self.objective.loss_fn, self.objective.correct_fn
        taps, pending = self.measurements.taps, self.pending
        if self.lr_schedule is not None:
            lr_t = self.lr_schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr_t
        x, y = next(self.batches)
        due = [p for p in self.measurements.probes if p.due(step)]
        # Only probes that move the weights or replay the forward need g_t copied out and the
        # random state captured; those that merely read leave the step on its fast path.
        intrusive = any(not getattr(p, "reads_only", False) for p in due)
        rng = RngState.capture(self.device) if intrusive else None
        for probe in due:
            if probe.phase == "forward":
                probe.arm()

        with training_autocast(self.device, self.arithmetic.autocast):
            output = model(x)  # (batch, classes) logits, or (batch, dim) for regression
            loss = loss_fn(output, y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        grads = [p.grad for p in params]
        # Intrusive probes change p.grad and read g_t from the snapshot, so on their steps g_t
        # is copied out; on the others the snapshot is p.grad's tensors themselves, and after the update
        # p.grad gets the spent g_{t−1} tensors (zeroed by the next zero_grad): no copy.
        swap = not intrusive
        with torch.no_grad():
            grad_norm, grad_change, tapped_grads = measure_gradients(
                step, grads, self.prev_grads, params, self.prev_params, taps, self.tap_index,
                self.nan, has_prev=self.has_prev_grad, copy_grads=not swap)
        spent = self.prev_grads
        if swap:
            self.prev_grads = list(grads)
        self.has_prev_grad = True

        for probe in due:
            if probe.phase != "after_update":
                pending.add_probe(probe.name, step, self.measure(probe, step, x, y, rng))

        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        if swap:
            for p, g in zip(params, spent):
                p.grad = g
        for probe in due:
            if probe.phase == "after_update":
                pending.add_probe(probe.name, step, self.measure(probe, step, x, y, rng))

        with torch.no_grad():
            torch._foreach_sub_(self.prev_params, params)
            update_norm = global_norm(self.prev_params)
            for (name, i), g in zip(self.tap_index.items(), tapped_grads):
                pending.taps.setdefault(name, []).append(
                    (step, g, (-self.prev_params[i]).to(taps.dtype)))
            correct = correct_fn(output, y).float() if correct_fn else self.nan
            pending.stats.append(torch.stack([
                loss.float(), grad_norm, grad_change, update_norm, correct,
            ]))
        pending.steps.append(step)
        pending.lrs.append(lr)
        pending.batch_sizes.append(len(y))

    def measure(self, probe: Probe, step: int, x: torch.Tensor, y: torch.Tensor,
                rng: RngState | None) -> dict:
        """One probe's values at step `step`; a progress view that has `probing` is told which
        probe runs (a Hessian probe can take a minute per step on a CPU)."""
        probing = getattr(self.progress, "probing", None)
        if probing is not None:
            probing(str(probe.name), step)
        with float32_math():
            values = probe.measure(self.context(step, x, y, rng))
        if probing is not None:
            probing(None, step)
        return values

    def context(self, step: int, x: torch.Tensor, y: torch.Tensor,
                rng: RngState | None) -> StepContext:
        """What a probe sees at this moment of step `step` (the learning rate as now set)."""
        return StepContext(step, self.model, self.params, self.names, x, y,
                           self.objective.loss_fn, self.optimizer.param_groups[0]["lr"], rng,
                           self.prev_grads, self.prev_params, self.arithmetic.reduced)

    def sync(self) -> KeptRows:
        """Host sync: hand the pending rows to the recorder and tell the progress bar."""
        self.last_sync = time.perf_counter()
        kept = self.pending.hand_over(self.recorder)
        self.images_done += kept.images
        self.since_eval.add(kept)
        self.last_loss = kept.last_loss
        self.progress.advance(kept.n, loss=self.last_loss, images_per_second=self.images_done
                              / max(self.elapsed(), 1e-9))
        self.pending = PendingRows()
        return kept

    def evaluate(self, step: int) -> bool:
        """Evaluate after step `step` and record it; True when the run should stop early."""
        stop = self.evaluator.evaluate(
            step, self.model, self.since_eval, has_accuracy=bool(self.objective.correct_fn),
            recorder=self.recorder, probes=self.measurements.probes)
        self.since_eval = TrainAccumulator()
        return stop

    def checkpoint_due(self) -> bool:
        every = self.reliability.checkpoint_seconds
        return (self.reliability.checkpoint is not None
                and time.perf_counter() - self.last_checkpoint >= every)

    def checkpoint(self, steps_done: int) -> None:
        """Flush the recorder, then hand the loop's state to the checkpoint (if there is one)."""
        # Rows first, then the checkpoint: a checkpoint never refers to unwritten rows.
        self.recorder.state(RUN_RUNNING, steps_done=steps_done, seconds=self.elapsed(),
                            flush=True)
        save = self.reliability.checkpoint
        if save is not None:
            save(LoopState(steps_done, [g.detach().cpu() for g in self.prev_grads],
                           self.since_eval.as_dict(), self.images_done, self.elapsed(),
                           list(self.evaluator.val_losses), self.evaluator.best_val_acc,
                           {str(p.name): p.state_dict() for p in self.measurements.probes
                            if hasattr(p, "state_dict")}))
        self.last_checkpoint = time.perf_counter()

    def finish(self, status: str, steps_done: int, stop_reason: str, *,
               diverged_step: int | None = None) -> RunOutcome:
        """The one way out of a run: its final state to the recorder, and its outcome."""
        seconds = self.elapsed()
        if status == RUN_COMPLETE:  # rows some probes keep of the finished model (its weights)
            for probe in self.measurements.probes:
                final = getattr(probe, "final_rows", None)
                rows = final(steps_done) if final is not None else None
                if rows is not None:
                    self.recorder.probe(probe.name, rows)
        self.recorder.state(status, steps_done=steps_done, diverged_step=diverged_step,
                            seconds=seconds, stop_reason=stop_reason)
        return RunOutcome(status, steps_done, diverged_step, seconds,
                          self.images_done / max(seconds, 1e-9), self.last_loss, stop_reason)


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
