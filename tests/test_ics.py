"""Internal covariate shift (Definition 2.1) and activation statistics against independent
computations, and proof that both leave training untouched."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from landscape.data import BatchOptions, BatchStream, DeviceImages
from landscape.models import build_model
from landscape.probes import ActivationProbe, ICSProbe
from landscape.training.recorder import MemoryRecorder
from landscape.training.loop import train_run

pytestmark = pytest.mark.usefixtures("one_thread")


def two_layer_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def batches(x, y):
    while True:
        yield x, y


def test_ics_of_a_two_layer_network_matches_the_definition():
    """G = ∇_{W2} L(W1_t, W2_t); G' = ∇_{W2} L(W1_{t+1}, W2_t): recomputed in float64 with an
    explicit SGD step. The first layer has no preceding layer: G' = G."""
    torch.manual_seed(1)
    x, y = torch.randn(16, 5), torch.randn(16, 3)
    loss_fn = nn.functional.mse_loss
    lr = 0.3
    model = two_layer_net()
    reference = copy.deepcopy(model).double()
    recorder = MemoryRecorder()
    names = [n for n, _ in model.named_parameters()]
    train_run(model, torch.optim.SGD(model.parameters(), lr=lr), batches(x, y), total_steps=3,
              steps_per_epoch=1, recorder=recorder, evaluate=lambda m: (0.0, 0.0),
              loss_fn=loss_fn, correct_fn=None,
              probes=[ICSProbe(every=1, layers=("2", "0"), names=names)])
    ics = recorder.arrays("ics")
    np.testing.assert_array_equal(ics["step"], [0, 1, 2])

    x64, y64 = x.double(), y.double()
    params = list(reference.parameters())  # 0.weight, 0.bias, 2.weight, 2.bias
    for t in range(3):
        grads = torch.autograd.grad(loss_fn(reference(x64), y64), params)
        shifted = copy.deepcopy(reference)
        with torch.no_grad():  # the preceding layer (0) takes its step; layer 2 stays at w_t
            shifted[0].weight -= lr * grads[0]
            shifted[0].bias -= lr * grads[1]
        g_shift = torch.autograd.grad(loss_fn(shifted(x64), y64),
                                      [shifted[2].weight, shifted[2].bias])
        g = torch.cat([grads[2].ravel(), grads[3].ravel()])
        g2 = torch.cat([g_shift[0].ravel(), g_shift[1].ravel()])
        assert ics["distance"][t, 0] == pytest.approx(torch.linalg.norm(g - g2).item(), rel=1e-4)
        assert ics["cosine"][t, 0] == pytest.approx(
            (g @ g2 / (g.norm() * g2.norm())).item(), rel=1e-5)
        assert ics["distance"][t, 1] == 0.0 and ics["cosine"][t, 1] == pytest.approx(1.0)
        with torch.no_grad():  # the real SGD step of the reference
            for p, grad in zip(params, grads):
                p -= lr * grad
    # The shift is real: it is not zero for the second layer.
    assert np.all(ics["distance"][:, 0] > 0)


def test_activation_statistics_are_those_of_the_training_forward_pass(embedded):
    torch.manual_seed(0)
    model = build_model("vgg_noisy_bn", width=0.125)
    seen = []
    model.features.stage3.norm1.register_forward_hook(
        lambda m, i, out: seen.append(out.detach().clone()) if m.training else None)
    images = DeviceImages(embedded.train_x[:64], embedded.train_y[:64], torch.device("cpu"))
    stream = BatchStream(images, BatchOptions(batch_size=32), seed=0)
    recorder = MemoryRecorder()
    probe = ActivationProbe(model, "features.stage3.norm1", every=1)
    train_run(model, torch.optim.SGD(model.parameters(), lr=0.01), stream.batches(),
              total_steps=2, steps_per_epoch=2, recorder=recorder,
              evaluate=lambda m: (0.0, 0.0), probes=[probe])
    stats = recorder.arrays("activations/features.stage3.norm1")
    # The first output the hook saw at each step is the training forward pass.
    for t, out in enumerate(seen[:2]):
        out = out.double()
        np.testing.assert_allclose(stats["mean"][t], out.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
        np.testing.assert_allclose(stats["var"][t], out.var(dim=(0, 2, 3), unbiased=False).numpy(),
                                   rtol=1e-4)


def train_noisy(embedded, probes_for):
    torch.manual_seed(0)
    model = build_model("vgg_noisy_bn", width=0.125)
    names = [n for n, _ in model.named_parameters()]
    images = DeviceImages(embedded.train_x[:96], embedded.train_y[:96], torch.device("cpu"))
    stream = BatchStream(images, BatchOptions(batch_size=32, flip=True), seed=0)
    recorder = MemoryRecorder()
    train_run(model, torch.optim.Adam(model.parameters(), lr=1e-3), stream.batches(),
              total_steps=6, steps_per_epoch=3, recorder=recorder,
              evaluate=lambda m: (0.0, 0.0), probes=probes_for(model, names))
    return model.state_dict(), recorder


def test_ics_and_activation_probes_leave_training_bit_identical(embedded):
    """Noisy BN draws random numbers in every forward pass; the probes replay and restore
    them, so training with probes at every step is bit for bit training without them."""
    plain_state, plain = train_noisy(embedded, lambda model, names: [])
    probed_state, probed = train_noisy(embedded, lambda model, names: [
        ICSProbe(every=1, layers=("features.stage2.conv1", "classifier.fc2"), names=names),
        ActivationProbe(model, "features.stage3.norm1", every=1)])
    for key, value in plain_state.items():
        assert torch.equal(value, probed_state[key]), key
    np.testing.assert_array_equal(plain.arrays("steps")["loss"], probed.arrays("steps")["loss"])
    assert len(probed.arrays("ics")["step"]) == 6
