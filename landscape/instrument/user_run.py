"""A run of a user's own loop in the record format: its identity (family, normalization, model
name), its layout, the record's header (what `landscape info` and the reports read), and the
checks before a run joins a record."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from landscape.config.recording import RecordingConfig
from landscape.errors import ConfigError, RecordError
from landscape.instrument.layout import check_taps, detect_norm, parameter_shapes, resolve_taps
from landscape.probes import layer_indices, select_parameters, weight_entries
from landscape.store import RECORDER_SOURCE, RunLayout
# Run ids name HDF5 groups and figure files: letters, digits and a few separators.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+:-]{0,127}")
_NORM = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is: `family` (the network without its normalization) and `norm` (its kind,
    "none" for none) pair it with the others for the verdicts, as `model` = family or
    family_norm groups it with its seeds and learning rates."""

    run_id: str
    family: str
    norm: str
    seed: int

    @property
    def model(self) -> str:
        return self.family if self.norm == "none" else f"{self.family}_{self.norm}"


def run_identity(run_id: Any, model: nn.Module, *, norm: Any = "auto", family: Any = None,
                 seed: Any = 0) -> RunIdentity:
    """The identity a Recorder gives its run, checked: `norm` "auto" reads the kind from the
    model's layers (BatchNorm "bn", GroupNorm "gn", LayerNorm "ln", InstanceNorm "in", none
    "none"); None means "none"; `family` defaults to `run_id` without a trailing "_<norm>"."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ConfigError(f"run_id must be a name of letters, digits and _ . = + : - (at most "
                          f"128, starting with a letter or digit), got {run_id!r}")
    if norm == "auto":
        norm = detect_norm(model)
    norm = "none" if norm is None else norm
    if not isinstance(norm, str) or not _NORM.fullmatch(norm):
        raise ConfigError(f"norm names the run's normalization (e.g. 'bn', 'gn', 'ln', None "
                          f"for none, 'auto' to read it from the model), got {norm!r}")
    if family is None:
        family = run_id.removesuffix(f"_{norm}") if norm != "none" else run_id
        family = family or run_id
    if not isinstance(family, str) or not _RUN_ID.fullmatch(family):
        raise ConfigError(f"family names the network without its normalization (e.g. "
                          f"'mixer' for runs 'mixer' and 'mixer_bn'), got {family!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed is the seed your run was started with (an integer >= 0), "
                          f"got {seed!r}")
    return RunIdentity(run_id, family, norm, int(seed))


def probe_direction(recording: RecordingConfig, optimizer: torch.optim.Optimizer) -> str:
    """The probe's direction: "auto" is the gradient for plain SGD (no momentum, no weight
    decay, no Nesterov: the update is −lr·g_t, the paper's setting) and the update the
    optimizer takes for every other optimizer (docs/measurements.md, section 5)."""
    direction = recording.probe.direction
    if direction != "auto":
        return direction
    group = optimizer.param_groups[0]
    plain = (type(optimizer) is torch.optim.SGD and not group.get("momentum")
             and not group.get("weight_decay") and not group.get("nesterov")
             and not group.get("maximize"))
    return "gradient" if plain else "update"


def check_recording(recording: RecordingConfig, model: nn.Module, name: str) -> tuple[str, ...]:
    """Check what `recording` asks of `model` before anything is written; the resolved taps."""
    recording.validate()
    if recording.keep_best:
        raise ConfigError("keep_best keeps the weights at each new best validation accuracy "
                          "of landscape record's own loop; in your loop, keep them with "
                          "save_weights_at or save_weights_every")
    shapes = parameter_shapes(model)
    taps = resolve_taps(recording.taps, model, name) if recording.taps else ()
    check_taps(taps, shapes, name)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for layer in recording.ics_layers if recording.ics_every else ():
        layer_indices(names, layer)
    if recording.probe.every:
        select_parameters(names, recording.probe.params)
    return taps


def run_layout(identity: RunIdentity, model: nn.Module, optimizer: torch.optim.Optimizer, *,
               recording: RecordingConfig, taps: tuple[str, ...], activations: Mapping[str, int],
               index: int, run_config: Mapping[str, Any]) -> RunLayout:
    """What the run will hold, as `landscape record`'s runs do (docs/schema.md)."""
    shapes = parameter_shapes(model)
    probed = bool(recording.probe.every)
    return RunLayout(
        run_id=identity.run_id,
        attrs={
            "model": identity.model,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "optimizer": type(optimizer).__name__.lower(),
            "seed": identity.seed,
            "index": index,
            "parameter_count": int(sum(math.prod(s) for s in shapes.values())),
            **({"probe_direction": run_config["probe"]["direction"],
                "probe_dtype": recording.probe.dtype} if probed else {}),
            "factors": {},
            "config": dict(run_config),
            "family": identity.family,
            "norm": identity.norm,
            "source": RECORDER_SOURCE,
        },
        taps={t: shapes[t] for t in taps},
        tap_dtype=recording.tap_dtype,
        n_eta=recording.probe.count if probed else 0,
        ics_layers=recording.ics_layers if recording.ics_every else (),
        activations=dict(activations),
        weights=weight_entries(model) if recording.saves_weights else {},
        hessian_k=recording.hessian.k if recording.hessian.every else 0,
        hessian_density_nodes=(recording.hessian.density_iters
                               * recording.hessian.density_vectors
                               if recording.hessian.density_at else 0),
    )


def run_config(identity: RunIdentity, optimizer: torch.optim.Optimizer, *,
               recording: RecordingConfig, direction: str, batch_size: int, loss: str,
               data: str, probe_bn: str, device: str, precision: str) -> dict[str, Any]:
    """The run's configuration, in the keys of `landscape record`'s where they mean the same
    (models, lrs, seeds, optimizer, batch_size, the recording options), and what only a user's
    loop has (its loss, its data, the optimizer's hyper-parameters)."""
    group = optimizer.param_groups[0]
    hyper = {k: _plain(v) for k, v in group.items() if k != "params" and _plain(v) is not None}
    recorded = asdict(recording)
    recorded["probe"] = {**recorded["probe"], "direction": direction, "bn": probe_bn}
    return json.loads(json.dumps({  # as the record stores it (lists, not tuples)
        "source": RECORDER_SOURCE,
        "models": [identity.model],
        "lrs": [float(group["lr"])],
        "seeds": [identity.seed],
        "optimizer": type(optimizer).__name__.lower(),
        "optimizer_options": hyper,
        "schedule": "your loop's",  # the learning rate each step used is in its row
        "batch_size": batch_size,
        "loss": loss,
        "dataset": data,
        "max_steps": None,
        "epochs": None,
        "eval_every": None,
        "axes": {},
        "device": device,
        "precision": precision,
        **recorded,
    }))


def record_header(runs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The record's configuration: its runs' (in order) merged, every list the union of theirs
    and every other key the first run's where they all agree (None where they differ)."""
    header: dict[str, Any] = {}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        if key in ("models", "lrs", "seeds"):
            header[key] = list(dict.fromkeys(v for value in values for v in value))
        else:
            header[key] = values[0] if all(v == values[0] for v in values) else None
    header["source"] = RECORDER_SOURCE
    return header


def data_identity(data: str) -> dict[str, Any]:
    """The record's data identity for a user's data, which landscape did not load: only its
    name (what `info` and the reports print)."""
    return {"name": data, "description": f"{data} (recorded with landscape.Recorder in your "
                                         f"own loop; landscape did not load it)",
            "n_train": None, "n_test": None}


def check_joinable(path, header: Mapping[str, Any], runs: Mapping[str, Any], run_id: str,
                   resume: bool) -> None:
    """Refuse to add run `run_id` to the record at `path` (header `header`, runs `runs`) when
    it was made by `landscape record`, or when the run exists and is not being resumed (and
    the converse)."""
    if header.get("source") != RECORDER_SOURCE:
        raise RecordError(f"{path} was made by landscape record; write your loop's runs to "
                          f"another file and plot both together (landscape plot {path} "
                          f"OTHER.h5)")
    if run_id in runs and not resume:
        state = runs[run_id]
        raise RecordError(f"run {run_id!r} is already in {path} ({state.status}, "
                          f"{state.steps_done} steps): give another run_id, or resume=True to "
                          f"continue it")
    if resume and run_id not in runs:
        raise RecordError(f"resume=True continues a run of {path}, which has no run "
                          f"{run_id!r} (runs: {', '.join(runs) or 'none'})")


def _plain(value: Any) -> Any:
    """A JSON-able optimizer hyper-parameter (numbers, strings, booleans, tuples of numbers)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
        return list(value)
    return None


_IN_PYTHON = ("do it in Python with your model and the weights the run kept "
              "(docs/your-model.md, 'Loss surfaces of your model')")


def check_rebuildable(config: Mapping[str, Any], path, what: str,
                      instead: str = _IN_PYTHON) -> None:
    """Refuse, in one line, to rebuild a run of a record a user's loop wrote (`what`: what the
    command would do with the rebuilt model and data; `instead`: what to do): landscape knows
    neither."""
    if config.get("source") == RECORDER_SOURCE:
        raise RecordError(f"{path} was recorded by landscape.Recorder in your own loop: "
                          f"landscape cannot rebuild your model and data to {what}; {instead}")
