"""Loss surfaces (`landscape surface`, `landscape.surfaces`): the centre is the recorded loss,
directions are filter-normalized filter by filter, batched (vmap) evaluation equals one-by-one
evaluation, a linear model's surface is the closed-form quadratic, and an interrupted surface
resumes to the same values."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from landscape import open_record
from landscape.cli import main
from landscape.config import RecordConfig
from landscape.errors import RecordError
from landscape.models import build_model
from landscape.kept.models import load_model
from landscape.surfaces import GridEvaluator, loss_surface, random_directions
from landscape.surfaces.from_record import SurfaceOptions, record_surface, surface_batches
from landscape.training.tasks import make_task
from landscape.surfaces.grid import coordinates, grid_coefficients


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, cifar_dir, one_thread):
    """vgg and vgg_bn, 6 steps of 32 images, weights kept at every step and after the last."""
    from conftest import TINY
    out = tmp_path_factory.mktemp("surfaces") / "kept.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "vgg,vgg_bn", "--lrs", "0.05", "--optimizer", "sgd",
        "--momentum", "0.9", *TINY, "--data-dir", str(cifar_dir), "--no-verify",
        "--save-weights-every", "1", "--save-weights-at", "end", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def surface_cli(path, *args):
    return CliRunner().invoke(main, ["surface", str(path), *map(str, args)])


@pytest.mark.parametrize("run", ["vgg_lr0.05", "vgg_bn_lr0.05"])
def test_centre_is_the_recorded_loss_of_the_step(recorded, run):
    """With the step's batch and BN in training mode, α = 0 is exactly what training computed
    at that step: L(w_S; B_S)."""
    recorded_loss = open_record(recorded).load(run).steps.loss
    for step in (0, 2, 5):
        result = surface_cli(recorded, "--run", run, "--step", step, "--dims", 1,
                             "--points", 3, "--name", f"centre{step}")
        assert result.exit_code == 0, result.output
        surface = open_record(recorded).surfaces(run)[f"centre{step}"]
        assert surface.centre == (1,)
        np.testing.assert_allclose(surface.loss[1], recorded_loss[step], rtol=1e-6)
        assert surface.loss[0] != surface.loss[1]  # the directions move the loss


def test_update_plane_passes_through_the_neighbouring_weights(recorded):
    """α = (1, 0) along d₁ = w_{S+1} − w_S is w_{S+1}; α = (0, −1) along d₂ = w_S − w_{S−1} is
    w_{S−1}: the surface there is the loss of those kept weights on B_S."""
    run = "vgg_bn_lr0.05"
    record_surface(recorded, run, SurfaceOptions(step=3, points=3, direction="update",
                                                 bn_params="all"), name="update")
    record = open_record(recorded)
    surface = record.surfaces(run)["update"]
    options = SurfaceOptions(step=3)
    config = RecordConfig.from_dict(record.config)
    task = make_task(config, torch.device("cpu"))
    (x, y), = surface_batches(task, record, run, options, config)
    for step, index in ((4, (2, 1)), (2, (1, 0)), (3, (1, 1))):
        model, _ = load_model(record, run, step)
        model = model.to(memory_format=torch.channels_last)
        with torch.no_grad():
            expected = nn.functional.cross_entropy(model.train()(x), y).item()
        np.testing.assert_allclose(surface.loss[index], expected, rtol=1e-5, err_msg=str(step))


def test_filter_normalization_filter_by_filter():
    torch.manual_seed(0)
    model = build_model("vgg_bn", width=0.25)
    params = dict(model.named_parameters())
    for bn_params in ("ignore", "filter"):
        (d,) = random_directions(params, 1, seed=3, bn_params=bn_params)
        for name, w in params.items():
            if w.dim() > 1:
                for i in range(len(w)):  # each output channel / unit
                    np.testing.assert_allclose(d[name][i].norm().item(), w[i].norm().item(),
                                               rtol=1e-5, err_msg=f"{name}[{i}]")
            elif bn_params == "ignore":
                assert torch.count_nonzero(d[name]) == 0, name
            else:
                np.testing.assert_allclose(d[name].norm().item(), w.norm().item(), rtol=1e-5)
                if w.norm() > 0:  # (a zero bias gets a zero direction: its norm is 0)
                    assert not torch.allclose(d[name], w)  # random, not w itself
    again = random_directions(params, 2, seed=3)
    assert all(torch.equal(again[0][n], random_directions(params, 1, seed=3)[0][n])
               for n in params)
    assert not torch.equal(again[0]["features.stage1.conv1.weight"],
                           again[1]["features.stage1.conv1.weight"])


@pytest.mark.parametrize("model_name, bn, batched", [
    ("vgg_bn", "train", True), ("vgg_bn", "eval", True), ("cnn3", "train", True),
    ("vgg_light_noisy_bn", "train", True),
    # ℓ2 normalization updates its running statistics in place: vmap cannot, and the
    # evaluator falls back to one weight set at a time.
    ("vgg_light_l2", "train", False)])
def test_batched_evaluation_equals_one_by_one(embedded, model_name, bn, batched, one_thread):
    """vmap over 5 weight sets per pass gives the loss and accuracy of evaluating them one at
    a time (BN in training mode, in eval mode, a network with dropout and one with Algorithm
    1's noise: every grid point sees the same random draws)."""
    torch.manual_seed(1)
    model = build_model(model_name, width=0.125) if model_name == "vgg_bn" else \
        build_model(model_name)
    model.train()
    for _ in range(2):  # running statistics that are not the initial ones
        model(torch.randn(16, 3, 32, 32))
    x = (torch.from_numpy(embedded.train_x[:48]).float() - 127.5) / 127.5
    y = torch.from_numpy(embedded.train_y[:48]).long()
    directions = random_directions(dict(model.named_parameters()), 2, seed=0)
    alpha = coordinates(5, -1, 1)
    coefficients = grid_coefficients(alpha, np.nonzero(np.ones((5, 5), dtype=bool)))
    results = {}
    for chunk in (1, 5):
        evaluator = GridEvaluator(model, [(x[:32], y[:32]), (x[32:], y[32:])], directions,
                                  objective=nn.functional.cross_entropy,
                                  correct_fn=lambda out, t: (out.argmax(1) == t).sum(),
                                  bn=bn, seed=7, chunk=chunk)
        results[chunk] = evaluator(coefficients)
        assert evaluator.vectorized == (chunk > 1 and batched)  # vmap really ran
    np.testing.assert_allclose(results[5][0], results[1][0], rtol=1e-5)
    np.testing.assert_array_equal(results[5][1], results[1][1])
    assert len(set(results[1][0].tolist())) > 20  # the grid points differ


def test_linear_model_surface_is_the_closed_form_quadratic():
    """For f(x) = Wx + b with the mean squared error, L(W + αD) = L(W) + α·2⟨r, Dx⟩/n +
    α²‖Dx‖²/n (r = Wx + b − y, n the number of entries), computed here in float64."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    x, y = torch.randn(40, 6), torch.randn(40, 3)
    surface = loss_surface(model, x, y, dims=1, points=11, low=-2, high=3, seed=4,
                           loss_fn=nn.functional.mse_loss, correct_fn=None)
    (d,) = surface.directions
    assert torch.count_nonzero(d["bias"]) == 0  # ignored, as a 1-D parameter
    W, b = model.weight.detach().double(), model.bias.detach().double()
    D = d["weight"].double()
    r = x.double() @ W.T + b - y.double()
    dx = x.double() @ D.T
    n = r.numel()
    a = surface.alpha
    expected = (r.square().sum().item() + 2 * a * (r * dx).sum().item()
                + a ** 2 * dx.square().sum().item()) / n
    np.testing.assert_allclose(surface.loss, expected, rtol=1e-5)
    assert np.isnan(surface.accuracy).all()


def test_an_interrupted_surface_resumes_to_the_same_values(recorded):
    run = "vgg_lr0.05"
    options = SurfaceOptions(step=4, dims=2, points=4, low=-0.5, high=0.5, seed=2)
    whole = record_surface(recorded, run, options, name="whole", chunk=3)
    calls = []
    part = record_surface(recorded, run, options, name="parts", chunk=3,
                          should_stop=lambda: calls.append(1) or len(calls) >= 2)
    assert part.done.sum() == 6 and not part.complete
    assert np.isnan(part.loss[~part.done]).all()
    again = record_surface(recorded, run, options, name="parts", chunk=5)
    assert again.complete
    np.testing.assert_array_equal(again.loss, whole.loss)
    np.testing.assert_array_equal(again.accuracy, whole.accuracy)
    np.testing.assert_array_equal(again.loss[part.done], part.loss[part.done])
    with pytest.raises(RecordError, match="already has a surface 'parts' made with other "
                                          "options \\(seed 2 then, 3 now\\)"):
        record_surface(recorded, run, SurfaceOptions(step=4, dims=2, points=4, low=-0.5,
                                                     high=0.5, seed=3), name="parts")


def test_plot_draws_the_surfaces(recorded, tmp_path):
    result = surface_cli(recorded, "--run", "vgg_lr0.05", "--step", 3, "--points", 5,
                         "--name", "plane")
    assert result.exit_code == 0, result.output
    result = surface_cli(recorded, "--run", "vgg_bn_lr0.05", "--step", 3, "--points", 5,
                         "--name", "plane")
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["plot", str(recorded), "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f" / "surface_plane.png").exists()


def test_info_lists_the_surfaces_and_how_far_they_are(recorded):
    run = "vgg_lr0.05"
    options = SurfaceOptions(step=1, dims=2, points=3, seed=5)
    calls = []
    record_surface(recorded, run, options, name="half", chunk=4,
                   should_stop=lambda: calls.append(1) or len(calls) >= 1)
    result = CliRunner().invoke(main, ["info", str(recorded)])
    assert result.exit_code == 0, result.output
    assert "Loss surfaces:" in result.output
    line = next(l for l in result.output.splitlines() if " half " in l)
    assert line.split()[:4] == [run, "half", "1", "2D"]
    assert line.split()[-1] == "4/9"  # one chunk of 4 of the 3 x 3 points, then stopped


def test_a_killed_surface_keeps_its_points(tmp_path, one_thread):
    """SIGKILL during `landscape surface` (issue 30): the points computed before the last
    flush interval are kept beside the record (RECORD.h5.surface-ckpt), the same command
    continues from them, and the surface equals one never interrupted."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from landscape.surfaces.checkpoint import checkpoint_path

    killed = tmp_path / "killed.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "lenet5", "--dataset", "mnist", "--lrs", "0.01", "--batch-size",
        "16", "--width", "0.125", "--max-steps", "1", "--device", "cpu", "--save-weights-at",
        "0", "--flush-seconds", "0.2", "-o", str(killed)])
    assert result.exit_code == 0, result.output
    whole = tmp_path / "whole.h5"
    shutil.copyfile(killed, whole)
    options = SurfaceOptions(step=0, dims=1, points=301, batch="images", images=16)
    args = ["--run", "lenet5_lr0.01", "--step", "0", "--dims", "1", "--points", "301",
            "--batch", "images", "--images", "16", "--chunk", "1", "--device", "cpu"]
    process = subprocess.Popen([sys.executable, "-m", "landscape", "surface", str(killed),
                                *args], env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not checkpoint_path(killed).exists():
            assert process.poll() is None and time.monotonic() < deadline, \
                "the surface ended before it kept a point"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert open_record(killed).surfaces("lenet5_lr0.01") == {}  # the copy went with the kill
    with np.load(checkpoint_path(killed)) as kept:
        kept_points = int(kept["done"].sum())
    assert 0 < kept_points < 301
    starts = []
    resumed = record_surface(killed, "lenet5_lr0.01", options, chunk=1,
                             progress=lambda done, total: starts.append(done))
    assert starts[0] >= kept_points and resumed.done.all()
    assert not checkpoint_path(killed).exists()
    reference = record_surface(whole, "lenet5_lr0.01", options, chunk=1)
    np.testing.assert_array_equal(resumed.loss, reference.loss)
    np.testing.assert_array_equal(resumed.accuracy, reference.accuracy)
