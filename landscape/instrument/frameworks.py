"""What the framework adapters (`landscape.lightning`, `landscape.huggingface`) share: the
Recorder's options, given before the framework has built the optimizer and checked before
training starts, and the batches and losses of one optimizer step gathered from the
framework's hooks.

An adapter is a thin layer over `landscape.Recorder`: it opens a Recorder on the framework's
model and optimizer when training starts, hands it each optimizer step's batch (or
micro-batches) and loss after the backward passes and before the gradient is clipped, and
closes it when training ends (complete) or fails (interrupted). Every measurement is the
Recorder's.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from landscape.config.recording import RecordingConfig
from landscape.errors import ConfigError
from landscape.instrument.recorder import Recorder

# What the framework supplies to the Recorder, never the user.
_SUPPLIED = ("path", "model", "optimizer", "scaler", "total_steps")


def _recorder_options() -> frozenset[str]:
    """The keyword options a Recorder takes (its own and the measurements' fields)."""
    own = [name for name, p in inspect.signature(Recorder.__init__).parameters.items()
           if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return frozenset(own) | {f for f in RecordingConfig.__dataclass_fields__}


@dataclass(frozen=True)
class RecorderSpec:
    """A Recorder to open when the framework starts training: the record's `path`, the run's
    `run_id`, the user's `loss_fn` (None: the adapter's default), the names of the held-out
    loss and accuracy the framework's evaluation reports (`held_out`, None: none recorded),
    and the Recorder's other `options`."""

    path: Path
    run_id: str
    loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None
    held_out: tuple[str, str | None] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def open(self, model: nn.Module, optimizer: torch.optim.Optimizer, *,
             loss_fn: Callable[[nn.Module, Any], torch.Tensor], scaler: Any = None,
             total_steps: int | None = None) -> Recorder:
        return Recorder(self.path, model, optimizer, run_id=self.run_id, loss_fn=loss_fn,
                        scaler=scaler, total_steps=total_steps, **self.options)


def recorder_spec(adapter: str, path: Any, run_id: Any, *, loss_fn: Any = None,
                  held_out: Any = None, options: Mapping[str, Any]) -> RecorderSpec:
    """The options of `adapter` (its name, for messages), checked by name and type before
    any training: the values the Recorder checks itself when training starts."""
    supplied = sorted(set(options) & set(_SUPPLIED))
    if supplied:
        raise ConfigError(f"{adapter} takes {supplied[0]} from the framework; do not give it")
    unknown = sorted(set(options) - _recorder_options())
    if unknown:
        valid = sorted(_recorder_options() - set(_SUPPLIED) - {"resume"})
        raise ConfigError(f"{adapter} got an unknown option {unknown[0]!r}; it takes the "
                          f"options of landscape.Recorder: {', '.join(valid)}")
    if options.get("resume"):
        raise ConfigError(f"{adapter} records a run from the start of its training: "
                          f"resume=True is for your own loop (landscape.Recorder)")
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"{adapter}: path is the record's file name, got {path!r}")
    if loss_fn is not None and not callable(loss_fn):
        raise ConfigError(f"{adapter}: loss_fn must be a function (model, batch) -> loss, "
                          f"got {type(loss_fn).__name__}")
    return RecorderSpec(Path(path), run_id, loss_fn, _held_out(adapter, held_out),
                        dict(options))


def _held_out(adapter: str, held_out: Any) -> tuple[str, str | None] | None:
    if held_out is None:
        return None
    names = (held_out,) if isinstance(held_out, str) else tuple(held_out)
    if not 1 <= len(names) <= 2 or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{adapter}: held_out names the held-out loss your evaluation "
                          f"reports, and optionally its accuracy, e.g. ('val_loss', "
                          f"'val_acc'); got {held_out!r}")
    return names[0], names[1] if len(names) == 2 else None


def held_out_values(adapter: str, held_out: tuple[str, str | None],
                    metrics: Mapping[str, Any]) -> tuple[float, float]:
    """The held-out loss and accuracy named by `held_out`, read from an evaluation's
    `metrics`; a name the evaluation did not report is refused in one line."""
    values = []
    for name in held_out:
        if name is None:
            values.append(math.nan)
            continue
        if name not in metrics:
            reported = ", ".join(sorted(metrics)) or "nothing"
            raise ConfigError(f"{adapter}: held_out names {name!r}, which the evaluation did "
                              f"not report (it reported: {reported})")
        values.append(float(metrics[name]))
    return values[0], values[1]


class StepParts:
    """The batches and losses of the optimizer step in progress, as a framework's hooks see
    them: one batch and its loss per backward pass (several when the gradient is accumulated)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.losses: list[torch.Tensor] = []

    def add_batch(self, batch: Any) -> None:
        self.batches.append(batch)

    def add_loss(self, loss: torch.Tensor) -> None:
        self.losses.append(loss.detach())

    def hand_to(self, recorder: Recorder) -> bool:
        """`recorder.step` with the step's batch (or micro-batches) and loss, the sum of the
        losses as they were backpropagated (so, a mean where each was divided by their
        number); False, and nothing handed over, when no backward pass ran (a skipped
        step)."""
        batches, losses = self.batches, self.losses
        self.batches, self.losses = [], []
        if not losses:
            return False
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        if len(batches) == 1:
            recorder.step(batches[0], total)
        else:
            recorder.step(micro_batches=batches, loss=total)
        return True
