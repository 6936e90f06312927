"""landscape.lightning.LandscapeCallback with PyTorch Lightning itself (CPU, a tiny module, a few
steps, no logger or checkpoints): its rows equal the plain loop's with landscape.Recorder for
the same module, batches and seed, bit for bit; accumulated batches are the Recorder's
micro-batches; AMP's scaler is read through; training and Lightning's logged values are
untouched; the run ends complete or interrupted."""

from __future__ import annotations

import signal

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins import MixedPrecision
from torch import nn

import landscape
from landscape.errors import ConfigError
from landscape.instrument import argmax_correct
from landscape.lightning import LandscapeCallback


class LitMixer(pl.LightningModule):
    """test_recorder's Mixer as a LightningModule: a conv, an optional BatchNorm, dropout, a
    linear head; training_step logs its loss per step and per epoch."""

    def __init__(self, norm: bool = True, dropout: float = 0.0, fail_at: int | None = None,
                 error: type[BaseException] = RuntimeError) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(6 * 8 * 8, 10)
        self.fail_at, self.error = fail_at, error
        self.calls: list[tuple[float, int]] = []  # (the batch's sum, batch_idx) of each call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.norm(self.conv(x))), 4)
        return self.head(self.drop(h.flatten(1)))

    def training_step(self, batch, batch_idx):
        if batch_idx == self.fail_at:
            raise self.error("stopped by the test")
        x, y = batch
        self.calls.append((float(x.sum()), batch_idx))
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class Validated(LitMixer):
    """The same, validated: held-out loss and accuracy logged as val_loss and val_acc."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())


class ManualMixer(LitMixer):
    """The same, optimized by hand (Lightning's manual optimization)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        optimizer.zero_grad()
        x, y = batch
        self.manual_backward(F.cross_entropy(self(x), y))
        optimizer.step()


def mixer_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


@pytest.fixture(scope="module")
def dataset(embedded):
    x = torch.from_numpy(embedded.train_x[:240]).float() / 127.5 - 1  # NCHW uint8
    y = torch.from_numpy(embedded.train_y[:240]).long()
    return torch.utils.data.TensorDataset(x, y)


def loader(dataset, images: int = 240):
    return torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(images)),
                                       batch_size=24)


def fit(module, data, callbacks=(), val=None, **options) -> pl.Trainer:
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=list(callbacks), **options)
    trainer.fit(module, data, val)
    return trainer


def plain_loop(path, model, data, steps: int, *, accumulate: int = 1, clip: float = 0.0,
               amp: bool = False, **options):
    """The plain loop with landscape.Recorder, doing Lightning's arithmetic: each batch's loss
    divided by `accumulate`, the norm clipped after rec.step, AMP through a GradScaler."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, enabled=amp)
    batches = iter(data)
    with landscape.Recorder(path, model, optimizer, scaler=scaler if amp else None,
                            **options) as rec:
        for _ in range(steps):
            optimizer.zero_grad()
            parts, total = [next(batches) for _ in range(accumulate)], 0.0
            for x, y in parts:
                with torch.autocast("cpu", dtype=torch.float16, enabled=amp,
                                    cache_enabled=False):
                    loss = F.cross_entropy(model(x), y)
                if accumulate > 1:
                    loss = loss / accumulate
                scaler.scale(loss).backward()
                total = total + loss.detach()
            scaler.unscale_(optimizer)
            if accumulate > 1:
                rec.step(micro_batches=parts, loss=total)
            else:
                rec.step(parts[0], total)
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
    return model


def assert_same_rows(a_path, b_path, run_id="mixer_bn", tables=("steps", "probe"), steps=None):
    a, b = landscape.open_record(a_path), landscape.open_record(b_path)
    ra, rb = a.load(run_id), b.load(run_id)
    for table in tables:
        for name, value in vars(getattr(ra, table)).items():
            if isinstance(value, np.ndarray):
                other = getattr(getattr(rb, table), name)
                if steps is not None:
                    value, other = value[:steps], other[:steps]
                np.testing.assert_array_equal(value, other, err_msg=f"{table}/{name}")
    return ra, rb


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


# ---- the callback's rows are the plain loop's ------------------------------------------------


@pytest.mark.parametrize("module", [LitMixer, ManualMixer])
def test_the_callbacks_rows_equal_a_plain_loops_bit_for_bit(tmp_path, dataset, module,
                                                            one_thread):
    """BatchNorm and dropout, probe, ICS, taps and the training accuracy: trainer.fit with the
    callback and a plain loop with the Recorder over the same batches from the same seed give
    the same rows and the same weights (automatic optimization, and manual with a loss_fn)."""
    options = dict(run_id="mixer_bn", correct_fn=argmax_correct, ics_every=3,
                   ics_layers=("conv",), probe=landscape.ProbeConfig(every=2, count=2))
    if module is ManualMixer:
        options["loss_fn"] = mixer_loss
    torch.manual_seed(0)
    lit = module(dropout=0.3)
    fit(lit, loader(dataset), [LandscapeCallback(tmp_path / "lit.h5", **options)],
        max_steps=7)
    torch.manual_seed(0)
    options.pop("loss_fn", None)
    plain = plain_loop(tmp_path / "plain.h5", module(dropout=0.3), loader(dataset), 7,
                       **options)
    ra, _ = assert_same_rows(tmp_path / "lit.h5", tmp_path / "plain.h5",
                             tables=("steps", "probe", "ics"))
    assert_same_weights(lit, plain)
    assert ra.steps.step.tolist() == list(range(7)) and len(ra.probe.step) == 4
    record = landscape.open_record(tmp_path / "lit.h5")
    assert record.runs["mixer_bn"].status == "complete"
    assert record.runs["mixer_bn"].attrs["norm"] == "bn"
    tap = "head.weight"
    np.testing.assert_array_equal(record.tap("mixer_bn", tap).grad, landscape.open_record(
        tmp_path / "plain.h5").tap("mixer_bn", tap).grad)
    if module is LitMixer:
        assert record.config["loss"] == "LitMixer.training_step"
        # The probes (ICS after the update too) call training_step with each batch's own index.
        indices: dict[float, set[int]] = {}
        for key, index in lit.calls:
            indices.setdefault(key, set()).add(index)
        assert len(lit.calls) > 7 and sorted(indices.values()) == [{i} for i in range(7)]


def test_accumulated_batches_are_the_recorders_micro_batches(tmp_path, dataset, one_thread):
    """accumulate_grad_batches=2 over an epoch of 5 batches, clipped at 0.5: the two full
    steps equal the plain loop's with rec.step(micro_batches=...), the gradient recorded
    before clipping; the epoch's last step of one batch (whose loss Lightning still halves) is
    probed on the objective it stepped on (check mode recomputes it at every probed step)."""
    options = dict(run_id="mixer_bn", probe=landscape.ProbeConfig(every=1, count=2))
    torch.manual_seed(0)
    lit = LitMixer()
    fit(lit, loader(dataset, 120), [LandscapeCallback(tmp_path / "lit.h5", check=True,
                                                      **options)],
        max_epochs=1, accumulate_grad_batches=2, gradient_clip_val=0.5)
    torch.manual_seed(0)
    plain_loop(tmp_path / "plain.h5", LitMixer(), loader(dataset, 120), 2, accumulate=2,
               clip=0.5, **options)
    ra, _ = assert_same_rows(tmp_path / "lit.h5", tmp_path / "plain.h5", steps=2)
    assert ra.steps.step.tolist() == [0, 1, 2]
    assert (ra.steps.grad_norm > 0.5).all()
    np.testing.assert_allclose(ra.steps.applied_grad_norm, 0.5, rtol=1e-4)
    assert landscape.open_record(tmp_path / "lit.h5").runs["mixer_bn"].status == "complete"


def test_amp_gradients_are_read_through_the_precision_plugins_scaler(tmp_path, dataset,
                                                                     one_thread):
    """float16 autocast with a GradScaler (Lightning's MixedPrecision plugin): the rows equal
    the plain AMP loop's, whose gradients the Recorder reads unscaled (within float16's
    rounding of the float32 loop's), and the record says how training rounded."""
    options = dict(run_id="mixer_bn", probe=landscape.ProbeConfig(every=2, count=2))
    torch.manual_seed(0)
    fit(LitMixer(), loader(dataset), [LandscapeCallback(tmp_path / "lit.h5", **options)],
        max_steps=4, plugins=[MixedPrecision("16-mixed", "cpu",
                                             torch.amp.GradScaler("cpu", init_scale=2.0 ** 10))])
    torch.manual_seed(0)
    plain_loop(tmp_path / "amp.h5", LitMixer(), loader(dataset), 4, amp=True, **options)
    torch.manual_seed(0)
    plain_loop(tmp_path / "fp32.h5", LitMixer(), loader(dataset), 4, **options)
    ra, _ = assert_same_rows(tmp_path / "lit.h5", tmp_path / "amp.h5")
    fp32 = landscape.open_record(tmp_path / "fp32.h5").load("mixer_bn")
    np.testing.assert_allclose(ra.steps.grad_norm, fp32.steps.grad_norm, rtol=5e-3)
    np.testing.assert_allclose(ra.steps.loss, fp32.steps.loss, rtol=5e-3)
    assert landscape.open_record(tmp_path / "lit.h5").config["precision"] == "autocast float16"


def test_training_and_lightnings_logged_values_are_untouched(tmp_path, dataset, one_thread):
    """BatchNorm and dropout, every measurement on, check mode: the weights after fit and the
    values training_step logged equal those of the same fit without the callback (the
    probes call training_step, its self.log silenced)."""
    def run(callbacks):
        torch.manual_seed(0)
        module = LitMixer(dropout=0.3)
        trainer = fit(module, loader(dataset), callbacks, max_steps=6)
        return module, trainer

    plain, plain_trainer = run([])
    recorded, trainer = run([LandscapeCallback(
        tmp_path / "r.h5", run_id="mixer_bn", check=True,
        probe=landscape.ProbeConfig(every=1, count=2), ics_every=2, ics_layers=("conv",),
        activation_every=2, activation_layers=("norm",), save_weights_at=(0, 3),
        hessian=landscape.HessianConfig(every=3, k=1, iters=4, trace_samples=2))])
    assert_same_weights(plain, recorded)
    assert set(trainer.logged_metrics) == {"train_loss_step", "train_loss_epoch"}
    for name, value in plain_trainer.logged_metrics.items():
        assert torch.equal(value, trainer.logged_metrics[name]), name
    run_data = landscape.open_record(tmp_path / "r.h5").load("mixer_bn")
    assert len(run_data.probe.step) == 6 and len(run_data.hessian.step) == 2


def test_validations_are_recorded_as_held_out_evaluations(tmp_path, dataset, one_thread):
    torch.manual_seed(0)
    held_out = loader(dataset, 48)
    trainer = fit(Validated(), loader(dataset, 144),
                  [LandscapeCallback(tmp_path / "r.h5", run_id="mixer_bn",
                                     held_out=("val_loss", "val_acc"))], held_out,
                  max_epochs=2, val_check_interval=3, limit_val_batches=2,
                  num_sanity_val_steps=1)
    evaluations = landscape.open_record(tmp_path / "r.h5").load("mixer_bn").eval
    assert evaluations.step.tolist() == [3, 6, 9, 12]
    assert evaluations.test_loss[-1] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    assert evaluations.test_acc[-1] == pytest.approx(float(trainer.callback_metrics["val_acc"]))
    with pytest.raises(ConfigError, match="held_out names 'val_los', which the evaluation did "
                                          "not report .*val_loss"):
        fit(Validated(), loader(dataset, 144),
            [LandscapeCallback(tmp_path / "bad.h5", run_id="mixer_bn", held_out="val_los")],
            held_out, max_steps=4, val_check_interval=3, limit_val_batches=1, num_sanity_val_steps=0)
    assert landscape.open_record(tmp_path / "bad.h5").runs["mixer_bn"].status == "interrupted"


class SkipsABatch(LitMixer):
    """training_step returns None for batch 2 (after a forward pass): Lightning still steps
    the optimizer, on no gradient."""

    def training_step(self, batch, batch_idx):
        if batch_idx == 2:
            self(batch[0])
            return None
        return super().training_step(batch, batch_idx)


def test_a_skipped_batch_is_not_recorded_and_the_next_steps_are_probed_faithfully(
        tmp_path, dataset, one_thread):
    """The step Lightning takes without a loss is left out (the Recorder warns); the next
    steps replay their own dropout masks (check mode recomputes each probed step's loss)."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"optimizer.step\(\) ran without rec.step\(\)"):
        fit(SkipsABatch(dropout=0.3), loader(dataset),
            [LandscapeCallback(tmp_path / "r.h5", run_id="mixer_bn", check=True,
                               probe=landscape.ProbeConfig(every=1, count=2))], max_steps=5)
    run = landscape.open_record(tmp_path / "r.h5").load("mixer_bn")
    assert run.steps.step.tolist() == run.probe.step.tolist() == [0, 1, 3, 4]


# ---- how a fit ends ----------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_fit_that_fails_or_is_stopped_leaves_an_interrupted_run(tmp_path, dataset, error):
    """An exception in training_step, or Ctrl-C (Lightning then ignores SIGINT and exits with
    status 1): the steps done so far, and the run marked interrupted."""
    torch.manual_seed(0)
    module = LitMixer(fail_at=3, error=error)
    callback = LandscapeCallback(tmp_path / "r.h5", run_id="mixer_bn")
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit if error is KeyboardInterrupt else RuntimeError):
            fit(module, loader(dataset), [callback], max_steps=6)
    finally:
        signal.signal(signal.SIGINT, handler)
    state = landscape.open_record(tmp_path / "r.h5").runs["mixer_bn"]
    assert state.status == "interrupted" and state.steps_done == 3


# ---- what the callback refuses, in one line --------------------------------------------------


class TwoOptimizers(ManualMixer):
    def configure_optimizers(self):
        return [torch.optim.SGD(self.conv.parameters(), lr=0.05),
                torch.optim.SGD(self.head.parameters(), lr=0.05)]


class WithMetric(LitMixer):
    def __init__(self) -> None:
        super().__init__()
        from torchmetrics.classification import MulticlassAccuracy
        self.train_acc = MulticlassAccuracy(num_classes=10)


def test_what_cannot_be_recorded_is_refused_before_the_record_exists(tmp_path, dataset):
    path = tmp_path / "r.h5"
    cases = [
        (TwoOptimizers(), {"loss_fn": mixer_loss}, "one optimizer; configure_optimizers gave 2"),
        (WithMetric(), {}, "holds the metric 'train_acc'.*give loss_fn"),
        (LitMixer(), {"twice": True}, "one LandscapeCallback per Trainer"),
        (ManualMixer(), {}, "manual optimization.*give loss_fn"),
        (LitMixer(), {"taps": ("nope.weight",)}, "unknown tap .nope.weight."),
    ]
    for module, options, message in cases:
        callbacks = [LandscapeCallback(path, run_id="mixer_bn", **options)
                     for _ in range(2 if options.pop("twice", False) else 1)]
        with pytest.raises(landscape.LandscapeError, match=message):
            fit(module, loader(dataset, 48), callbacks, max_steps=1)
        assert not path.exists()
