"""Errors the command line turns into one clear line (and a non-zero exit code).

Library code raises these for anything a user can fix (bad option values, missing data, an
unreadable record); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Callable

# Marks a configuration field inside a ConfigError message (a control character no option value
# contains), so that the library can say "optim.lr_min" and the command line "--lr-min".
_FIELD_MARK = "\x1f"


class LandscapeError(Exception):
    """Base class for errors that carry a message meant for the user."""


def field_ref(path: str) -> str:
    """A configuration field named in a ConfigError message, e.g. field_ref("optim.lr_min");
    `ConfigError.render` turns it into a name (the field path, or the command line's flag)."""
    return f"{_FIELD_MARK}{path}{_FIELD_MARK}"


class ConfigError(LandscapeError, ValueError):
    """An option value is invalid (malformed list, non-positive learning rate, unknown name...).

    The message names configuration fields with `field_ref`; `field` is the field the error is
    about (the first one named unless given). `str()` names fields by their path; the command
    line renders the same message with its flags (`render(flag_of)`).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        named = message.split(_FIELD_MARK)[1::2]
        self.field = field if field is not None else (named[0] if named else None)

    def render(self, name: Callable[[str], str] = str) -> str:
        parts = self.message.split(_FIELD_MARK)
        parts[1::2] = [name(path) for path in parts[1::2]]
        return "".join(parts)

    def __str__(self) -> str:
        return self.render()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): what a
    one-line error quotes of a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DataError(LandscapeError):
    """The dataset is missing, incomplete, corrupt or not what was asked for."""


class RecordError(LandscapeError):
    """A record file cannot be created, written or read as a landscape record."""


class InstrumentError(LandscapeError):
    """A training loop drives the instrument (`landscape.Recorder`) in a way that cannot be
    measured faithfully (an optimizer step with a closure, random draws that cannot be
    replayed, a probe that changed training in check mode, calls out of order)."""


class RecordWriteError(RecordError):
    """Writing the record failed (full disk, file size limit, vanished device).

    After such a failure the HDF5 library cannot release the file cleanly, and may crash the
    interpreter at exit; the command line therefore reports it and exits at once.
    """
