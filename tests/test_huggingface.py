"""landscape.huggingface.LandscapeTrainer with transformers' Trainer itself (CPU, a plain
nn.Module returning its loss, a Dataset of tensors, no network): its rows equal the plain
loop's with landscape.Recorder bit for bit, the gradient recorded before the Trainer clips it;
accumulated micro-batches are probed on the objective the step took; evaluations are
recorded; the run ends complete or interrupted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainingArguments

import landscape
from landscape.errors import ConfigError
from landscape.huggingface import LandscapeTrainer, record_to


class Mixer(nn.Module):
    """test_recorder's Mixer in the Trainer's shape: inputs and labels in, {loss, logits}
    out. `per_item`: the loss summed and divided by the Trainer's count of labels over the
    step's micro-batches (`num_items_in_batch`), as language models normalize theirs."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.head = nn.Linear(6 * 8 * 8, 10)
        self.fail_at, self.calls = fail_at, 0

    def forward(self, x, labels):
        if self.training and torch.is_grad_enabled():
            self.calls += 1
            if self.calls - 1 == self.fail_at:
                raise RuntimeError("stopped by the test")
        logits = self.head(F.max_pool2d(F.relu(self.norm(self.conv(x))), 4).flatten(1))
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


class PerItemMixer(Mixer):
    def forward(self, x, labels, **loss_kwargs):
        logits = super().forward(x, labels)["logits"]
        total = F.cross_entropy(logits, labels, reduction="sum")
        return {"loss": total / loss_kwargs["num_items_in_batch"], "logits": logits}


class Images(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "labels": self.y[i]}


class InOrder(LandscapeTrainer):
    """The Trainer reading the data set in order (it shuffles by default), as the plain
    loop does."""

    def _get_train_sampler(self, train_dataset=None):
        return torch.utils.data.SequentialSampler(self.train_dataset)


@pytest.fixture(scope="module")
def images(embedded):
    x = torch.from_numpy(embedded.train_x[:240]).float() / 127.5 - 1  # NCHW uint8
    y = torch.from_numpy(embedded.train_y[:240]).long()
    return x, y


def arguments(tmp_path, **options) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path / "trainer"), per_device_train_batch_size=24,
                             lr_scheduler_type="constant", report_to="none", save_strategy="no",
                             logging_strategy="no", disable_tqdm=True, use_cpu=True,
                             remove_unused_columns=False, **options)


def train(tmp_path, model, images, *, images_used: int = 240, trainer_options=None,
          **recording):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = InOrder(model=model, args=arguments(tmp_path, **(trainer_options or {})),
                      train_dataset=Images(*(t[:images_used] for t in images)),
                      eval_dataset=Images(*(t[-48:] for t in images)),
                      optimizers=(optimizer, None),
                      recorder=record_to(tmp_path / "hf.h5", run_id="mixer_bn", **recording))
    trainer.train()
    return trainer


def batch_loss(model, batch):
    return model(**batch)["loss"]


def test_the_trainers_rows_equal_a_plain_loops_bit_for_bit(tmp_path, images, one_thread):
    """BatchNorm, probe, ICS, taps, the Trainer's default clipping at 1.0: the rows and weights
    of trainer.train() equal a plain loop's with the Recorder over the same batches, the
    gradient recorded before clipping."""
    options = dict(probe=landscape.ProbeConfig(every=2, count=2), ics_every=3,
                   ics_layers=("conv",))
    torch.manual_seed(0)
    model = Mixer()
    train(tmp_path, model, images, trainer_options={"max_steps": 6}, **options)
    torch.manual_seed(0)
    plain = Mixer()
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.05)
    x, y = images
    with landscape.Recorder(tmp_path / "plain.h5", plain, optimizer, run_id="mixer_bn",
                            loss_fn=batch_loss, **options) as rec:
        for i in range(0, 6 * 24, 24):
            batch = {"x": x[i:i + 24], "labels": y[i:i + 24]}
            optimizer.zero_grad()
            loss = batch_loss(plain, batch)
            loss.backward()
            rec.step(batch, loss)
            nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
            optimizer.step()
    a, b = landscape.open_record(tmp_path / "hf.h5"), landscape.open_record(tmp_path / "plain.h5")
    ra, rb = a.load("mixer_bn"), b.load("mixer_bn")
    for table in ("steps", "probe", "ics"):
        for name, value in vars(getattr(ra, table)).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, getattr(getattr(rb, table), name),
                                              err_msg=f"{table}/{name}")
    for name in ("grad", "weight_delta"):
        np.testing.assert_array_equal(getattr(a.tap("mixer_bn", "head.weight"), name),
                                      getattr(b.tap("mixer_bn", "head.weight"), name))
    for (name, p), q in zip(model.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(p, q), name
    assert ra.steps.step.tolist() == list(range(6)) and (ra.steps.grad_norm > 1.0).all()
    np.testing.assert_allclose(ra.steps.applied_grad_norm, 1.0, rtol=1e-4)
    assert a.runs["mixer_bn"].status == "complete"
    assert a.config["loss"] == "InOrder.compute_loss"


@pytest.mark.parametrize("model", [Mixer, PerItemMixer])
def test_accumulated_micro_batches_are_probed_on_the_steps_objective(tmp_path, images, model,
                                                                     one_thread):
    """gradient_accumulation_steps=2 over 5 batches (the last step has one): whether the
    Trainer divides each micro-batch's loss by their number or the model normalizes it over
    the step's labels (num_items_in_batch), the probe's loss is the step's objective: check
    mode recomputes it at every probed step and compares it with the loss trained on."""
    torch.manual_seed(0)
    train(tmp_path, model(), images, images_used=120, check=True,
          probe=landscape.ProbeConfig(every=1, count=2),
          trainer_options={"num_train_epochs": 1, "gradient_accumulation_steps": 2})
    record = landscape.open_record(tmp_path / "hf.h5")
    assert record.runs["mixer_bn"].status == "complete"
    assert record.load("mixer_bn").steps.step.tolist() == [0, 1, 2]


def test_evaluations_are_recorded_and_a_failure_interrupts_the_run(tmp_path, images,
                                                                   one_thread):
    torch.manual_seed(0)
    trainer = train(tmp_path, Mixer(), images, held_out="eval_loss",
                    trainer_options={"max_steps": 4, "eval_strategy": "steps",
                                     "eval_steps": 2})
    run = landscape.open_record(tmp_path / "hf.h5").load("mixer_bn")
    assert run.eval.step.tolist() == [2, 4]
    losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    np.testing.assert_allclose(run.eval.test_loss, losses, rtol=1e-6)
    assert np.isnan(run.eval.test_acc).all()

    failed = tmp_path / "failed"
    failed.mkdir()
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="stopped by the test"):
        train(failed, Mixer(fail_at=3), images, trainer_options={"max_steps": 6})
    state = landscape.open_record(failed / "hf.h5").runs["mixer_bn"]
    assert state.status == "interrupted" and state.steps_done == 3


def test_what_cannot_be_recorded_is_refused_in_one_line(tmp_path, images):
    with pytest.raises(ConfigError, match="does not record mixed precision: accelerate puts "
                                          "autocast inside the model's forward"):
        InOrder(model=Mixer(), args=arguments(tmp_path, bf16=True),
                recorder=record_to(tmp_path / "r.h5", run_id="mixer_bn"))
    with pytest.raises(ConfigError, match=r"recorder=landscape.huggingface.record_to"):
        InOrder(model=Mixer(), args=arguments(tmp_path), recorder="r.h5")
    with pytest.raises(ConfigError, match="unknown option 'probes'"):
        record_to(tmp_path / "r.h5", run_id="mixer_bn", probes=landscape.ProbeConfig(every=1))
    assert not (tmp_path / "r.h5").exists()
