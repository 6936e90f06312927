"""Directions of a loss surface: random filter-normalized ones (Li et al., "Visualizing the
Loss Landscape of Neural Nets", NeurIPS 2018) and the plane of two consecutive updates.

A direction is a dict parameter name -> tensor shaped like the parameter. Buffers (BatchNorm's
running statistics) are never moved: like loss-landscape's default `dir_type='weights'`, a
surface perturbs the parameters only.
"""

from __future__ import annotations

from typing import Literal, Mapping

import torch

from landscape.errors import ConfigError

BnParams = Literal["ignore", "filter"]
BN_PARAMS = ("ignore", "filter")
# loss-landscape's guard against a zero direction filter (net_plotter.normalize_direction).
_EPS = 1e-10


def filter_normalize(d: torch.Tensor, w: torch.Tensor, *, bn_params: BnParams = "ignore"
                     ) -> torch.Tensor:
    """`d` rescaled filter by filter to the norms of `w`'s filters.

    A filter is one output channel (or output unit): `w[i]` of a conv weight [out, in, kh, kw]
    or a linear weight [out, in], so ‖d[i]‖ = ‖w[i]‖ for every i. One-dimensional parameters
    (biases, BatchNorm's γ and β) are zeroed with `bn_params="ignore"` (loss-landscape's
    default `ignore='biasbn'`), or rescaled as one filter (‖d‖ = ‖w‖) with "filter".
    loss-landscape's other choice copies w itself into d; a random vector of w's norm keeps
    the two directions of a plane independent instead.
    """
    if bn_params not in BN_PARAMS:
        raise ConfigError(f"--bn-params must be one of {', '.join(BN_PARAMS)}, got {bn_params!r}")
    if w.dim() <= 1:
        if bn_params == "ignore":
            return torch.zeros_like(d)
        return d * (torch.linalg.vector_norm(w) / (torch.linalg.vector_norm(d) + _EPS))
    shape = (-1,) + (1,) * (d.dim() - 1)
    d_norms = torch.linalg.vector_norm(d.flatten(1), dim=1)
    w_norms = torch.linalg.vector_norm(w.flatten(1), dim=1)
    return d * (w_norms / (d_norms + _EPS)).view(shape)


def random_directions(params: Mapping[str, torch.Tensor], count: int, *, seed: int,
                      bn_params: BnParams = "ignore") -> list[dict[str, torch.Tensor]]:
    """`count` random Gaussian directions, filter-normalized to `params` (see
    `filter_normalize`). Drawn on the CPU from a generator seeded with `seed`, parameter by
    parameter in order, so the same seed gives the same directions on every device."""
    generator = torch.Generator().manual_seed(seed)
    directions = []
    for _ in range(count):
        direction = {}
        for name, w in params.items():
            d = torch.randn(w.shape, generator=generator, dtype=w.dtype)
            direction[name] = filter_normalize(d.to(w.device), w.detach(),
                                               bn_params=bn_params)
        directions.append(direction)
    return directions


def update_directions(at: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor],
                      before: Mapping[str, torch.Tensor] | None = None
                      ) -> list[dict[str, torch.Tensor]]:
    """The plane of two consecutive updates around w_S (`at`): d₁ = w_{S+1} − w_S (`after`) and
    d₂ = w_S − w_{S−1} (`before`); with `before` None only d₁ (a 1D surface). Not normalized:
    α = 1 along d₁ is w_{S+1} itself and α = −1 along d₂ is w_{S−1}."""
    directions = [{n: after[n] - w for n, w in at.items()}]
    if before is not None:
        directions.append({n: w - before[n] for n, w in at.items()})
    return directions
