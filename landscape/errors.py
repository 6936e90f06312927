"""Errors the command line turns into one clear line (and a non-zero exit code).

Library code raises these for anything a user can fix (bad option values, missing data, an
unreadable record); anything else is a bug and keeps its traceback.
"""


class LandscapeError(Exception):
    """Base class for errors that carry a message meant for the user."""


class ConfigError(LandscapeError, ValueError):
    """An option value is invalid (malformed list, non-positive learning rate, unknown name...)."""


class DataError(LandscapeError):
    """The dataset is missing, incomplete, corrupt or not what was asked for."""


class RecordError(LandscapeError):
    """A record file cannot be created, written or read as a landscape record."""


class RecordWriteError(RecordError):
    """Writing the record failed (full disk, file size limit, vanished device).

    After such a failure the HDF5 library cannot release the file cleanly, and may crash the
    interpreter at exit; the command line therefore reports it and exits at once.
    """
