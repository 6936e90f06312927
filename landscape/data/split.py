"""Seeded, stratified splits of a labelled set (used for the embedded subset's held-out images
and for validation splits); a module of its own so that both can import it."""

from __future__ import annotations

import numpy as np


def stratified_split(
    labels: np.ndarray, held_out_fraction: float, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out), holding out round(fraction * count) of every class, sorted."""
    rng = np.random.default_rng(seed)
    held_out = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        held_out.append(rng.choice(members, size=round(held_out_fraction * len(members)),
                                   replace=False))
    test_idx = np.sort(np.concatenate(held_out))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx
