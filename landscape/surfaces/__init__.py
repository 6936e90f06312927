"""Loss surfaces around a model's weights (Li et al. 2018): the loss at w + α·d₁ (+ β·d₂) on a
grid, along random filter-normalized directions or the plane of two consecutive updates.

- `loss_surface(model, x, y, ...)`: a surface of any model on given data (no record needed);
- `landscape.surfaces.from_record.record_surface`: a surface around the weights a record kept
  at a step, stored in that record (what `landscape surface` runs);
- `directions`: filter normalization and update directions; `evaluate`: the batched (vmap)
  evaluation of many weight sets per forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from landscape.surfaces.directions import (BN_PARAMS, BnParams, filter_normalize,
                                           random_directions, update_directions)
from landscape.surfaces.evaluate import BN_MODES, BnMode, Direction, GridEvaluator
from landscape.surfaces.grid import check_grid, coordinates, grid_coefficients
from landscape.training.loop_settings import classification_correct


@dataclass(frozen=True)
class Surface:
    alpha: np.ndarray  # float64 [P], the coordinates along every axis
    loss: np.ndarray  # float64 [P] or [P, P]; loss[i, j] at w + alpha[i]·d₁ + alpha[j]·d₂
    accuracy: np.ndarray  # the same shape (NaN without `correct_fn`)
    directions: list[Direction]
    vectorized: bool  # whether the points went through batched (vmap) passes
    points_at_once: int = 1  # per batched pass, or (not vectorized) on CPU threads


def loss_surface(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, dims: int = 2,
                 points: int = 21, low: float = -1.0, high: float = 1.0, seed: int = 0,
                 bn_params: BnParams = "ignore", bn: BnMode = "train",
                 directions: Sequence[Direction] | None = None,
                 loss_fn: Callable = nn.functional.cross_entropy,
                 correct_fn: Callable | None = classification_correct,
                 batch_size: int | None = None, chunk: int | None = None,
                 workers: int | None = None, compile: bool = False,
                 progress: Callable[[int], None] | None = None) -> Surface:
    """The loss of `model` on (x, y) over a `points`-per-axis grid of α in [low, high] in
    `dims` (1 or 2) dimensions around its weights.

    Directions: random filter-normalized ones drawn with `seed` (`bn_params`: what happens to
    the one-dimensional parameters, see `filter_normalize`), or `directions` given (dicts
    parameter name -> tensor, e.g. `update_directions(...)`). `bn` "train" normalizes with the
    statistics of each batch (of `batch_size` images, default all of x at once), "eval" with
    the model's running statistics. `model` is left unchanged. `progress(n)` is called after
    every n points. `chunk`, `workers`, `compile`: how the points are evaluated (the same
    values to float32 rounding; see `GridEvaluator`).
    """
    check_grid(dims, points, low, high)
    params = {n: p.detach() for n, p in model.named_parameters()}
    if directions is None:
        directions = random_directions(params, dims, seed=seed, bn_params=bn_params)
    elif len(directions) != dims:
        raise ValueError(f"{len(directions)} directions given for a {dims}-D surface")
    size = batch_size or len(y)
    batches = [(x[i:i + size], y[i:i + size]) for i in range(0, len(y), size)]
    evaluator = GridEvaluator(model, batches, directions, objective=loss_fn,
                              correct_fn=correct_fn, bn=bn, seed=seed, chunk=chunk,
                              workers=workers, compile=compile)
    alpha = coordinates(points, low, high)
    shape = (points,) * dims
    loss = np.full(shape, np.nan)
    accuracy = np.full(shape, np.nan)
    todo = np.nonzero(np.ones(shape, dtype=bool))
    for start in range(0, len(todo[0]), evaluator.chunk):
        index = tuple(i[start:start + evaluator.chunk] for i in todo)
        values, right = evaluator(grid_coefficients(alpha, index))
        loss[index], accuracy[index] = values.numpy(), right.numpy()
        if progress is not None:
            progress(len(index[0]))
    return Surface(alpha, loss, accuracy, list(directions), evaluator.vectorized,
                   evaluator.chunk)


__all__ = ["BN_MODES", "BN_PARAMS", "Surface", "filter_normalize", "loss_surface",
           "random_directions", "update_directions", "GridEvaluator"]
