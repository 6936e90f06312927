"""Faster grid points without other values: several weight sets at once on CPU threads (equal
to one at a time to float32 rounding, never for a model that draws random numbers, chosen by
measuring), the memory format the run trained in, and torch.compile."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from landscape.cli import main
from landscape.models import build_model
from landscape.surfaces import GridEvaluator, loss_surface, random_directions
from landscape.surfaces import from_record
from landscape.surfaces.grid import coordinates, grid_coefficients
from landscape.surfaces.speed import cpu_workers, draws_random_numbers, intra_op_threads


def images(embedded, n=48):
    x = (torch.from_numpy(embedded.train_x[:n]).float() - 127.5) / 127.5
    return x, torch.from_numpy(embedded.train_y[:n]).long()


def grid(points=4):
    alpha = coordinates(points, -1, 1)
    return grid_coefficients(alpha, np.nonzero(np.ones((points, points), dtype=bool)))


@pytest.mark.parametrize("bn", ["train", "eval"])
def test_points_on_threads_equal_points_one_at_a_time(embedded, bn):
    """Two threads (each its own copy of the model) give each grid point the loss and
    accuracy one thread gives it, in the grid's order, with an ℓ2 penalty."""
    torch.manual_seed(1)
    model = build_model("vgg_light_bn", width=0.5).train()
    model(torch.randn(16, 3, 32, 32))  # running statistics that are not the initial ones
    x, y = images(embedded)
    directions = random_directions(dict(model.named_parameters()), 2, seed=0)
    penalty = lambda params: 1e-3 * sum((w ** 2).sum() for w in params.values())  # noqa: E731
    results = {}
    with intra_op_threads(2):
        for workers in (1, 2):
            evaluator = GridEvaluator(model, [(x[:32], y[:32]), (x[32:], y[32:])], directions,
                                      objective=nn.functional.cross_entropy,
                                      correct_fn=lambda out, t: (out.argmax(1) == t).sum(),
                                      penalty=penalty, bn=bn, workers=workers)
            assert (evaluator.workers, evaluator.chunk, evaluator.vectorized) == \
                (workers, workers, False)
            results[workers] = evaluator(grid())
    np.testing.assert_allclose(results[2][0], results[1][0], rtol=1e-6)
    np.testing.assert_array_equal(results[2][1], results[1][1])
    assert len(set(results[1][0].tolist())) == 16  # every grid point its own value


def test_a_model_that_draws_random_numbers_is_evaluated_one_point_at_a_time(embedded):
    x, _ = images(embedded, 8)
    noisy = build_model("vgg_light_noisy_bn").train()
    plain = build_model("vgg_light_bn").eval()
    assert draws_random_numbers(noisy, x) and not draws_random_numbers(plain, x)
    with intra_op_threads(2):
        assert cpu_workers(noisy, [(x, None)]) == 1
        assert cpu_workers(plain, [(x, None)]) in (1, 2)  # measured: either may win here
    with intra_op_threads(1):
        assert cpu_workers(plain, [(x, None)]) == 1  # one thread: nothing to spread over


def test_compiled_points_equal_eager_ones(embedded, one_thread):
    torch.manual_seed(2)
    model = build_model("lenet_bn").train()
    x, y = images(embedded, 32)
    eager = loss_surface(model, x, y, dims=1, points=5, workers=1)
    compiled = loss_surface(model, x, y, dims=1, points=5, compile=True)
    np.testing.assert_allclose(compiled.loss, eager.loss, rtol=1e-5)


def test_a_record_surface_runs_in_the_memory_format_the_run_trained_in(tmp_path, cifar_dir,
                                                                         monkeypatch,
                                                                         one_thread):
    from conftest import TINY
    monkeypatch.setenv("LANDSCAPE_MEMORY_FORMAT", "contiguous")
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(main, [
        "record", "--model", "vgg_bn", "--lrs", "0.05", "--optimizer", "sgd", *TINY,
        "--max-steps", "2", "--data-dir", str(cifar_dir), "--no-verify",
        "--save-weights-at", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    seen = []
    original = from_record.GridEvaluator

    def spy(model, batches, *args, **kwargs):
        seen.append((next(p for p in model.parameters() if p.dim() == 4), batches[0][0]))
        return original(model, batches, *args, **kwargs)

    monkeypatch.setattr(from_record, "GridEvaluator", spy)
    result = CliRunner().invoke(main, ["surface", str(out), "--run", "vgg_bn_lr0.05", "--step",
                                       "1", "--dims", "1", "--points", "3"])
    assert result.exit_code == 0, result.output
    weight, x = seen[0]
    # Trained NCHW (the measured choice forced here): the surface's weights and batch too,
    # where the task's default would have been channels-last.
    assert not weight.is_contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous(memory_format=torch.channels_last)
