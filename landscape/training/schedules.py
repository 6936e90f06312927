"""Learning-rate schedules: the learning rate of every step as a pure function of the step.

The training loop sets `learning_rate(config, base_lr, step, ...)` on the optimizer before each
step, so a resumed run, a probed run and an unprobed run all see the same sequence, and the
recorded `steps/lr` is that sequence. Epoch-based boundaries are converted to steps with the
run's `steps_per_epoch` (the number of batches per epoch).
"""

from __future__ import annotations

import math
from typing import Protocol


class ScheduleOptions(Protocol):
    """The fields a schedule reads (those of OptimConfig, `RecordConfig.optim`)."""

    schedule: str
    lr_min: float
    lr_gamma: float
    lr_step_epochs: int | None
    lr_milestones: tuple[int, ...]
    cycle_steps: int | None


def learning_rate(config: ScheduleOptions, base_lr: float, step: int, steps_per_epoch: int,
                  total_steps: int) -> float:
    """The learning rate of step `step` (0-based) of a run of `total_steps` steps.

    - constant: `base_lr` at every step.
    - step: `base_lr · gamma^k` with k = ⌊step / (lr_step_epochs · steps_per_epoch)⌋.
    - multistep: `base_lr · gamma^k` with k the number of milestones m (epochs) with
      step ≥ m · steps_per_epoch.
    - cosine: `lr_min + (base_lr − lr_min) · (1 + cos(π · step / total_steps)) / 2`: `base_lr`
      at step 0, annealed towards `lr_min`, which step `total_steps` would reach (as torch's
      CosineAnnealingLR with T_max = total_steps), so no step of the run has lr_min exactly.
    - cyclic: triangular, starting at `lr_min`, rising linearly to `base_lr` at step
      `cycle_steps`, falling back to `lr_min` at step 2·`cycle_steps`, and so on (torch's
      CyclicLR in "triangular" mode, per step).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    kind = config.schedule
    if kind == "constant":
        return base_lr
    if kind == "step":
        k = step // (config.lr_step_epochs * steps_per_epoch)
        return base_lr * config.lr_gamma ** k
    if kind == "multistep":
        k = sum(step >= m * steps_per_epoch for m in config.lr_milestones)
        return base_lr * config.lr_gamma ** k
    if kind == "cosine":
        return config.lr_min + (base_lr - config.lr_min) * (
            1 + math.cos(math.pi * step / total_steps)) / 2
    if kind == "cyclic":
        half = config.cycle_steps
        position = step % (2 * half)
        rise = position if position <= half else 2 * half - position  # 0 .. half
        return config.lr_min + (base_lr - config.lr_min) * rise / half
    raise ValueError(f"unknown schedule {kind!r}")
