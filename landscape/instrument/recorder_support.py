"""The pieces of `landscape.Recorder` around its run's life (recorder.py): its arguments
checked, the activation layers' channels watched at the first training pass, its progress bar,
and an evaluation batch moved to the model's device."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import torch
from torch import nn

from landscape.config.recording import RecordingConfig
from landscape.errors import ConfigError, InstrumentError
from landscape.probes.activations import find_layer

MEASUREMENTS = {f.name for f in fields(RecordingConfig)}  # the Recorder's measurement keywords
PROBE_BN_MODES = ("train", "eval")


class ChannelWatch:
    """The output channels of the layers whose activations are recorded, seen at the first
    training forward pass (the run's layout needs them before its first row)."""

    def __init__(self, model: nn.Module, recording: RecordingConfig) -> None:
        self._seen: dict[str, int] = {}
        self._handles = []
        layers = recording.activation_layers if recording.activation_every else ()
        self._layers = tuple(layers)
        for layer in layers:
            self._handles.append(find_layer(model, layer).register_forward_hook(
                self._watcher(layer)))

    def _watcher(self, layer: str):
        def hook(module, inputs, output) -> None:  # returns None: a value would replace output
            self._seen.setdefault(layer, output.shape[1])
        return hook

    def channels(self) -> dict[str, int]:
        missing = [layer for layer in self._layers if layer not in self._seen]
        if missing:
            raise InstrumentError(f"layer {missing[0]!r} did not run in the training forward "
                                  f"pass, so its activations cannot be recorded")
        self.remove()
        return {layer: self._seen[layer] for layer in self._layers}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class ProgressBar:
    """A tqdm bar for `progress=True` (the command line's progress view, in a user's loop)."""

    def __init__(self, run_id: str, total: int | None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=run_id, unit="step", dynamic_ncols=True)

    def advance(self, steps: int, *, loss: float, images_per_second: float) -> None:
        self._bar.update(steps)
        self._bar.set_postfix_str(f"loss {loss:.4g}, {images_per_second:,.0f} samples/s")

    def probing(self, name: str | None, step: int) -> None:
        if name is not None:
            self._bar.set_postfix_str(f"running {name} (step {step})")

    def close(self) -> None:
        self._bar.close()


def recording_of(recording: RecordingConfig | None, measurements: dict) -> RecordingConfig:
    """The run's RecordingConfig: `recording` with the Recorder's measurement keywords over it."""
    unknown = sorted(set(measurements) - MEASUREMENTS)
    if unknown:
        raise ConfigError(f"Recorder got an unknown option {unknown[0]!r}; measurements are "
                          f"set by: {', '.join(sorted(MEASUREMENTS))}")
    if recording is not None and not isinstance(recording, RecordingConfig):
        raise ConfigError(f"recording must be a landscape.RecordingConfig, got "
                          f"{type(recording).__name__}")
    base = asdict(recording) if recording is not None else {}
    return RecordingConfig(**{**base, **measurements})


def check_objects(model, optimizer, loss_fn, correct_fn, probe_bn, data) -> None:
    """The Recorder's arguments, each refused in one line before anything is hooked."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"optimizer must be a torch.optim.Optimizer, got "
                          f"{type(optimizer).__name__}")
    if isinstance(optimizer, torch.optim.LBFGS):
        raise InstrumentError("LBFGS steps with a closure that re-evaluates the loss at "
                              "points of its own, which the recorder cannot see; use an "
                              "optimizer that steps on the gradient of the step's batch")
    for name, fn in (("loss_fn", loss_fn), ("correct_fn", correct_fn)):
        if fn is not None and not callable(fn):
            raise ConfigError(f"{name} must be a function, got {type(fn).__name__}")
    if probe_bn not in PROBE_BN_MODES:
        raise ConfigError(f"probe_bn must be 'train' (the default: the function training "
                          f"minimizes) or 'eval' (the model's eval mode), got {probe_bn!r}")
    if not isinstance(data, str) or not data:
        raise ConfigError(f"data names your data set (a string), got {data!r}")


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch of tensors (in tuples, lists, named tuples, dicts) on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, (tuple, list)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch
