"""The models a record kept: a run's network rebuilt with the weights it saved at a step
(`landscape record --save-weights-every/--save-weights-at`), for loss surfaces and pruning."""

from __future__ import annotations

import torch
from torch import nn

from landscape.config import stored_config
from landscape.errors import RecordError
from landscape.instrument.user_run import check_rebuildable
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
    check_rebuildable(record.config, record.path, "load its kept weights into it")
    saved = record.weights(run_id, step)
    info = record.runs[run_id]
    built_with = info.attrs.get("build_options")
    if isinstance(built_with, dict):  # the options it was built with, the data's included
        model = build_model(info.model, **built_with)
    else:  # a record from before runs stored them: the run's options, 10 classes
        config = stored_config(info.config, record.path, f"the configuration of run {run_id!r}")
        model = build_model(info.model, **model_options(config))
    what = state_mismatch(saved.state, model.state_dict())
    if what is not None:  # a damaged record, or one whose configuration was edited
        raise RecordError(f"{record.path} is damaged: the weights run {run_id!r} kept at step "
                          f"{saved.step} do not fit its model {info.model!r} ({what})")
    model.load_state_dict({k: torch.from_numpy(v) if v.ndim else torch.tensor(v)
                           for k, v in saved.state.items()})
    return model.to(device), saved.step

