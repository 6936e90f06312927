"""The models a record kept: a run's network rebuilt with the weights it saved at a step
(`landscape record --save-weights-every/--save-weights-at`), for loss surfaces and pruning."""

from __future__ import annotations

import torch
from torch import nn

from landscape.config import record_config
from landscape.errors import RecordError
from landscape.sweep.init_from import kept_step  # noqa: F401 (re-exported)
from landscape.sweep.init_from import state_mismatch
from landscape.models import build_model
from landscape.store import Record
from landscape.sweep.plans import model_options


def load_model(record: Record, run_id: str, step: int | None = None,
               device: str | torch.device = "cpu") -> tuple[nn.Module, int]:
    """Run `run_id`'s model with the weights it kept at `step` (None: the last ones kept), on
    `device`, in training mode, and the step they are from. Raises RecordError (one line) when
    the run kept no weights there."""
    saved = record.weights(run_id, step)
    config = record_config(record)
    model_name = record.runs[run_id].model
    model = build_model(model_name, **model_options(config))
    what = state_mismatch(saved.state, model.state_dict())
    if what is not None:  # a damaged record, or one whose configuration was edited
        raise RecordError(f"{record.path} is damaged: the weights run {run_id!r} kept at step "
                          f"{saved.step} do not fit its model {model_name!r} ({what})")
    model.load_state_dict({k: torch.from_numpy(v) if v.ndim else torch.tensor(v)
                           for k, v in saved.state.items()})
    return model.to(device), saved.step

