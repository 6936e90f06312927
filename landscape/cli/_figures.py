"""Where a command writes a figure: checked before the work that draws it, and written with one
clear line on failure."""

from __future__ import annotations

import os
from pathlib import Path

from typing import Sequence

from matplotlib import rcParams
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from landscape.errors import ConfigError
from landscape.store import check_output, write_output


def check_figure_path(path: Path, flag: str = "--out", inputs: Sequence[Path] = ()) -> None:
    """Refuse, before anything is computed, a figure path that savefig could not write (an
    unknown extension, a missing or read-only folder, an existing folder) or should not (a
    record, one of `inputs`, a file a writer holds: `landscape.store.check_output`)."""
    formats = FigureCanvasBase.get_supported_filetypes()  # matplotlib's own list
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise ConfigError(f"{flag} {path}: matplotlib cannot write .{suffix} figures; use one "
                          f"of {', '.join('.' + f for f in sorted(formats))}")
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'prune.png'}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write into {folder} (permission denied)")
    check_output(path, inputs=inputs, flag=flag)


def save_figure(figure: Figure, path: Path, **kwargs) -> None:
    """`figure.savefig(path)` through `landscape.store.write_output` (whole or not at all,
    never through a link at the name), a failed write in one line."""
    fmt = kwargs.pop("format", None) or path.suffix.lower().lstrip(".") or \
        rcParams["savefig.format"]
    write_output(path, lambda file: figure.savefig(file, format=fmt, **kwargs))
