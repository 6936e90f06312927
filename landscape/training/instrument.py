"""The instrument: what one training run measures, driven by any training loop.

A loop drives it with one call, `step(batch, loss)` after `loss.backward()` and before the
optimizer's step; two hooks it installs do the rest:

- a forward pre-hook on the model sees the step's first training forward pass (the model in
  training mode, gradients on): it arms the probes that observe that pass (activation
  statistics, kept weights) and keeps the random state that a probe needs to replay dropout
  and noise;
- a step post-hook on the optimizer sees the update: ‖w_{t+1} − w_t‖, the taps' weight deltas
  and the probes that look at w_{t+1} (the probe along the update, internal covariate shift).

Per step it measures the loss, ‖g_t‖, ‖g_t − g_{t−1}‖, ‖w_{t+1} − w_t‖ and the norm of the
gradient the optimizer stepped with (which differs from ‖g_t‖ where the loop changed the
gradient after `step`, e.g. by clipping), the learning rate read from the optimizer, the tapped
parameters' gradients and weight deltas, and its probes' values. Everything stays on the device
until `sync_every` steps or `sync_seconds` have passed, then reaches the run's recorder in one
transfer (a host sync per step would stall a GPU).

`landscape record`'s own loop (`landscape.training.loop`) and a user's loop wrapped in
`landscape.Recorder` drive this one class, so the same model, batches and seed give the same
rows either way.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from landscape.errors import InstrumentError
from landscape.training.contracts import (RUN_COMPLETE, BatchLossFn, LoopState,
                                          NoProgress, Probe, Progress, RunOutcome, RunRecorder,
                                          StepBatch, StepContext)
from landscape.training.loop_settings import TapPlan
from landscape.training.check_mode import TrainingState
from landscape.training.precision import amp_unscaled, float32_math, reduced_arithmetic
from landscape.training.step_rows import KeptRows, PendingRows, TrainAccumulator
from landscape.training.tensors import RngState, global_norm

# (output, batch) -> the number of correct predictions (a 0-d tensor), for the training accuracy.
BatchCorrectFn = Callable[[Any, Any], torch.Tensor]


def batch_size(batch: Any) -> int:
    """The number of examples in `batch`: the length of its first tensor (in a tuple, list or
    dict, as deep as it goes); 1 when it holds none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    values = batch.values() if isinstance(batch, dict) else \
        batch if isinstance(batch, (tuple, list)) else ()
    for value in values:
        size = batch_size(value)
        if size:
            return size
    return 0


@dataclass(frozen=True)
class Sampling:
    """How often the instrument hands its rows over: every `sync_every` steps or
    `sync_seconds` seconds, whichever comes first; rarely enough not to stall a GPU, often
    enough for a live progress bar."""

    sync_every: int = 25
    sync_seconds: float = 0.5


class Instrument:
    """The measurements of one run of `model` trained by `optimizer` (see the module docstring).

    `recorder` receives the rows (`landscape.training.recorder`); `loss_fn(model, batch)` is the
    step's loss as the loop computes it, which probes recompute at other weights;
    `correct_fn(output, batch)` counts correct predictions when the loop passes the model's
    output to `step` (for the training accuracy). `reduced_precision`: the loop's training
    arithmetic rounds more than float32 (bf16 autocast, TF32); probes then recompute their
    reference gradient in float32. `scaler`: the loop's `torch.amp.GradScaler`, whose scale the
    gradients are read through. `check`: verify at every probed step that the probes left
    training untouched (weights, gradients, buffers, random state, optimizer state) and that
    the step's loss is reproduced, naming the first thing found changed.
    `resume_from` continues a run from a checkpoint's `LoopState`.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 recorder: RunRecorder, loss_fn: BatchLossFn,
                 correct_fn: BatchCorrectFn | None = None, taps: TapPlan = TapPlan(()),
                 probes: Sequence[Probe] = (), sampling: Sampling = Sampling(),
                 progress: Progress = NoProgress(), reduced_precision: bool = False,
                 scaler: Any = None, probe_eval_mode: bool = False, check: bool = False,
                 resume_from: LoopState | None = None) -> None:
        self.model, self.optimizer, self.recorder = model, optimizer, recorder
        self.loss_fn, self.correct_fn = loss_fn, correct_fn
        self.taps, self.probes, self.sampling = taps, list(probes), sampling
        self.progress, self.reduced_precision = progress, reduced_precision
        # The training arithmetic seen at the steps' forward passes ("float32" until a step
        # runs under autocast or TF32).
        self.arithmetic = "float32"
        self.scaler, self.probe_eval_mode, self.check = scaler, probe_eval_mode, check
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise InstrumentError("the model has no trainable parameter to measure")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.tap_index = {n: self.names.index(n) for n in taps.names}
        self.device = self.params[0].device
        self.nan = torch.tensor(float("nan"), device=self.device)
        self.prev_grads = [torch.zeros_like(p) for p in self.params]  # g_{t−1}, then g_t
        self.has_prev_grad = False
        self.prev_params = [torch.zeros_like(p) for p in self.params]  # w_t, then w_t − w_{t+1}

        self.next_step = 0  # the step the next forward/`step` belongs to
        self.pending = PendingRows()
        self.since_eval = TrainAccumulator()
        self.images_done, self.seconds_before = 0, 0.0
        self.last_loss = math.nan
        self.diverged_step: int | None = None
        if resume_from is not None:
            self._resume(resume_from)
        self.started: float | None = None  # perf_counter at the first step
        self.last_sync = time.perf_counter()
        self.replay_checked = False

        self._due: list[Probe] = []  # the probes of the step in progress
        self._rngs: list[RngState] = []  # the random state before each training forward
        self._outputs: list = []  # the model's output of each training forward
        self._intrusive = False  # a probe of the step moves the weights or replays the forward
        self._grads_copied = False  # g_t is a copy of p.grad (unscaled), not p.grad itself
        self._grads_seen = None  # p.grad as `step` measured it: (tensor, version) per parameter
        # Inside optimizer.step (a closure runs the step's forward and backward there).
        self._in_update, self._steps_in_update = False, 0
        self._forwards = 0  # training forward passes seen since the last step
        self._awaiting_update = False  # `step` ran; the optimizer's step has not
        self._step_values: dict[str, torch.Tensor] = {}  # the step in progress's measurements
        self._step_batch: StepBatch | None = None
        self._measuring = False  # a probe's own forward passes are not training's
        self._handles: list = []
        # Called after every step (the optimizer's step done): a Recorder writes the run's state
        # and checkpoints there; `synced` says whether that step ended with a host sync.
        self.after_step: list[Callable[[], None]] = []
        self.synced = False

    # ---- attaching to a model and an optimizer ---------------------------------------------

    def attach(self) -> "Instrument":
        """Install the forward pre-hook on the model and the step hooks on the optimizer."""
        if not self._handles:
            self._handles = [
                self.model.register_forward_pre_hook(self._before_forward),
                self.model.register_forward_hook(self._after_forward),
                self.optimizer.register_step_pre_hook(self._before_update),
                self.optimizer.register_step_post_hook(self._after_update),
            ]
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---- the three moments of a step ---------------------------------------------------------

    def _before_forward(self, module: nn.Module, args: Any) -> None:
        if self._measuring or not module.training or not torch.is_grad_enabled():
            return  # a probe's, an evaluation's or an inference forward pass
        if self._in_update and self._awaiting_update:
            raise InstrumentError(
                "the optimizer evaluated its closure more than once in one step (LBFGS, a "
                "line search): its step does not follow the gradient of one batch at w_t, "
                "which is what landscape measures; use an optimizer that evaluates it once")
        if self._awaiting_update:  # the loop skipped the optimizer's step (an AMP scaler can)
            self._finish_update(skipped=True)
        if self._forwards == 0:
            self._begin(self.next_step)
        self._forwards += 1
        if self._intrusive:
            self._rngs.append(RngState.capture(self.device))

    def _after_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        """The outputs of the step's training forward passes, for its accuracy."""
        if not self._measuring and module.training and torch.is_grad_enabled():
            self._outputs.append(output)

    def _begin(self, step: int) -> None:
        """The first training forward of step `step`: arm the probes that observe it."""
        if self.started is None:
            self.started = time.perf_counter()
        arithmetic = reduced_arithmetic(self.device)
        if arithmetic is not None:  # the loop trains under autocast, or TF32
            self.reduced_precision = True
            self.arithmetic = arithmetic
        self._due = [p for p in self.probes if p.due(step)] if self.diverged_step is None else []
        # Only probes that move the weights or replay the forward need g_t copied out and the
        # random state kept; those that merely read leave the step on its fast path.
        self._intrusive = any(not getattr(p, "reads_only", False) for p in self._due)
        for probe in self._due:
            if probe.phase == "forward":
                probe.arm()

    def step(self, batch: Any = None, loss: torch.Tensor | None = None, *,
             output: Any = None, micro_batches: Sequence[Any] | None = None) -> None:
        """After the backward pass of step t, before the optimizer's step: measure g_t and run
        the probes that look at w_t. `batch`: what `loss_fn(model, batch)` computes the step's
        loss on; for a gradient accumulated over several backward passes, `micro_batches`
        instead (the step's loss is then their mean). `loss`: the step's loss as computed
        (the one whose gradient is in `p.grad`). `output`: the model's output, to count
        correct predictions (optional)."""
        if loss is None:
            raise InstrumentError("step() needs the step's loss: rec.step(batch, loss)")
        parts = self._parts(batch, micro_batches)
        if self._awaiting_update:
            if self.scaler is None:
                self._warn_once("rec.step() ran twice without optimizer.step() between them; "
                                "the first of those steps is recorded with no update")
            self._finish_update(skipped=True)
        if self._forwards == 0:  # the forward hook saw no training pass (a wrapper called?)
            self._begin(self.next_step)
        step = self.next_step
        grads = self._gradients()
        # Probes give p.grad back as g_t; where g_t is an unscaled copy (an AMP scaler's),
        # `measure` puts back the values p.grad held instead.
        self._grads_copied = any(g is not p.grad for g, p in zip(grads, self.params))
        rngs = self._rngs if len(self._rngs) == len(parts) else \
            _rngs_per_part(self._rngs, len(parts))
        self._step_batch = StepBatch(tuple(parts), rngs, self.loss_fn, self.probe_eval_mode)
        with torch.no_grad():
            values = self._measure_gradients(step, grads)
            loss_value = loss.detach().float().reshape(())
            correct = self._correct(output, parts)
        self._step_values = {"loss": loss_value, "correct": correct, **values}
        # What p.grad is now (each tensor and its version counter): where the optimizer steps
        # with exactly these, the gradient it applied is g_t itself and needs no second norm.
        self._grads_seen = None if self._grads_copied else [
            (p.grad, p.grad._version if p.grad is not None else -1) for p in self.params]
        self._lr = float(self.optimizer.param_groups[0]["lr"])
        self._images = sum(batch_size(p) for p in parts)
        if self.diverged_step is None:
            self._replay_check(step, loss_value)
            for probe in self._due:  # at w_t, and what observers saw of the forward pass
                if probe.phase != "after_update":
                    self.pending.add_probe(probe.name, step, self.measure(probe, step))
        self._awaiting_update = True

    def _before_update(self, optimizer, args, kwargs) -> None:
        # `args` starts with the optimizer itself (torch passes step's own arguments).
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        if closure is not None and self._awaiting_update:
            raise InstrumentError(
                "optimizer.step(closure) after rec.step(): the closure computes the gradient "
                "again, so the optimizer would not step with the gradient the recorder "
                "measured; call rec.step() inside the closure after backward (as Lightning "
                "does), or optimizer.step() without a closure")
        self._in_update, self._steps_in_update = True, 0

    def _after_update(self, optimizer, args, kwargs) -> None:
        self._in_update = False
        if self._awaiting_update:
            self._finish_update(skipped=False)
        elif not self._measuring:
            # An optimizer step without `step()` before it: training moved on unrecorded.
            self.next_step += 1
            self.has_prev_grad = False
            # What its forward passes left belongs to it: the next step starts afresh.
            self._forwards, self._rngs, self._due, self._outputs = 0, [], [], []
            self._warn_once("optimizer.step() ran without rec.step() before it; that step is "
                            "not recorded (call rec.step(batch, loss) after every backward)")

    def _finish_update(self, *, skipped: bool) -> None:
        """After the optimizer's step (or when it was skipped): the update and the probes at
        w_{t+1}; the step's row joins the pending ones."""
        self._awaiting_update = False
        step, params, pending = self.next_step, self.params, self.pending
        values = self._step_values
        if self.diverged_step is None:
            if not skipped:
                for probe in self._due:
                    if probe.phase == "after_update":
                        pending.add_probe(probe.name, step, self.measure(probe, step))
            with torch.no_grad():
                if skipped:
                    applied = self.nan
                elif self._grads_unchanged():
                    applied = values["grad_norm"]
                else:  # the loop changed p.grad after rec.step (clipping, unscaling)
                    applied = global_norm([p.grad if p.grad is not None else
                                           torch.zeros_like(p) for p in params])
                torch._foreach_sub_(self.prev_params, params)
                update_norm = global_norm(self.prev_params)
                for (name, i), g in zip(self.tap_index.items(), values.get("tapped", [])):
                    pending.taps.setdefault(name, []).append(
                        (step, g, (-self.prev_params[i]).to(self.taps.dtype)))
                pending.stats.append(torch.stack([
                    values["loss"], values["grad_norm"], values["grad_change"], update_norm,
                    values["correct"], applied.float(),
                ]))
            pending.steps.append(step)
            pending.lrs.append(self._lr)
            pending.batch_sizes.append(self._images)
        self.next_step += 1
        self._forwards, self._rngs, self._due, self._step_batch = 0, [], [], None
        self._outputs = []
        self._step_values = {}
        self.synced = (len(pending.steps) >= self.sampling.sync_every
                       or time.perf_counter() - self.last_sync >= self.sampling.sync_seconds)
        if self.synced:
            self.sync()
        for call in self.after_step:
            call()

    @property
    def at_step_boundary(self) -> bool:
        """Whether the loop is between two steps (no forward pass of the next one seen yet)."""
        return not self._awaiting_update and self._forwards == 0

    def end_step(self) -> None:
        """A step whose optimizer step never came (the loop ended right after `step`): recorded
        without an update."""
        if self._awaiting_update:
            self._finish_update(skipped=True)

    # ---- measuring -----------------------------------------------------------------------------

    def _parts(self, batch: Any, micro_batches: Sequence[Any] | None) -> list[Any]:
        if micro_batches is not None:
            if batch is not None:
                raise InstrumentError("give the step's batch or its micro_batches, not both")
            parts = list(micro_batches)
            if not parts:
                raise InstrumentError("micro_batches is empty: give the step's micro-batches")
            return parts
        if batch is None:
            raise InstrumentError("step() needs the step's batch: rec.step(batch, loss)")
        return [batch]

    def _correct(self, output: Any, parts: list[Any]) -> torch.Tensor:
        """Correct predictions of the step (NaN without a `correct_fn`): of `output` when the
        loop gives it, else of the outputs of the training forward passes seen (one per
        micro-batch)."""
        if self.correct_fn is None:
            return self.nan
        if output is not None:
            return self.correct_fn(output, parts[0]).float()
        if len(self._outputs) != len(parts):
            return self.nan
        return torch.stack([self.correct_fn(o, p).float()
                            for o, p in zip(self._outputs, parts)]).sum()

    def _grads_unchanged(self) -> bool:
        """Whether every p.grad is still the tensor `step` measured, unmodified in place (its
        version counter: clipping or unscaling in place raises it)."""
        seen = self._grads_seen
        return seen is not None and all(
            p.grad is g and (g is None or g._version == v) for p, (g, v) in zip(self.params, seen))

    def _gradients(self) -> list[torch.Tensor]:
        """g_t as the optimizer will use it: p.grad (zeros for a parameter the step did not
        reach), divided by an AMP scaler's scale where the loop has not unscaled it yet."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.scaler is not None and self.scaler.is_enabled() and not amp_unscaled(
                self.scaler, self.optimizer):
            inv = 1.0 / self.scaler.get_scale()
            grads = torch._foreach_mul(grads, inv)
        return grads

    def _measure_gradients(self, step: int, grads: list[torch.Tensor]) -> dict:
        """‖g_t‖, ‖g_t − g_{t−1}‖ and copies of the tapped gradients; leaves g_t in
        `prev_grads` (the snapshot the probes and the next step read) and w_t in
        `prev_params`."""
        grad_norm = global_norm(grads)
        if self.has_prev_grad:
            torch._foreach_sub_(self.prev_grads, grads)
            grad_change = global_norm(self.prev_grads)
        else:
            grad_change = self.nan
        torch._foreach_copy_(self.prev_grads, grads)
        torch._foreach_copy_(self.prev_params, self.params)
        self.has_prev_grad = True
        tapped = ([grads[i].to(self.taps.dtype, copy=True) for i in self.tap_index.values()]
                  if self.taps.due(step) else [])
        return {"grad_norm": grad_norm, "grad_change": grad_change, "tapped": tapped}

    def measure(self, probe: Probe, step: int) -> dict:
        """One probe's values at step `step` (in float32 math, outside the loop's autocast); a
        progress view that has `probing` is told which probe runs (a Hessian probe can take a
        minute per step on a CPU)."""
        probing = getattr(self.progress, "probing", None)
        if probing is not None:
            probing(str(probe.name), step)
        before = TrainingState.capture(self) if self.check and probe.phase != "forward" else None
        raw = ([None if p.grad is None else p.grad.clone() for p in self.params]
               if self._grads_copied and probe.phase != "forward" else None)
        self._measuring = True
        try:
            # Probes run in float32 outside the loop's autocast, whatever the loop wraps them in.
            with float32_math(), torch.enable_grad(), \
                    torch.autocast(self.device.type, enabled=False):
                values = probe.measure(self.context(step))
        finally:
            self._measuring = False
            if raw is not None:
                with torch.no_grad():
                    for p, value in zip(self.params, raw):
                        if value is not None:
                            p.grad.copy_(value)
        if before is not None:
            before.compare(self, f"probe {probe.name!r} at step {step}")
        if probing is not None:
            probing(None, step)
        return values

    def context(self, step: int) -> StepContext:
        """What a probe sees at this moment of step `step` (the learning rate as now set)."""
        batch = self._step_batch
        first = batch.parts[0] if batch is not None else None
        x, y = (first if isinstance(first, (tuple, list)) and len(first) == 2 else (None, None))
        return StepContext(step, self.model, self.params, self.names, x, y,
                           getattr(self.loss_fn, "output_loss", None),
                           self.optimizer.param_groups[0]["lr"],
                           batch.rng[0] if batch is not None else None, self.prev_grads,
                           self.prev_params, self.reduced_precision, batch)

    def _replay_check(self, step: int, loss: torch.Tensor) -> None:
        """At the first step a probe recomputes the loss (and at every such step with
        `check`): the step's loss recomputed at w_t must be the loss the loop computed. If it is
        not, the probes would measure another function: a `loss_fn` that is not the loop's, or
        random draws the instrument cannot replay (a generator of its own, numpy, Python's)."""
        if not self._intrusive or self.reduced_precision or self.probe_eval_mode or \
                (self.replay_checked and not self.check):
            return
        self.replay_checked = True
        self._measuring = True
        saved = [b.clone() for b in self.model.buffers()]
        rng_after = RngState.capture(self.device)
        try:
            with torch.no_grad(), float32_math(), \
                    torch.autocast(self.device.type, enabled=False):
                again = float(self._step_batch.loss(self.model))
        finally:
            self._measuring = False
            with torch.no_grad():
                for buffer, value in zip(self.model.buffers(), saved):
                    buffer.copy_(value)
            rng_after.restore()
        was = float(loss)
        if not (math.isnan(was) or abs(again - was) <= 1e-4 * max(1.0, abs(was))):
            raise InstrumentError(
                f"at step {step} the loss recomputed on the step's batch is {again:.6g}, not the "
                f"{was:.6g} the loop computed, so probes would measure another function: give "
                f"the Recorder the loss_fn(model, batch) your loop uses, and draw random "
                f"numbers only from torch's global generator (dropout does; a torch.Generator "
                f"of your own, numpy or random cannot be replayed)")

    # ---- handing over, evaluations, the run's end -------------------------------------------

    def elapsed(self) -> float:
        started = self.started if self.started is not None else time.perf_counter()
        return self.seconds_before + time.perf_counter() - started

    def sync(self) -> KeptRows | None:
        """Host sync: hand the pending rows to the recorder and tell the progress view. Rows
        after a non-finite loss are dropped and the run is marked as diverged there."""
        self.last_sync = time.perf_counter()
        if not self.pending.steps:
            return None
        kept = self.pending.hand_over(self.recorder)
        self.pending = PendingRows()
        self.images_done += kept.images
        self.since_eval.add(kept)
        self.last_loss = kept.last_loss
        if kept.diverged_step is not None and self.diverged_step is None:
            self.diverged_step = kept.diverged_step
        self.progress.advance(kept.n, loss=self.last_loss, images_per_second=self.images_done
                              / max(self.elapsed(), 1e-9))
        return kept

    @property
    def steps_done(self) -> int:
        """The steps recorded: every step up to the last one measured, or up to and including
        the one whose loss was not finite."""
        return self.diverged_step + 1 if self.diverged_step is not None else self.next_step

    def evaluation(self, test: tuple[float, float], val: tuple[float, float] | None = None, *,
                   epoch: float = math.nan, has_accuracy: bool = True) -> None:
        """A held-out evaluation after the steps done so far: its row, with the training loss
        and accuracy since the previous one."""
        self.sync()
        val_loss, val_acc = val if val is not None else (math.nan, math.nan)
        self.recorder.evaluation({
            "step": self.steps_done,
            "epoch": epoch,
            "train_loss": self.since_eval.mean_loss(),
            "train_acc": self.since_eval.accuracy() if has_accuracy else math.nan,
            "test_loss": test[0],
            "test_acc": test[1],
            "val_loss": val_loss,
            "val_acc": val_acc,
        })
        self.since_eval = TrainAccumulator()

    def keep_rows(self, method: str, *args, **kwargs) -> None:
        """The rows probes keep outside the steps (`final_rows` of a finished run, `best_rows`
        at a new best evaluation: the weights)."""
        for probe in self.probes:
            rows_of = getattr(probe, method, None)
            rows = rows_of(*args, **kwargs) if rows_of is not None else None
            if rows is not None:
                self.recorder.probe(probe.name, rows)

    def finish(self, status: str, steps_done: int, stop_reason: str, *,
               diverged_step: int | None = None) -> RunOutcome:
        """The run's end: the rows probes keep of a finished run (its final weights), its final
        state to the recorder, and its outcome."""
        self.sync()
        seconds = self.elapsed()
        if status == RUN_COMPLETE:
            self.keep_rows("final_rows", steps_done)
        self.recorder.state(status, steps_done=steps_done, diverged_step=diverged_step,
                            seconds=seconds, stop_reason=stop_reason)
        return RunOutcome(status, steps_done, diverged_step, seconds,
                          self.images_done / max(seconds, 1e-9), self.last_loss, stop_reason)

    def loop_state(self, **evaluation: Any) -> LoopState:
        """What a checkpoint keeps of the instrument (with the loop's evaluation state)."""
        return LoopState(self.next_step, [g.detach().cpu() for g in self.prev_grads],
                         self.since_eval.as_dict(), self.images_done, self.elapsed(),
                         probe_states=probe_states(self.probes), **evaluation)

    def _resume(self, state: LoopState) -> None:
        self.next_step = state.next_step
        with torch.no_grad():
            torch._foreach_copy_(self.prev_grads, [g.to(self.device) for g in state.prev_grads])
        self.has_prev_grad = state.next_step > 0
        self.since_eval = TrainAccumulator(**state.since_eval)
        self.images_done, self.seconds_before = state.images_done, state.seconds
        for probe in self.probes:
            saved = state.probe_states.get(str(probe.name))
            if saved is not None and hasattr(probe, "load_state_dict"):
                probe.load_state_dict(saved)

    _warned: set

    def _warn_once(self, message: str) -> None:
        warned = self.__dict__.setdefault("_warned", set())
        if message not in warned:
            warned.add(message)
            warnings.warn(message, stacklevel=3)


def probe_states(probes: Sequence[Probe]) -> dict[str, dict]:
    """The state that probes carry from one probed step to the next (a Hessian probe's warm
    start), by table name: what a checkpoint keeps so that a resumed run continues identically."""
    return {str(p.name): p.state_dict() for p in probes if hasattr(p, "state_dict")}


def _rngs_per_part(rngs: list[RngState], parts: int) -> tuple[RngState | None, ...]:
    """The random state before each micro-batch's first forward pass, when the loop ran the
    model `k` times per micro-batch; None where nothing was kept (no probe replays the step)."""
    if not rngs:
        return (None,) * parts
    if len(rngs) % parts:
        raise InstrumentError(
            f"the model ran {len(rngs)} training forward passes for {parts} micro-batches; "
            f"landscape cannot tell which random state belongs to which micro-batch: run the "
            f"same number of forward passes for each")
    every = len(rngs) // parts
    return tuple(rngs[::every])
