"""`landscape.lightning`: record a PyTorch Lightning run with `landscape.Recorder`.

    from landscape.lightning import LandscapeCallback

    trainer = lightning.Trainer(max_steps=100, callbacks=[
        LandscapeCallback("mine.h5", run_id="mixer_bn", probe=landscape.ProbeConfig(every=10))])
    trainer.fit(module, loader)

A thin adapter (docs/frameworks.md): every measurement is the Recorder's. Lightning's hooks
give it what a plain loop gives `rec.step(batch, loss)`:

- `on_train_start`: the Recorder opens on the LightningModule and its one optimizer (an AMP
  precision plugin's GradScaler with them);
- `on_train_batch_start`: the batch, as the module's `training_step` receives it;
- `on_before_backward`: its loss, as backpropagated (divided by `accumulate_grad_batches`;
  unscaled where the precision plugin scaled it);
- `on_before_optimizer_step`: after the backward passes of the step (every accumulated
  batch's) and an AMP scaler's unscaling, before gradient clipping: `rec.step`;
- `on_train_end`, `on_exception` (Ctrl-C included): the run complete, or interrupted.

The probes recompute the step's loss at other weights with `loss_fn(model, batch)`; by
default the module's own `training_step(batch, batch_idx)` with its `self.log` calls silenced,
so a probe's calls never reach Lightning's logged values.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.instrument.frameworks import StepParts, held_out_values, recorder_spec
from landscape.instrument.recorder import Recorder

try:
    import lightning.pytorch as pl
except ImportError:  # the optional extra is missing: one line that says what to install
    raise ImportError("landscape.lightning needs PyTorch Lightning: pip install "
                      "bn-landscape[lightning]") from None

_ADAPTER = "LandscapeCallback"


class LandscapeCallback(pl.Callback):
    """Record the training of `trainer.fit` into the record at `path` as run `run_id`.

    `loss_fn(model, batch)`: the step's loss as `training_step` computes it, for the probes
    (default: `training_step` itself, its `self.log` calls silenced; give your own where
    `training_step` changes anything else, e.g. a torchmetrics metric, or where the module
    uses manual optimization). `held_out`: the names of the held-out loss (and accuracy) your
    `validation_step` logs, e.g. ("val_loss", "val_acc"): each validation during training is
    then recorded as an evaluation. Every other keyword is `landscape.Recorder`'s (norm,
    family, seed, correct_fn, probe, taps, check, ...); the model, optimizer and AMP scaler
    are Lightning's.
    """

    def __init__(self, path: str | Path, *, run_id: str,
                 loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
                 held_out: str | tuple[str, str] | None = None, **options: Any) -> None:
        super().__init__()
        self.spec = recorder_spec(_ADAPTER, path, run_id, loss_fn=loss_fn, held_out=held_out,
                                  options=options)
        self.recorder: Recorder | None = None
        self._parts = StepParts()
        self._loss: _StepLoss | None = None
        self._scaler: Any = None

    # ---- training starts and ends ---------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _check_supported(trainer, pl_module, self.spec.loss_fn)
        self._scaler = getattr(trainer.precision_plugin, "scaler", None)
        self._loss = _StepLoss(pl_module, self.spec.loss_fn)
        self._parts = StepParts()
        self.recorder = self.spec.open(
            pl_module, trainer.optimizers[0], loss_fn=self._loss, scaler=self._scaler,
            total_steps=trainer.max_steps if trainer.max_steps > 0 else None)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close(None)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        self._close(exception)

    def _close(self, error: BaseException | None) -> None:
        if self.recorder is not None:
            recorder, self.recorder = self.recorder, None
            recorder.close(error)

    # ---- one optimizer step -------------------------------------------------------------------

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self.recorder is not None:
            if not self._parts.batches:  # a new step: its probes are done with the last one's
                self._loss.batch_index.clear()
            self._parts.add_batch(batch)
            self._loss.batch_index[id(batch)] = batch_idx

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           loss: torch.Tensor) -> None:
        if self.recorder is None:
            return
        scaler = self._scaler
        if scaler is not None and scaler.is_enabled():  # AMP: the loss as backpropagated, scaled
            loss = loss.detach() / scaler.get_scale()  # a power of two: exact
        self._parts.add_loss(loss)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self.recorder is None:
            return
        parts, every = len(self._parts.batches), trainer.accumulate_grad_batches
        # Lightning divides each batch's loss by accumulate_grad_batches, also in an epoch's
        # last, shorter group: the step's objective is then parts/every times their mean.
        self._loss.weight = parts / every if pl_module.automatic_optimization else 1.0
        self._parts.hand_to(self.recorder)

    # ---- evaluations ----------------------------------------------------------------------------

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        held_out = self.spec.held_out
        if held_out is None or self.recorder is None or trainer.sanity_checking:
            return
        if self.recorder.next_step == 0:
            return  # a validation before the first step (val_check_interval 0): nothing yet
        loss, acc = held_out_values(_ADAPTER, held_out, trainer.callback_metrics)
        self.recorder.log_evaluation(loss, acc, epoch=trainer.current_epoch)


class _StepLoss:
    """The step's loss of one batch, as `training_step` computes it before Lightning divides
    it by `accumulate_grad_batches`, times `weight` (1 but in an epoch's last, shorter group
    of accumulated batches): what the probes recompute at other weights."""

    def __init__(self, module: pl.LightningModule,
                 loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None) -> None:
        self.loss_fn = loss_fn
        self.weight = 1.0
        self.batch_index: dict[int, int] = {}  # id(batch) -> its batch_idx, this step
        # What the record's configuration names as the loss.
        self.__name__ = getattr(loss_fn, "__name__", None) or (
            f"{type(module).__name__}.training_step")

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        if self.loss_fn is not None:
            loss = self.loss_fn(model, batch)
        else:
            # A probe's copy of the batch (float64) is not the batch Lightning gave: the
            # step's last batch_idx then (only a training_step that reads batch_idx sees it).
            index = self.batch_index.get(id(batch), max(self.batch_index.values(), default=0))
            with _silenced_logging(model):
                output = model.training_step(batch, index)
            loss = output["loss"] if isinstance(output, Mapping) else output
            if loss is None:
                raise ConfigError("training_step returned None for a batch it trained on; "
                                  "give LandscapeCallback a loss_fn(model, batch)")
        return loss if self.weight == 1.0 else loss * self.weight


@contextmanager
def _silenced_logging(module: nn.Module) -> Iterator[None]:
    """`self.log` and `self.log_dict` do nothing while a probe runs `training_step`: its values
    at other weights must not reach Lightning's logged metrics."""
    saved = {name: module.__dict__.get(name) for name in ("log", "log_dict")}
    module.log = module.log_dict = _ignore
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del module.__dict__[name]
            else:
                module.__dict__[name] = value


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def _check_supported(trainer: pl.Trainer, module: pl.LightningModule,
                     loss_fn: Callable | None) -> None:
    """Refuse, in one line each, what the Recorder cannot follow faithfully."""
    if trainer.world_size > 1:
        raise ConfigError(f"{_ADAPTER} records one process's training; this Trainer runs "
                          f"{trainer.world_size} (record a single-device run)")
    if sum(isinstance(c, LandscapeCallback) for c in trainer.callbacks) > 1:
        raise ConfigError(f"one {_ADAPTER} per Trainer: each would see the other's probes as "
                          f"training steps; record one run per fit")
    if len(trainer.optimizers) != 1:
        raise ConfigError(f"{_ADAPTER} records a module trained by one optimizer; "
                          f"configure_optimizers gave {len(trainer.optimizers)}")
    if loss_fn is not None:
        return
    if not module.automatic_optimization:
        raise ConfigError(f"{_ADAPTER}: with manual optimization training_step also steps "
                          f"the optimizer, so probes cannot call it: give "
                          f"loss_fn(model, batch)")
    metrics = [name for name, m in module.named_modules() if _is_metric(m)]
    if metrics:
        raise ConfigError(f"{_ADAPTER}: the module holds the metric {metrics[0]!r}, which "
                          f"training_step would update at every probe: give "
                          f"loss_fn(model, batch)")


def _is_metric(module: nn.Module) -> bool:
    try:
        from torchmetrics import Metric
    except ImportError:  # no torchmetrics, no metric objects
        return False
    return isinstance(module, Metric)
