"""Learning-rate schedules: exact values at chosen steps, agreement with torch's schedulers,
validation, and the recorded `steps/lr` of a real record."""

import math
import re

import numpy as np
import pytest
import torch

import landscape
from landscape.cli._flags import flag_message
from landscape.config import ProbeConfig, RecordConfig
from landscape.errors import ConfigError
from landscape.training.schedules import learning_rate
from landscape.sweep import record


pytestmark = pytest.mark.usefixtures("one_thread")


def config(**changes) -> RecordConfig:
    values = dict(models=("vgg",), lrs=(0.1,), max_steps=100, device="cpu")
    values.update(changes)
    return RecordConfig(**values)


def sequence(cfg, base, steps_per_epoch, total):
    return [learning_rate(cfg, base, t, steps_per_epoch, total) for t in range(total)]


def torch_sequence(make_scheduler, base, total):
    """The lr torch's scheduler gives each step (scheduler.step() after every step)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def test_constant():
    assert sequence(config(), 0.1, 10, 50) == [0.1] * 50


def test_step_multiplies_every_n_epochs():
    cfg = config(schedule="step", lr_step_epochs=2, lr_gamma=0.5)
    lrs = sequence(cfg, 0.1, 10, 70)  # boundaries at steps 20, 40, 60
    assert lrs[0] == lrs[19] == 0.1
    assert lrs[20] == lrs[39] == 0.05
    assert lrs[40] == 0.025 and lrs[60] == 0.0125
    expected = torch_sequence(lambda o: torch.optim.lr_scheduler.StepLR(o, 20, gamma=0.5),
                              0.1, 70)
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_multistep_multiplies_at_milestones():
    cfg = config(schedule="multistep", lr_milestones=(1, 3), lr_gamma=0.1)
    lrs = sequence(cfg, 1.0, 5, 20)  # milestones at steps 5 and 15
    assert lrs[:5] == [1.0] * 5
    assert lrs[5] == lrs[14] == 0.1
    assert lrs[15] == lrs[19] == pytest.approx(0.01, rel=1e-15)
    expected = torch_sequence(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 15], gamma=0.1), 1.0, 20)
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_cosine_anneals_from_lr_towards_the_minimum():
    cfg = config(schedule="cosine", lr_min=0.01)
    lrs = sequence(cfg, 0.1, 10, 100)
    assert lrs[0] == 0.1
    assert lrs[50] == pytest.approx(0.055, rel=1e-14)  # half way: the mean of lr and lr_min
    assert lrs[25] == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-14)
    assert np.all(np.diff(lrs) < 0) and lrs[-1] > 0.01
    assert learning_rate(cfg, 0.1, 100, 10, 100) == pytest.approx(0.01, rel=1e-14)
    expected = torch_sequence(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=100, eta_min=0.01),
        0.1, 100)
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)


def test_cyclic_is_triangular_between_the_minimum_and_lr():
    cfg = config(schedule="cyclic", lr_min=0.02, cycle_steps=4)
    lrs = sequence(cfg, 0.1, 10, 17)
    np.testing.assert_allclose(
        lrs, [0.02, 0.04, 0.06, 0.08, 0.1, 0.08, 0.06, 0.04, 0.02, 0.04, 0.06, 0.08, 0.1,
              0.08, 0.06, 0.04, 0.02], rtol=1e-14)
    assert lrs[4] == lrs[12] == 0.1 and lrs[0] == lrs[8] == lrs[16] == 0.02
    expected = torch_sequence(
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=0.02, max_lr=0.1, step_size_up=4,
                                                    mode="triangular", cycle_momentum=False),
        0.1, 17)
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)


@pytest.mark.parametrize("changes, message", [
    (dict(schedule="linear"), "unknown schedule 'linear'; valid: constant, step, multistep"),
    (dict(schedule="step"), "--schedule step needs --lr-step-epochs N"),
    (dict(schedule="step", lr_step_epochs=0), "--lr-step-epochs must be at least 1"),
    (dict(schedule="multistep"), "--schedule multistep needs --lr-milestones"),
    (dict(schedule="multistep", lr_milestones=(150, 100)),
     "--lr-milestones must be increasing epochs >= 1, got 150,100"),
    (dict(schedule="cyclic"), "--schedule cyclic needs --cycle-steps N"),
    (dict(schedule="cyclic", cycle_steps=0, lr_min=0.01), "--cycle-steps must be at least 1"),
    (dict(schedule="cosine", lr_min=0.5), "--lr-min 0.5 must be below every learning rate"),
    (dict(schedule="cosine", lr_min=-1.0), "--lr-min must be >= 0"),
    (dict(schedule="step", lr_step_epochs=1, lr_gamma=0.0), "--lr-gamma must be in (0, 1]"),
    (dict(lr_min=1e-5), "--lr-min applies to --schedule cosine or cyclic, not constant"),
    (dict(schedule="cosine", lr_milestones=(10,)),
     "--lr-milestones applies to --schedule multistep, not cosine"),
    (dict(cycle_steps=10), "--cycle-steps applies to --schedule cyclic, not constant"),
    (dict(schedule="cosine", lr_gamma=0.5), "--lr-gamma applies to --schedule step or multistep"),
])
def test_bad_schedules_are_refused(changes, message):
    # The library names fields (optim.lr_min); the command line shows its flags (--lr-min).
    with pytest.raises(ConfigError) as info:
        config(**changes)
    assert re.search(message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                     .replace("]", r"\]"), flag_message(info.value))


def test_the_record_uses_and_records_the_scheduled_lr(tmp_path, cifar_dir):
    """Plain SGD with a cyclic schedule: steps/lr is the schedule, the update is lr_t · g_t,
    and the probe's grid is relative to lr_t."""
    cfg = RecordConfig(models=("vgg",), lrs=(0.05,), optimizer="sgd", schedule="cyclic",
                       lr_min=0.01, cycle_steps=3, width=0.125, batch_size=32, max_steps=8,
                       device="cpu", data_dir=str(cifar_dir), verify_md5=False,
                       probe=ProbeConfig(every=4, count=2, low=1.0, high=2.0))
    record(cfg, tmp_path / "r.h5")
    rec = landscape.open_record(tmp_path / "r.h5")
    assert rec.config["schedule"] == "cyclic" and rec.config["cycle_steps"] == 3
    data = rec.load("vgg_lr0.05")
    expected = [learning_rate(cfg, 0.05, t, 10, 8) for t in range(8)]  # 320 images / 32
    np.testing.assert_array_equal(data.steps.lr, expected)
    assert len(set(expected)) > 3
    tap = rec.tap("vgg_lr0.05", "classifier.fc3.weight")
    lr = np.asarray(expected)[:, None, None]
    np.testing.assert_allclose(tap.weight_delta, -lr * tap.grad, rtol=1e-4, atol=2e-7)
    np.testing.assert_array_equal(data.probe.step, [0, 4])
    np.testing.assert_array_equal(data.probe.eta, [[e, 2 * e] for e in (expected[0],
                                                                        expected[4])])
