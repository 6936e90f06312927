"""Synthetic data for the deep linear network: x ~ N(0, I), targets A x with A fixed and random.

Santurkar et al. (Appendix A): 1000 Gaussian samples, targets from a matrix A with i.i.d.
Gaussian entries, full-batch gradient descent. A held-out set of the same size, drawn with the
same A, gives the evaluation loss.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from landscape.data.images import DataIdentity
from landscape.errors import ConfigError


@dataclass(frozen=True)
class RegressionData:
    train_x: np.ndarray  # float32 [N, dim]
    train_y: np.ndarray  # float32 [N, dim] = train_x Aᵀ
    test_x: np.ndarray
    test_y: np.ndarray
    a: np.ndarray  # float32 [dim, dim]
    identity: DataIdentity


def make_linear_regression(*, n_train: int = 1000, n_test: int = 1000, dim: int = 10,
                           seed: int = 0) -> RegressionData:
    """x ~ N(0, I_dim), A_ij ~ N(0, 1), y = A x; everything from one seeded generator."""
    if n_train < 1 or n_test < 1 or dim < 1:
        raise ConfigError(f"invalid sizes n_train={n_train}, n_test={n_test}, dim={dim}")
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim)).astype(np.float32)
    train_x = rng.normal(size=(n_train, dim)).astype(np.float32)
    test_x = rng.normal(size=(n_test, dim)).astype(np.float32)
    train_y, test_y = train_x @ a.T, test_x @ a.T

    def digest(*arrays: np.ndarray) -> str:
        h = hashlib.sha256()
        for arr in arrays:
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    identity = DataIdentity(
        name="gaussian-linear",
        source=f"synthetic (seed {seed})",
        train_split=f"{n_train} samples x ~ N(0, I_{dim}), y = A x",
        test_split=f"{n_test} further samples with the same A",
        n_train=n_train,
        n_test=n_test,
        train_sha256=digest(train_x, train_y),
        test_sha256=digest(test_x, test_y),
        md5_verified=False,
        num_classes=0,  # regression: no classes
        note=f"Synthetic linear-regression data of the paper's deep linear network "
             f"experiment; A has i.i.d. N(0, 1) entries ({dim}x{dim}).",
    )
    return RegressionData(train_x, train_y, test_x, test_y, a, identity)


class VectorStream:
    """Seeded minibatches of (x, y) float tensors on the device; a batch as large as the data
    is full-batch gradient descent (every step sees all samples, in a fixed order)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int,
                 device: torch.device) -> None:
        if batch_size > len(x):
            raise ConfigError(f"batch size {batch_size} is larger than the {len(x)} samples")
        self.x = torch.from_numpy(x).to(device)
        self.y = torch.from_numpy(y).to(device)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch_start = self.generator.get_state()
        self._consumed = 0
        self._skip = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.x) // self.batch_size

    def state(self) -> dict:
        """Generator state at the start of the current epoch and the batches taken from it."""
        return {"generator": self._epoch_start.clone(), "consumed": self._consumed}

    def restore(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._skip = state["consumed"]

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            self._epoch_start = self.generator.get_state()
            skip, self._skip = self._skip, 0
            if self.batch_size == len(self.x):
                order = None  # full batch: every step sees all samples, nothing to draw
            else:
                order = torch.randperm(len(self.x), generator=self.generator).to(self.x.device)
            for i in range(skip, self.steps_per_epoch):
                self._consumed = i + 1
                if order is None:
                    yield self.x, self.y
                else:
                    idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                    yield self.x[idx], self.y[idx]
