"""landscape: how BatchNorm changes the optimization landscape (Santurkar et al., NeurIPS 2018).

The Python API mirrors the command line:

    import landscape
    config = landscape.RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 5e-4), max_steps=50)
    landscape.record(config, "record.h5")          # landscape record
    landscape.resume("record.h5", executor=landscape.RayExecutor())  # --resume --executor ray
    rec = landscape.open_record("record.h5")        # landscape info
    rec.load("vgg_bn_lr0.001").steps.loss           # numpy arrays
"""

from landscape.config import ProbeConfig, RecordConfig
from landscape.data import load_dataset
from landscape.errors import ConfigError, DataError, LandscapeError, RecordError
from landscape.models import build_model
from landscape.store import open_record
from landscape.sweep import LocalExecutor, RayExecutor, RayOptions, record, resume
from landscape.version import __version__

__all__ = [
    "ConfigError", "DataError", "LandscapeError", "LocalExecutor", "ProbeConfig", "RayExecutor",
    "RayOptions", "RecordConfig", "RecordError", "__version__", "build_model", "load_dataset",
    "open_record", "record", "resume",
]
