"""landscape: how BatchNorm changes the optimization landscape (Santurkar et al., NeurIPS 2018).

The Python API mirrors the command line:

    import landscape
    config = landscape.RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3, 5e-4), max_steps=50)
    landscape.record(config, "record.h5")          # landscape record
    rec = landscape.open_record("record.h5")        # landscape info
    rec.load("vgg_bn_lr0.001").steps.loss           # numpy arrays
"""

__version__ = "0.1.0"

from landscape.config import ProbeConfig, RecordConfig  # noqa: E402
from landscape.data import load_dataset  # noqa: E402
from landscape.errors import ConfigError, DataError, LandscapeError, RecordError  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.store import open_record  # noqa: E402
from landscape.sweep import record  # noqa: E402

__all__ = [
    "ConfigError", "DataError", "LandscapeError", "ProbeConfig", "RecordConfig", "RecordError",
    "build_model", "load_dataset", "open_record", "record",
]
