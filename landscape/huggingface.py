"""`landscape.huggingface`: record a Hugging Face `Trainer` run with `landscape.Recorder`.

    from landscape.huggingface import LandscapeTrainer, record_to

    trainer = LandscapeTrainer(model=model, args=args, train_dataset=dataset,
                               recorder=record_to("mine.h5", run_id="mlp_bn",
                                                  probe=landscape.ProbeConfig(every=10)))
    trainer.train()

A thin adapter (docs/frameworks.md): every measurement is the Recorder's. It is a `Trainer`
subclass, not a `TrainerCallback`, because a callback sees neither the batch nor the gradient
before it is clipped (`on_pre_optimizer_step` comes after `max_grad_norm`'s clipping):

- `train`: the run is recorded from its first step, complete when `train` returns,
  interrupted when it raises (Ctrl-C included);
- `training_step`: the Recorder opens at the first one (the Trainer makes its optimizer inside
  `train`); each micro-batch's inputs (on the device) and loss as backpropagated are kept, and
  after the last micro-batch of an optimizer step (accelerate's `sync_gradients`), before the
  Trainer clips the gradient, they go to `rec.step`;
- `evaluate`: with `held_out`, each evaluation during training is recorded.

`RecorderMixin` gives the same to another `Trainer` subclass: `class Mine(RecorderMixin,
SFTTrainer)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.instrument.frameworks import (RecorderSpec, StepParts, held_out_values,
                                             recorder_spec)
from landscape.instrument.recorder import Recorder

try:
    import transformers
except ImportError:  # the optional extra is missing: one line that says what to install
    raise ImportError("landscape.huggingface needs transformers and accelerate: pip install "
                      "bn-landscape[huggingface]") from None

_ADAPTER = "LandscapeTrainer"


def record_to(path: str | Path, *, run_id: str,
              loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
              held_out: str | tuple[str, str] | None = None, **options: Any) -> RecorderSpec:
    """What `LandscapeTrainer(recorder=...)` records: run `run_id` into the record at `path`.

    `loss_fn(model, inputs)`: one batch's loss as `compute_loss` computes it, for the probes
    (default: the Trainer's own `compute_loss`). `held_out`: the names of the held-out loss (and
    accuracy) `evaluate` reports, e.g. ("eval_loss", "eval_accuracy"). Every other keyword is
    `landscape.Recorder`'s (norm, family, seed, correct_fn, probe, taps, check, ...)."""
    return recorder_spec(_ADAPTER, path, run_id, loss_fn=loss_fn, held_out=held_out,
                         options=options)


class RecorderMixin:
    """Record a `Trainer`'s training into a record (put it before the Trainer class):
    `recorder=record_to(path, run_id=..., ...)`."""

    def __init__(self, *args: Any, recorder: RecorderSpec, **kwargs: Any) -> None:
        if not isinstance(recorder, RecorderSpec):
            raise ConfigError(f"{_ADAPTER}: recorder=landscape.huggingface.record_to(path, "
                              f"run_id=..., ...), got {type(recorder).__name__}")
        super().__init__(*args, **kwargs)
        _check_supported(self.args)
        self.recorder_spec = recorder
        self.recorder: Recorder | None = None
        self._parts = StepParts()
        self._loss: _StepLoss | None = None

    def train(self, *args: Any, **kwargs: Any) -> Any:
        try:
            output = super().train(*args, **kwargs)
        except BaseException as error:
            self._close(error)
            raise
        self._close(None)
        return output

    def _close(self, error: BaseException | None) -> None:
        if self.recorder is not None:
            recorder, self.recorder = self.recorder, None
            recorder.close(error)

    def training_step(self, model: nn.Module, inputs: dict[str, Any],
                      num_items_in_batch: Any = None) -> torch.Tensor:
        if self.recorder is None:
            self._open()
        inputs = self._prepare_inputs(inputs)  # a new dict on the device: compute_loss may pop
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._parts.add_batch(inputs)
        self._parts.add_loss(loss)
        if self.accelerator.sync_gradients:  # the optimizer step's last micro-batch
            self._loss.num_items_in_batch = num_items_in_batch
            self._loss.weight = (len(self._parts.batches) if _loss_scaled_for_accumulation(
                self, num_items_in_batch) else 1)
            self._parts.hand_to(self.recorder)
        return loss

    def _open(self) -> None:
        self._loss = _StepLoss(self, self.recorder_spec.loss_fn)
        self._parts = StepParts()
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)  # accelerate's wrapper
        self.recorder = self.recorder_spec.open(
            self.model, optimizer, loss_fn=self._loss,
            total_steps=self.state.max_steps if self.state.max_steps > 0 else None)

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        metrics = super().evaluate(*args, **kwargs)
        held_out = self.recorder_spec.held_out
        if held_out is not None and self.recorder is not None and self.recorder.next_step:
            loss, acc = held_out_values(_ADAPTER, held_out, metrics)
            self.recorder.log_evaluation(loss, acc, epoch=self.state.epoch)
        return metrics


class LandscapeTrainer(RecorderMixin, transformers.Trainer):
    """`transformers.Trainer` that records its training: `recorder=record_to(path,
    run_id=..., ...)` beside the Trainer's own arguments."""


class _StepLoss:
    """One micro-batch's loss as the Trainer computes it (`compute_loss`, before it divides by
    the number of micro-batches), times `weight`: the number of micro-batches where the loss
    was already normalized over all of them (by `num_items_in_batch`), so that the Recorder's
    mean over the micro-batches is the objective whose gradient the step accumulated."""

    def __init__(self, trainer: Any, loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None
                 ) -> None:
        self.trainer, self.loss_fn = trainer, loss_fn
        self.weight = 1
        self.num_items_in_batch: Any = None
        self.__name__ = getattr(loss_fn, "__name__", None) or (
            f"{type(trainer).__name__}.compute_loss")

    def __call__(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        if self.loss_fn is not None:
            loss = self.loss_fn(model, inputs)
        else:  # a copy: compute_loss pops the labels where it computes the loss itself
            loss = self.trainer.compute_loss(model, dict(inputs),
                                             num_items_in_batch=self.num_items_in_batch)
        return loss if self.weight == 1 else loss * self.weight


def _loss_scaled_for_accumulation(trainer: Any, num_items_in_batch: Any) -> bool:
    """Whether the Trainer left each micro-batch's loss as it was (normalized over all the
    step's micro-batches already) instead of dividing it by their number: its own rule in
    `Trainer.training_step`."""
    scaled = getattr(trainer, "loss_is_scaled_for_ga", None)
    if scaled is not None:
        return bool(scaled)
    return bool(trainer.model_accepts_loss_kwargs and num_items_in_batch is not None
                or trainer.compute_loss_func is not None)


def _check_supported(args: Any) -> None:
    """Refuse, in one line each, what the Recorder cannot follow faithfully."""
    if args.fp16 or args.bf16:
        raise ConfigError(f"{_ADAPTER} does not record mixed precision: accelerate puts "
                          f"autocast inside the model's forward, where the probes cannot "
                          f"leave it (they would measure in half precision); train in "
                          f"float32, or use Lightning or your own loop for AMP")
    if args.world_size > 1 or args.n_gpu > 1:
        raise ConfigError(f"{_ADAPTER} records one process on one device; these arguments "
                          f"train on {max(args.world_size, args.n_gpu)}")
    if args.deepspeed or args.fsdp:
        raise ConfigError(f"{_ADAPTER} records a model whose parameters and gradients are "
                          f"whole in this process; DeepSpeed and FSDP shard them")
