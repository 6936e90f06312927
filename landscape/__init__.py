"""landscape: how BatchNorm changes the optimization landscape (Santurkar et al., NeurIPS 2018).

The Python API mirrors the command line:

    import landscape
    config = landscape.RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 5e-4), max_steps=50)
    landscape.record(config, "record.h5")          # landscape record
    landscape.resume("record.h5", executor=landscape.RayExecutor())  # --resume --executor ray
    rec = landscape.open_record("record.h5")        # landscape info
    rec.load("vgg_bn_lr0.001").steps.loss           # numpy arrays

Your own model, data and loop (docs/your-model.md):

    with landscape.Recorder("mine.h5", model, optimizer, run_id="net_bn",
                            probe=landscape.ProbeConfig(every=10)) as rec:
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            rec.step((x, y), loss)      # after backward, before the optimizer's step
            optimizer.step()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from landscape.errors import ConfigError, DataError, InstrumentError, LandscapeError, RecordError
from landscape.version import __version__

# The public names below are imported on first use (PEP 562): importing torch takes seconds,
# and commands that only read a record (`landscape info`, `--version`) never need it.
_LAZY = {
    "ProbeConfig": "landscape.config",
    "RecordConfig": "landscape.config",
    "RecordingConfig": "landscape.config",
    "HessianConfig": "landscape.config",
    "Recorder": "landscape.instrument",
    "load_dataset": "landscape.data",
    "build_model": "landscape.models",
    "open_record": "landscape.store",
    "LocalExecutor": "landscape.sweep",
    "RayExecutor": "landscape.sweep",
    "RayOptions": "landscape.sweep",
    "record": "landscape.sweep",
    "resume": "landscape.sweep",
}

if TYPE_CHECKING:  # for type checkers and editors, which do not run __getattr__
    from landscape.config import HessianConfig, ProbeConfig, RecordConfig, RecordingConfig
    from landscape.instrument import Recorder
    from landscape.data import load_dataset
    from landscape.models import build_model
    from landscape.store import open_record
    from landscape.sweep import LocalExecutor, RayExecutor, RayOptions, record, resume

__all__ = [
    "ConfigError", "DataError", "HessianConfig", "InstrumentError", "LandscapeError",
    "LocalExecutor", "ProbeConfig", "RayExecutor", "RayOptions", "RecordConfig", "RecordError",
    "Recorder", "RecordingConfig", "__version__", "build_model", "load_dataset", "open_record",
    "record", "resume",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'landscape' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
