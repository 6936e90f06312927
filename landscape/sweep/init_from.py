"""Weights a record kept, named by the user: `kept_step` resolves "last", "best" or a step
number of a run (also for `kept/`: surfaces and pruning), and `InitFrom` starts the runs of a
new record from a run's kept weights
(`landscape record --init-from OTHER.h5:RUN[@STEP]`: pretrain, then continue, e.g. with
DessiLBI as the course report ran it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from landscape.errors import ConfigError, RecordError
from landscape.store import Record, open_record


def kept_step(record: Record, run_id: str, which: str, *, option: str = "--step") -> int:
    """The step of the weights `which` names: a step number, 'last' (the last weights the run
    kept; 'final', its old name, too) or 'best' (those of its best validation accuracy, kept
    with --keep-best: the first evaluation that reached the highest accuracy). `option` is named in the errors."""
    if run_id not in record.runs:
        raise RecordError(f"{record.path} has no run {run_id!r}; its runs: "
                          f"{', '.join(record.runs)}")
    steps = record.weight_steps(run_id)
    if which in ("last", "final", "best") and not len(steps):
        raise ConfigError(f"{option} {which}: run {run_id!r} kept no weights; record it with "
                          f"--save-weights-every N, --save-weights-at STEPS,end or --keep-best")
    if which in ("last", "final"):
        return int(steps[-1])
    if which == "best":
        if not record.config.get("keep_best"):
            raise ConfigError(f"{option} best: {record.path} was recorded without --keep-best")
        ev = record.load(run_id).eval
        if not len(ev.step) or not np.isfinite(ev.val_acc).any():
            raise RecordError(f"{option} best: run {run_id!r} has no validation accuracy yet")
        return int(ev.step[int(np.nanargmax(ev.val_acc))])  # the first of the highest
    try:
        return int(which)
    except ValueError:
        raise ConfigError(f"{option} takes a step number, 'last' or 'best', got {which!r}") \
            from None


@dataclass(frozen=True)
class InitFrom:
    """Where a record's runs take their initial weights: `path`'s run `run_id` at `which`
    ("last", "best" or a step number)."""

    path: str
    run_id: str
    which: str = "last"

    @classmethod
    def parse(cls, text: str) -> "InitFrom":
        """'OTHER.h5:RUN' or 'OTHER.h5:RUN@STEP' (STEP: a number, last or best)."""
        path, sep, run = text.rpartition(":")
        if not sep or not path or not run:
            raise ConfigError(f"--init-from takes RECORD.h5:RUN or RECORD.h5:RUN@STEP, got "
                              f"{text!r}", field="model.init_from")
        run_id, _, which = run.partition("@")
        return cls(path, run_id, which or "last")

    def state(self) -> tuple[dict[str, torch.Tensor], int]:
        """The kept state_dict and the step it is from."""
        if not Path(self.path).exists():
            raise ConfigError(f"--init-from: {self.path} does not exist", field="model.init_from")
        record = open_record(self.path)
        step = kept_step(record, self.run_id, self.which, option="--init-from ...@")
        saved = record.weights(self.run_id, step)
        return ({k: torch.from_numpy(np.array(v)) for k, v in saved.state.items()},
                saved.step)

    def load_into(self, model: nn.Module, model_name: str) -> int:
        """Copy the kept weights into `model` (refused unless every entry of its state_dict
        is there with its shape); the step they are from."""
        state, step = self.state()
        what = state_mismatch(state, model.state_dict())
        if what is not None:
            raise ConfigError(f"--init-from: the weights of run {self.run_id!r} of {self.path} "
                              f"do not fit model {model_name!r} ({what})",
                              field="model.init_from")
        model.load_state_dict(state)
        return step


def state_mismatch(state: Mapping[str, Any], own: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps kept weights `state` (name -> array) from loading into a model whose
    state_dict is `own` ('it lacks X', 'X is (2, 3), not (6, 1, 5, 5)', 'it has X too'), or
    None when they fit."""
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(np.shape(state[k])) != tuple(own[k].shape)]
    extra = [k for k in state if k not in own]
    if missing:
        return f"it lacks {missing[0]}"
    if wrong:
        return f"{wrong[0]} is {tuple(np.shape(state[wrong[0]]))}, not {tuple(own[wrong[0]].shape)}"
    return f"it has {extra[0]} too" if extra else None


def init_from_records(config) -> list[str]:
    """The records the runs of `config` (a RecordConfig) take their first weights from
    (--init-from, also as an axis): inputs a new record must not replace."""
    texts = [config.model.init_from, *(v for a in config.axes if a.name == "init_from"
                                       for v in a.values)]
    return [InitFrom.parse(t).path for t in texts if isinstance(t, str)]
