"""The files a writer makes next to a record (lock, checkpoint, temporary copies, shards), made
so that nobody else's file is written through them, and the room a write has.

A record's folder may be writable by others (/tmp, a file system shared by a Ray cluster).
Anyone who can write there can plant a symbolic link at a side file's name (`R.h5.lock`,
`R.h5.ckpt.tmp`, `R.h5.resume-tmp`), and a writer that opens the name the ordinary way writes
through the link into its target, and renames the link over the record. So a side file is
opened with O_NOFOLLOW (the lock, which is kept between writers) or made new with O_EXCL after
whatever stood at its name was removed (temporary files: O_CREAT | O_EXCL never follows a link,
so a link planted between the removal and the creation makes the creation fail, not write).

`room_for` is the space a file may still grow by: the free space of its file system, and the
process's file-size limit (`ulimit -f`, RLIMIT_FSIZE), which makes writes past it fail exactly
as a full disk does.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
from pathlib import Path

from landscape.errors import RecordError


def refuse_link(path: Path, what: str) -> None:
    """RecordError if `path` is a symbolic link (`what` names the file: 'the lock file')."""
    if path.is_symlink():
        raise RecordError(f"{what} {path} is a symbolic link (to {os.readlink(path)}); a "
                          f"landscape writer never writes through one: remove the link and "
                          f"try again")


def open_no_follow(path: Path, what: str, flags: int, mode: int = 0o644) -> int:
    """os.open(path, flags | O_NOFOLLOW), a link at `path` refused in one line."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse_link(path, what)
        raise RecordError(f"cannot open {what} {path}: {exc.strerror}") from exc


def create_new(path: Path, what: str) -> int:
    """A new, empty file at `path` (what stood there removed first: a stale temporary file of
    a writer that died, or a planted link, whose target is left alone), opened for writing.
    Returns its descriptor."""
    remove_entry(path)
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:  # made again between the removal and the creation
        raise RecordError(f"cannot create {what} {path}: another process keeps creating a "
                          f"file there; find out which, stop it and try again") from None
    except OSError as exc:
        raise RecordError(f"cannot create {what} {path}: {exc.strerror}") from exc


def remove_entry(path: Path) -> None:
    """Remove the file or link at `path` (never a link's target), if there is one."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise RecordError(f"cannot write {path}: a folder of that name is in the way") from None


def room_for(path: Path) -> int:
    """Bytes the file at `path` (which may not exist yet) can still grow by: the free space of
    its file system, or less under a file-size limit."""
    path = Path(path)
    room = shutil.disk_usage(path.parent).free
    limit = file_size_limit()
    if limit < room:
        size = path.stat().st_size if path.exists() else 0
        room = min(room, max(limit - size, 0))
    return room


def file_size_limit() -> int | float:
    """The largest file this process may write (`ulimit -f`, RLIMIT_FSIZE), in bytes; inf
    without a limit. Writes past it fail exactly as on a full disk."""
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return float("inf") if limit == resource.RLIM_INFINITY else limit

