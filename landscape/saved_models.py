"""The models a record kept: a run's network rebuilt with the weights it saved at a step
(`landscape record --save-weights-every/--save-weights-at`), for loss surfaces and pruning."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from landscape.config import RecordConfig
from landscape.errors import ConfigError, RecordError
from landscape.models import build_model
from landscape.store import Record
from landscape.sweep import model_options


def load_model(record: Record, run_id: str, step: int | None = None,
               device: str | torch.device = "cpu") -> tuple[nn.Module, int]:
    """Run `run_id`'s model with the weights it kept at `step` (None: the last ones kept), on
    `device`, in training mode, and the step they are from. Raises RecordError (one line) when
    the run kept no weights there."""
    saved = record.weights(run_id, step)
    config = RecordConfig.from_dict(record.config)
    model = build_model(record.runs[run_id].model, **model_options(config))
    model.load_state_dict({k: torch.from_numpy(v) if v.ndim else torch.tensor(v)
                           for k, v in saved.state.items()})
    return model.to(device), saved.step


def kept_step(record: Record, run_id: str, which: str) -> int:
    """The step of the weights `which` names: a step number, 'final' (the last weights the run
    kept) or 'best' (those of its best validation accuracy, kept with --keep-best: the first
    evaluation that reached the highest accuracy)."""
    if run_id not in record.runs:
        raise RecordError(f"{record.path} has no run {run_id!r}; its runs: "
                          f"{', '.join(record.runs)}")
    steps = record.weight_steps(run_id)
    if which in ("final", "best") and not len(steps):
        raise ConfigError(f"--step {which}: run {run_id!r} kept no weights; record it with "
                          f"--save-weights-every N, --save-weights-at STEPS,final or --keep-best")
    if which == "final":
        return int(steps[-1])
    if which == "best":
        if not record.config.get("keep_best"):
            raise ConfigError(f"--step best: {record.path} was recorded without --keep-best")
        ev = record.load(run_id).eval
        if not len(ev.step) or not np.isfinite(ev.val_acc).any():
            raise RecordError(f"--step best: run {run_id!r} has no validation accuracy yet")
        return int(ev.step[int(np.nanargmax(ev.val_acc))])  # the first of the highest
    try:
        return int(which)
    except ValueError:
        raise ConfigError(f"--step takes a step number, 'final' or 'best', got {which!r}") \
            from None
