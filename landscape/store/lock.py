"""One writer per record: operating-system locks keyed on the record file itself.

Every process that writes a record (a new record, `--overwrite`, `--resume`, `landscape
surface`, the driver of a Ray sweep, and each Ray worker on its own shard) holds, for as long
as it writes:

- the lock file `RECORD.h5.lock` beside the record's real path (symbolic links resolved, so a
  writer through a link and one through the name meet at one lock file); it also covers a
  record that does not exist yet, and says who the holder is (PID, host, command);
- a lock on the record file's own inode (device and inode, whatever name it is reached by: a
  hard link, or a link to a folder above it), and on each file that later takes the record's
  place (`hold`).

Both are open-file-description locks (`fcntl` F_OFD_SETLK, Linux): the kernel releases them
when their holder exits, however it exits (SIGKILL included), so a killed writer never leaves a
stale lock; they can be asked about without being taken (`holder`, for commands that only
need to know whether a file is being written); and they are separate from the `flock` locks
HDF5 takes on the files it opens. Where the platform has no OFD locks, `flock` on the lock file
is used and the inode lock is left out. The standard library is used directly (not a lock-file
library) because release by the kernel at the holder's death is the one property this needs;
PID-file libraries decide staleness by guessing instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import struct
import sys
from pathlib import Path
from typing import Iterator

from landscape.errors import RecordError
from landscape.store.side_files import open_no_follow

_OFD = hasattr(fcntl, "F_OFD_SETLK")
# struct flock on Linux: l_type, l_whence (short); l_start, l_len (off_t); l_pid (pid_t, 0 for
# OFD locks). l_len 0 locks the whole file, however long it grows.
_FLOCK_STRUCT = "hhqqixxxx"


def real_path(path: str | os.PathLike) -> Path:
    """`path` with every symbolic link resolved: the name a record's locks are keyed on."""
    return Path(os.path.realpath(path))


def lock_path(record_path: str | os.PathLike) -> Path:
    """The lock file of the record at `record_path` (beside its real path)."""
    record_path = real_path(record_path)
    return record_path.with_name(record_path.name + ".lock")


def _ofd_lock(fd: int, kind: int) -> bool:
    """Take an OFD lock of `kind` (F_WRLCK, F_RDLCK) on the whole file; False if another open
    file holds a conflicting one."""
    if not _OFD:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK_STRUCT, kind, os.SEEK_SET, 0, 0, 0))
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def _ofd_held(fd: int) -> bool:
    """Whether another open file holds a lock on the file of `fd` (nothing is taken)."""
    if not _OFD:
        return False
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK,
                         struct.pack(_FLOCK_STRUCT, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    return struct.unpack(_FLOCK_STRUCT, answer)[0] != fcntl.F_UNLCK


def _holder_text(path: Path) -> str:
    """Who holds the lock at `path`, as written by its holder ("" if it cannot be read)."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(holder, dict):
        return ""
    text = f"process {holder.get('pid')}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        text += f" on {holder['host']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def _busy(record_path: Path, holder: str) -> RecordError:
    return RecordError(f"{record_path} is being written by {holder}; wait for it to finish or "
                       f"stop it, then try again")


def _open_file_itself(path: Path) -> tuple[int, int] | None:
    """(descriptor, lock kind) of the regular file at `path`, for an inode lock, or None when
    there is none. A file this user cannot write is locked for reading: that still conflicts
    with every writer's lock, and its own write fails with its own message."""
    for flags, kind in ((os.O_RDWR, fcntl.F_WRLCK), (os.O_RDONLY, fcntl.F_RDLCK)):
        try:
            fd = os.open(path, flags | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO does not wait
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                continue
            return None  # missing, vanished, a folder: nothing to lock
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd, kind
        os.close(fd)
        return None
    return None


class WriterLock:
    """The locks one writer holds (see the module docstring); `hold` adds the file that takes
    the record's place (a new record, a resumed copy)."""

    def __init__(self, record_path: Path) -> None:
        self.record_path = record_path
        self._files: list[int] = []

    def hold(self, path: str | os.PathLike | None = None) -> None:
        """Lock the inode of the file now at `path` (default: the record), or raise
        RecordError when another writer holds it."""
        opened = _open_file_itself(real_path(path or self.record_path))
        if opened is None:
            return
        fd, kind = opened
        if not _ofd_lock(fd, kind):
            os.close(fd)
            raise _busy(self.record_path, "another process, through another name of the same "
                                          "file (a hard or symbolic link)")
        self._files.append(fd)

    def release(self) -> None:
        for fd in self._files:
            os.close(fd)
        self._files.clear()


@contextlib.contextmanager
def writer_lock(record_path: str | os.PathLike) -> Iterator[WriterLock]:
    """Hold the writer locks of the record at `record_path` (see the module docstring), or
    raise RecordError naming the process that holds them."""
    record_path = Path(record_path)
    path = lock_path(record_path)
    if not path.parent.is_dir():
        raise RecordError(f"cannot write {record_path}: directory {path.parent} does not exist")
    while True:
        # O_NOFOLLOW: a link planted at the lock's name is refused, not written through.
        fd = open_no_follow(path, "the lock file", os.O_RDWR | os.O_CREAT)
        if not _ofd_lock(fd, fcntl.F_WRLCK):
            os.close(fd)
            raise _busy(record_path, _holder_text(path) or "another process")
        # The holder before us removes the file before it lets go: if the file we locked is
        # no longer the one at `path`, lock the new one instead.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    lock = WriterLock(record_path)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode())
        lock.hold()
        yield lock
    finally:
        lock.release()
        path.unlink(missing_ok=True)  # while still held: see the inode check above
        os.close(fd)


def holder(path: str | os.PathLike) -> str | None:
    """Who writes the file at `path` ('process 123 (landscape record ...)', or 'another
    process'), or None when no writer holds it: its lock file (a record being created, or
    written under this name) or its inode (written under another name). Takes no lock."""
    lock = lock_path(path)
    with contextlib.suppress(OSError):
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            if _ofd_held(fd):
                return _holder_text(lock) or "another process"
        finally:
            os.close(fd)
    opened = _open_file_itself(real_path(path))
    if opened is not None:
        try:
            if _ofd_held(opened[0]):
                return "another process, through another name of the same file"
        finally:
            os.close(opened[0])
    return None


def _command() -> str:
    """This process's command line, short: `landscape record -o r.h5 ...`."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    name = program.parent.name if program.name == "__main__.py" else program.name
    args = sys.argv[1:10]
    return " ".join([name, *args, *(["..."] if len(sys.argv) > 10 else [])])
