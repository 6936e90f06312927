"""The package version, in a module of its own so that any module can import it without
importing the whole package (which would import that module back)."""

__version__ = "0.1.0"


def package_versions() -> dict[str, str]:
    """The versions a record stores of what made it (landscape, torch, torchvision, numpy,
    h5py, HDF5, Python). Imports them here, not at the top: `landscape --version` needs none of them."""
    import platform

    import h5py
    import numpy as np
    import torch
    import torchvision

    return {
        "landscape": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": platform.python_version(),
        "torchvision": torchvision.__version__,
    }
