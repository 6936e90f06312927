"""The training losses of image classification, each torch's own function.

- "cross_entropy": `F.cross_entropy` (with label smoothing, if asked);
- "nll": `F.nll_loss` of `F.log_softmax`: the same number as cross-entropy, computed the way
  the reports' code does (a model ending in log-softmax and an NLL criterion);
- "mse": `F.mse_loss` of the logits to one-hot targets, the mean over every (image, class)
  entry (torch's `nn.MSELoss()` default).

`training_loss` is what a run minimizes, records and probes; `summed_loss` the plain (never
smoothed) loss summed over a batch, for held-out and validation means.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from landscape.errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES = ("cross_entropy", "nll", "mse")


def nll_of_log_softmax(logits: torch.Tensor, y: torch.Tensor, *,
                       reduction: str = "mean") -> torch.Tensor:
    return F.nll_loss(F.log_softmax(logits, dim=1), y, reduction=reduction)


def mse_one_hot(logits: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean"
                ) -> torch.Tensor:
    """Squared error of logits [B, C] to the one-hot rows of labels y [B]."""
    target = F.one_hot(y, num_classes=logits.shape[1]).to(logits.dtype)
    return F.mse_loss(logits, target, reduction=reduction)


def _check(name: str) -> None:
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}",
                          field="optim.loss")


def training_loss(name: str = "cross_entropy", *, label_smoothing: float = 0.0) -> LossFn:
    """The mean loss of a batch that a run trains on."""
    _check(name)
    if name == "cross_entropy":
        return (partial(F.cross_entropy, label_smoothing=label_smoothing) if label_smoothing
                else F.cross_entropy)
    if label_smoothing:
        raise ConfigError(f"label smoothing applies to the cross-entropy loss, not {name}",
                          field="optim.label_smoothing")
    return nll_of_log_softmax if name == "nll" else mse_one_hot


def summed_loss(name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The batch's loss summed over its images (divided by the image count it is the mean
    `training_loss(name)` gives without smoothing): for held-out and validation means."""
    _check(name)
    if name == "mse":  # the mean runs over the classes too: per image, the sum over C / C
        return mse_one_hot(logits, y, reduction="sum") / logits.shape[1]
    if name == "nll":
        return nll_of_log_softmax(logits, y, reduction="sum")
    return F.cross_entropy(logits, y, reduction="sum")
