"""The probe along the optimizer's update (and in float64): ground truth against the gradient
probe for plain SGD, against the loss at w_{t+1} under Adam, against an independent float64
computation, and proof that training stays bit-identical."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.config import ProbeConfig, RecordConfig
from landscape.data import BatchOptions, BatchStream, DeviceImages
from landscape.errors import ConfigError
from landscape.models import build_model
from landscape.probes import GradientProbe
from landscape.training.recorder import MemoryRecorder
from landscape.training.loop import train_run


def _train(embedded, *, optimizer, probe=None, steps=6, model_name="vgg_light_bn"):
    torch.manual_seed(0)
    model = build_model(model_name, width=0.5)
    opt = (torch.optim.SGD(model.parameters(), lr=0.05) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    images = DeviceImages(embedded.train_x[:128], embedded.train_y[:128], torch.device("cpu"))
    stream = BatchStream(images, BatchOptions(batch_size=32), seed=0)
    recorder = MemoryRecorder()
    names = [n for n, _ in model.named_parameters()]
    probes = [GradientProbe(probe, names=names)] if probe is not None else []
    train_run(model, opt, stream.batches(), total_steps=steps,
              steps_per_epoch=stream.steps_per_epoch, recorder=recorder,
              evaluate=lambda m: (0.0, 0.0), probes=probes)
    return model, recorder


def test_for_plain_sgd_the_update_and_the_gradient_probe_measure_the_same(embedded):
    # d_t = −lr·g_t, so w_t + c·d_t = w_t − (c·lr)·g_t: the same points, up to float32
    # rounding of w_{t+1} − w_t.
    _, along_g = _train(embedded, optimizer="sgd", probe=ProbeConfig(every=1,
                                                                     direction="gradient"))
    _, along_d = _train(embedded, optimizer="sgd", probe=ProbeConfig(every=1,
                                                                     direction="update"))
    g, d = along_g.arrays("probe"), along_d.arrays("probe")
    np.testing.assert_array_equal(g["eta"], d["eta"])
    np.testing.assert_allclose(d["distance"], g["distance"], rtol=1e-4)
    np.testing.assert_allclose(d["loss"], g["loss"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d["grad_diff"], g["grad_diff"], rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(d["beta"], g["beta"], rtol=2e-3)


def test_under_adam_c_equal_one_is_exactly_the_next_weights(embedded):
    # Grid 0.5 … 4 in 8 linear steps: c = 1 is the second point.
    config = ProbeConfig(every=1, direction="update")
    model, rec = _train(embedded, optimizer="adam", probe=config, steps=1)
    probe = rec.arrays("probe")
    # Independently: the step's batch and L(w_1; B_0) with BN in training mode, at the weights
    # the run ended with (w_1 after one step).
    images = DeviceImages(embedded.train_x[:128], embedded.train_y[:128], torch.device("cpu"))
    x, y = next(BatchStream(images, BatchOptions(batch_size=32), seed=0).batches())
    model.train()
    with torch.no_grad():
        loss_next = nn.functional.cross_entropy(model(x), y).item()
    assert probe["loss"][0, 1] == np.float32(loss_next)
    # And the distances are c‖d_0‖ with ‖d_0‖ the recorded update norm (Adam's first step moves
    # every coordinate by ≈ lr, far more than the gradient probe's η‖g‖).
    update_norm = rec.arrays("steps")["update_norm"][0]
    np.testing.assert_allclose(probe["distance"][0], np.linspace(0.5, 4, 8) * update_norm,
                               rtol=1e-5)
    assert probe["distance"][0, 1] > 10 * 1e-3 * probe["grad_norm"][0]


@pytest.mark.parametrize("direction", ["update", "gradient"])
def test_training_stays_bit_identical_with_the_probe(embedded, direction):
    plain, plain_rec = _train(embedded, optimizer="adam")
    probed, probed_rec = _train(embedded, optimizer="adam",
                                probe=ProbeConfig(every=1, direction=direction))
    for (name, a), b in zip(plain.state_dict().items(), probed.state_dict().values()):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(plain_rec.arrays("steps")["loss"],
                                  probed_rec.arrays("steps")["loss"])


def test_float64_probe_matches_an_independent_float64_computation(embedded):
    config = ProbeConfig(every=1, direction="gradient", dtype="float64", count=3)
    model0 = build_model("vgg_light_bn", width=0.5)
    torch.manual_seed(0)
    model0 = build_model("vgg_light_bn", width=0.5)
    w0 = [p.detach().clone() for p in model0.parameters()]
    _, rec = _train(embedded, optimizer="sgd", probe=config, steps=1)
    probe = rec.arrays("probe")
    images = DeviceImages(embedded.train_x[:128], embedded.train_y[:128], torch.device("cpu"))
    x, y = next(BatchStream(images, BatchOptions(batch_size=32), seed=0).batches())
    # The direction is the float32 training gradient; everything else in float64.
    m32 = build_model("vgg_light_bn", width=0.5)
    with torch.no_grad():
        for p, w in zip(m32.parameters(), w0):
            p.copy_(w)
    nn.functional.cross_entropy(m32(x), y).backward()
    g32 = [p.grad.clone() for p in m32.parameters()]
    m64 = build_model("vgg_light_bn", width=0.5).double().train()

    def loss_grad(eta):
        with torch.no_grad():
            for p, w, g in zip(m64.parameters(), w0, g32):
                p.copy_(w.double() - eta * g.double())
        loss = nn.functional.cross_entropy(m64(x.double()), y)
        return loss.item(), torch.autograd.grad(loss, list(m64.parameters()))

    _, g_ref = loss_grad(0.0)
    for k, eta in enumerate(probe["eta"][0]):
        loss, g = loss_grad(float(eta))
        diff = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(g, g_ref))).item()
        assert probe["loss"][0, k] == pytest.approx(loss, rel=1e-6)
        assert probe["grad_diff"][0, k] == pytest.approx(diff, rel=1e-5)


def test_direction_auto_resolves_by_optimizer_and_old_records_read_as_gradient():
    sgd = RecordConfig(models=("vgg_light",), lrs=(0.1,), optimizer="sgd", max_steps=1)
    assert sgd.recording.probe.direction == "gradient"
    assert RecordConfig(models=("vgg_light",), lrs=(0.1,), optimizer="sgd", momentum=0.9,
                        max_steps=1).recording.probe.direction == "update"
    adam = RecordConfig(models=("vgg_light",), lrs=(1e-3,), max_steps=1)
    assert adam.recording.probe.direction == "update"
    old = adam.to_dict()
    old.pop("seeds")
    old["seed"] = 3
    old["probe"] = {k: v for k, v in old["probe"].items() if k not in ("direction", "dtype")}
    back = RecordConfig.from_dict(old)
    assert back.recording.probe.direction == "gradient" and back.seeds == (3,)
    with pytest.raises(ConfigError, match="relative"):
        ProbeConfig(direction="update", scale="absolute").validate()


def test_float64_probe_refuses_random_layers():
    from landscape.probes.gradient import check_float64_probe
    with pytest.raises(ConfigError, match="random layers"):
        check_float64_probe(build_model("vgg_dropout", width=0.125), penalties=False)
    with pytest.raises(ConfigError, match="penalties"):
        check_float64_probe(build_model("vgg_light", width=0.5), penalties=True)
