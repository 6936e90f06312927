"""`landscape.Recorder`: the instrument for any model in any training loop, writing the record
format that `landscape info / plot / report / export` and `analyses` read (the ten-line loop
it fits into: the package docstring and docs/your-model.md).

The measurements are `landscape.training.instrument.Instrument`'s, the very object
`landscape record`'s own loop drives; this class adds the file: it takes the record's writer
lock, lays the run out at its first step (a new record, or one more run of a record its
earlier Recorders wrote), checkpoints it, and marks it complete, diverged or interrupted when
the `with` block ends (docs/your-model.md).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from landscape.config.recording import RecordingConfig
from landscape.errors import InstrumentError, RecordError
from landscape.instrument.measurements import make_probes
from landscape.instrument.recorder_support import (ChannelWatch, ProgressBar, check_objects,
                                                   recording_of, to_device)
from landscape.instrument.user_run import (check_joinable, check_recording, data_identity,
                                           probe_direction, record_header, run_config,
                                           run_identity, run_layout)
from landscape.store import RecordWriter, RunStatus, StopReason, check_record_output, open_record
from landscape.store.lock import writer_lock
from landscape.training.checkpoint import (Checkpoint, checkpoint_path, load_checkpoint,
                                           save_checkpoint)
from landscape.training.contracts import NoProgress
from landscape.training.instrument import Instrument, Sampling, batch_size
from landscape.training.loop_settings import TapPlan
from landscape.training.recorder import HDF5Recorder
from landscape.version import package_versions


def cross_entropy_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """The default loss: cross-entropy of the model's logits on a batch (x, y)."""
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def argmax_correct(output: Any, batch: Any) -> torch.Tensor:
    """The default count of correct predictions: argmax of the logits against y in (x, y)."""
    logits = getattr(output, "logits", output)
    return (logits.argmax(1) == batch[1]).sum()


class Recorder:
    """Record one run of `model` trained by `optimizer` in your own loop into the record at
    `path` (made at the first step, or the run added to a record earlier Recorders made).

    Identity: `run_id` names the run; `norm` its normalization ("bn", "gn", "ln", ..., None for
    none; "auto", the default, reads it from the model's layers) and `family` the network
    without it (default: `run_id` without a trailing "_<norm>"): runs of one family with and
    without normalization give the verdicts, as `landscape record`'s models do; `seed` is the
    seed your run started from (runs are paired by it).

    What is measured: every step the loss, ‖g_t‖, ‖g_t − g_{t−1}‖, ‖w_{t+1} − w_t‖, the norm of
    the gradient the optimizer stepped with, the learning rate (read from the optimizer) and
    the taps (default: the last linear layer's weight); and what `recording` (a
    `RecordingConfig`) or keywords of its fields turn on: `probe=ProbeConfig(every=N)` (the
    paper's probe), `ics_every`/`ics_layers`, `activation_every`/`activation_layers`,
    `hessian=HessianConfig(...)`, `save_weights_at`/`save_weights_every`/`save_final_weights`.

    Your loop: `loss_fn(model, batch)` computes the step's loss (default: cross-entropy on a
    batch (x, y)); `correct_fn(output, batch)` counts correct predictions for the accuracy
    (default with the default loss: the argmax); `scaler`: your `torch.amp.GradScaler`.
    `probe_bn` "eval" probes with the model in eval mode (BatchNorm's running statistics, no
    dropout), as PyHessian does; the default "train" probes the function training minimizes.
    `check=True` verifies at every probed step that the measurements left training untouched.
    `resume=True` continues the run from its last checkpoint (the model, optimizer and random
    state are restored; continue your loop at `rec.next_step`). `progress=True` shows a bar
    (of `total_steps` steps, if given).
    """

    def __init__(self, path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                 *, run_id: str, norm: str | None = "auto", family: str | None = None,
                 seed: int = 0, loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
                 correct_fn: Callable[[Any, Any], torch.Tensor] | None = None,
                 recording: RecordingConfig | None = None, data: str = "your own data",
                 scaler: Any = None, probe_bn: str = "train", check: bool = False,
                 resume: bool = False, progress: bool = False, total_steps: int | None = None,
                 sync_every: int = 25, sync_seconds: float = 0.5, **measurements: Any) -> None:
        check_objects(model, optimizer, loss_fn, correct_fn, probe_bn, data)
        self.path, self.model, self.optimizer = Path(path), model, optimizer
        self.identity = run_identity(run_id, model, norm=norm, family=family, seed=seed)
        self.recording = recording_of(recording, measurements)
        self.taps = check_recording(self.recording, model, self.identity.model)
        self.direction = probe_direction(self.recording, optimizer)
        self.loss_fn = loss_fn or cross_entropy_loss
        self.correct_fn = correct_fn or (argmax_correct if loss_fn is None else None)
        self.data, self.scaler, self.probe_bn = data, scaler, probe_bn
        self._writer: RecordWriter | None = None
        self._sink: HDF5Recorder | None = None
        self._closed = False
        check_record_output(self.path, flag="the record's path")  # a side file, a folder, ...
        self._lock = writer_lock(self.path)
        self._held = self._lock.__enter__()  # one writer per record, held until close()
        try:
            resume_from = self._prepare(resume)
            probes = make_probes(replace(self.recording, probe=replace(
                self.recording.probe, direction=self.direction)), model)
            self._bar = ProgressBar(run_id, total_steps) if progress else NoProgress()
            self.instrument = Instrument(
                model, optimizer, recorder=_Deferred(self), loss_fn=self.loss_fn,
                correct_fn=self.correct_fn,
                taps=TapPlan(self.taps, self.recording.tap_every,
                             torch.float16 if self.recording.tap_dtype == "float16"
                             else torch.float32),
                probes=probes, sampling=Sampling(sync_every, sync_seconds), progress=self._bar,
                scaler=scaler, probe_eval_mode=probe_bn == "eval", check=check,
                resume_from=resume_from)
            self.instrument.after_step.append(self._after_step)
            self._channels = ChannelWatch(model, self.recording)
            self.instrument.attach()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self._last_checkpoint = time.perf_counter()

    # ---- the loop's calls ---------------------------------------------------------------------

    def step(self, batch: Any = None, loss: torch.Tensor | None = None, *, output: Any = None,
             micro_batches: Sequence[Any] | None = None) -> None:
        """Call after `loss.backward()` and before `optimizer.step()` (before clipping the
        gradient, after `scaler.unscale_` if you call it): `batch` is what `loss_fn(model,
        batch)` computes the step's loss on, `loss` that loss as computed. For a gradient
        accumulated over several backward passes give `micro_batches=[...]` instead, and as
        `loss` their losses' sum as you divided them (their mean: the loss whose gradient was
        accumulated). `output` (optional): the model's output, for the training accuracy."""
        if self._closed:
            raise InstrumentError("this Recorder is closed: make a new one for another run")
        if self._sink is None:
            first = micro_batches[0] if micro_batches else batch
            self._open(first, len(micro_batches) if micro_batches else 1)
        self.instrument.step(batch, loss, output=output, micro_batches=micro_batches)

    def evaluate(self, loader: Iterable[Any], val_loader: Iterable[Any] | None = None, *,
                 epoch: float | None = None) -> tuple[float, float]:
        """Evaluate on held-out `loader` (and `val_loader`) in eval mode, without gradients, with
        `loss_fn` and `correct_fn`, and record it after the steps done so far; returns (loss,
        accuracy) on `loader` (accuracy NaN without a `correct_fn`)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                test = self._evaluate_on(loader)
                val = self._evaluate_on(val_loader) if val_loader is not None else None
        finally:
            self.model.train(was_training)
        self.log_evaluation(*test, val=val, epoch=epoch)
        return test

    def log_evaluation(self, test_loss: float, test_acc: float = math.nan, *,
                       val: tuple[float, float] | None = None, epoch: float | None = None
                       ) -> None:
        """Record an evaluation you computed yourself (held-out loss and accuracy)."""
        if self._sink is None:
            raise InstrumentError("evaluate after the first rec.step(): the run is laid out "
                                  "at its first step")
        self.instrument.evaluation((float(test_loss), float(test_acc)), val,
                                   epoch=math.nan if epoch is None else float(epoch),
                                   has_accuracy=self.correct_fn is not None)

    @property
    def next_step(self) -> int:
        """The step the loop is at (after resume=True: where to continue your loop)."""
        return self.instrument.next_step

    @property
    def diverged(self) -> bool:
        """Whether a non-finite loss was recorded (seen at the last host sync): the run is
        recorded as diverged there and later steps are not recorded."""
        return self.instrument.diverged_step is not None

    def close(self, error: BaseException | None = None) -> None:
        """End the run: complete (or diverged), or interrupted when `error` ended the loop;
        release the record. Called by the `with` block."""
        if self._closed:
            return
        self._closed = True
        instrument = self.instrument
        instrument.detach()
        self._channels.remove()
        try:
            if self._sink is not None:
                self._end(instrument, error)
        finally:
            try:
                if self._writer is not None:
                    self._writer.close()
            finally:
                getattr(self._bar, "close", lambda: None)()
                self._lock.__exit__(None, None, None)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(exc)

    # ---- the file -------------------------------------------------------------------------------

    def _prepare(self, resume: bool):
        """Check the record before anything is written; when resuming, reopen it, restore the
        run's checkpoint and return the instrument's state (None for a new run)."""
        if self.path.exists():
            rec = open_record(self.path)
            check_joinable(self.path, rec.config, rec.runs, self.identity.run_id, resume)
        elif resume:
            raise RecordError(f"resume=True continues a run of {self.path}, which does not "
                              f"exist")
        elif not self.path.parent.is_dir():
            raise RecordError(f"cannot write {self.path}: directory {self.path.parent} does "
                              f"not exist")
        if not resume:
            return None
        saved = load_checkpoint(checkpoint_path(self.path))
        if saved is None or saved.run_id != self.identity.run_id:
            warnings.warn(f"{self.path} has no checkpoint of run {self.identity.run_id!r}: it "
                          f"starts again from step 0", stacklevel=3)
            saved = None
        else:
            self._restore(saved)
        start = saved.loop.next_step if saved is not None else 0
        self._writer = RecordWriter.reopen(self.path)
        self._writer.run(self.identity.run_id).truncate(start)
        self._writer.start_appending()
        self._sink = HDF5Recorder(self._writer, self.identity.run_id,
                                  flush_seconds=self.recording.flush_seconds,
                                  steps_recorded=start)
        self._sink.state(RunStatus.RUNNING, steps_done=start, flush=True)
        return saved.loop if saved is not None else None

    def _open(self, first_batch: Any, parts: int) -> None:
        """Lay the run out at its first step (when the activation layers' channels are known)
        and create the record, or add the run to it."""
        identity = self.identity
        config = run_config(identity, self.optimizer, recording=self.recording,
                            direction=self.direction, batch_size=batch_size(first_batch) * parts,
                            loss=getattr(self.loss_fn, "__name__", type(self.loss_fn).__name__),
                            data=self.data, probe_bn=self.probe_bn,
                            device=str(self.instrument.device),
                            precision=self.instrument.arithmetic)
        configs, index = [config], 0
        if self.path.exists():
            rec = open_record(self.path)
            configs = [rec.runs[r].config for r in rec.runs] + [config]
            index = len(rec.runs)
        layout = run_layout(identity, self.model, self.optimizer, recording=self.recording,
                            taps=self.taps, activations=self._channels.channels(), index=index,
                            run_config=config)
        header = record_header(configs)
        if index:
            self._writer = RecordWriter.add_runs(self.path, [layout], config=header,
                                                 data=data_identity(self.data),
                                                 versions=package_versions())
        else:
            self._writer = RecordWriter.create(self.path, config=header,
                                               data=data_identity(self.data), runs=[layout],
                                               versions=package_versions())
            self._held.hold()  # the new file itself, whatever other name it gets
        self._sink = HDF5Recorder(self._writer, identity.run_id,
                                  flush_seconds=self.recording.flush_seconds)
        self._sink.state(RunStatus.RUNNING, steps_done=0, flush=True)

    def _end(self, instrument: Instrument, error: BaseException | None) -> None:
        at_boundary = instrument.at_step_boundary
        if error is None:
            instrument.end_step()
            if instrument.diverged_step is not None:
                instrument.finish(RunStatus.DIVERGED, instrument.steps_done, StopReason.DIVERGED,
                                  diverged_step=instrument.diverged_step)
            else:
                instrument.finish(RunStatus.COMPLETE, instrument.steps_done, StopReason.PLANNED)
            self._drop_checkpoint()
            return
        # Interrupted (an exception, Ctrl-C): what was measured, then a checkpoint when the
        # loop stopped between two steps, so that resume=True continues from there.
        instrument.sync()
        if at_boundary and instrument.diverged_step is None:
            self._save_checkpoint()
        self._sink.state(RunStatus.INTERRUPTED, steps_done=instrument.steps_done,
                         seconds=instrument.elapsed())

    def _after_step(self) -> None:
        """After each step: the run's state at a host sync, a checkpoint when one is due."""
        instrument = self.instrument
        if instrument.diverged_step is not None:
            return
        if time.perf_counter() - self._last_checkpoint >= self.recording.checkpoint_seconds:
            instrument.sync()
            self._save_checkpoint()
        elif instrument.synced:
            self._sink.state(RunStatus.RUNNING, steps_done=instrument.steps_done,
                             seconds=instrument.elapsed())

    def _save_checkpoint(self) -> None:
        """The rows first (flushed), then the checkpoint: it never refers to unwritten rows."""
        instrument = self.instrument
        self._sink.state(RunStatus.RUNNING, steps_done=instrument.steps_done,
                         seconds=instrument.elapsed(), flush=True)
        device = instrument.device
        save_checkpoint(checkpoint_path(self.path), Checkpoint(
            run_id=self.identity.run_id, loop=instrument.loop_state(),
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            stream={"scaler": self.scaler.state_dict() if self.scaler is not None else None}))
        self._last_checkpoint = time.perf_counter()

    def _restore(self, saved: Checkpoint) -> None:
        self.model.load_state_dict(saved.model)
        self.optimizer.load_state_dict(saved.optimizer)
        torch.set_rng_state(saved.rng_cpu)
        device = next(self.model.parameters()).device
        if saved.rng_cuda is not None and device.type == "cuda":
            torch.cuda.set_rng_state(saved.rng_cuda, device)
        scaler_state = (saved.stream or {}).get("scaler")
        if self.scaler is not None and scaler_state is not None:
            self.scaler.load_state_dict(scaler_state)

    def _drop_checkpoint(self) -> None:
        path = checkpoint_path(self.path)
        saved = load_checkpoint(path) if path.exists() else None
        if saved is not None and saved.run_id == self.identity.run_id:
            path.unlink(missing_ok=True)

    def _evaluate_on(self, loader: Iterable[Any]) -> tuple[float, float]:
        """Mean loss and accuracy over `loader`'s batches, weighted by their sizes."""
        outputs: list = []
        hook = self.model.register_forward_hook(lambda m, i, o: outputs.append(o))
        total = correct = seen = 0.0
        device = self.instrument.device
        try:
            for batch in loader:
                batch = to_device(batch, device)
                outputs.clear()
                n = batch_size(batch)
                total += float(self.loss_fn(self.model, batch)) * n
                if self.correct_fn is not None and outputs:
                    correct += float(self.correct_fn(outputs[-1], batch))
                seen += n
        finally:
            hook.remove()
        if not seen:
            raise InstrumentError("the evaluation loader gave no batch")
        return total / seen, (correct / seen if self.correct_fn is not None else math.nan)


class _Deferred:
    """The instrument's recorder until the run exists in the file: every call goes to the
    Recorder's HDF5 recorder, made at the run's first step (nothing reaches it before)."""

    def __init__(self, owner: Recorder) -> None:
        self._owner = owner

    def __getattr__(self, name: str):
        return getattr(self._owner._sink, name)
