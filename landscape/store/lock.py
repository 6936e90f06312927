"""One writer per record: an operating-system lock on a file next to the record.

Every process that writes a record (a new record, `--overwrite`, `--resume`, the driver of a
Ray sweep, and each Ray worker on its own shard) holds `RECORD.h5.lock` with `fcntl.flock`
for as long as it writes. The kernel releases the lock when its holder exits, however it
exits (SIGKILL included), so a killed writer never leaves a stale lock; the file only says
who the holder is (PID, host, command), so that a second writer can be told whom it waits for.

`fcntl.flock` is used directly (not a lock-file library) because its one property this needs,
release by the kernel at the holder's death, is what the standard library gives; the
PID-file libraries decide staleness by guessing instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from landscape.errors import RecordError
from landscape.store.side_files import open_no_follow


def lock_path(record_path: str | os.PathLike) -> Path:
    record_path = Path(record_path)
    return record_path.with_name(record_path.name + ".lock")


def _holder_text(path: Path) -> str:
    """Who holds the lock at `path`, as written by its holder ("" if it cannot be read)."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    text = f"process {holder.get('pid')}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        text += f" on {holder['host']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


@contextlib.contextmanager
def writer_lock(record_path: str | os.PathLike) -> Iterator[Path]:
    """Hold the writer lock of the record at `record_path`, or raise RecordError naming the
    process that holds it. Yields the lock file's path."""
    record_path = Path(record_path)
    path = lock_path(record_path)
    if not path.parent.is_dir():
        raise RecordError(f"cannot write {record_path}: directory {path.parent} does not exist")
    while True:
        # O_NOFOLLOW: a link planted at the lock's name is refused, not written through.
        fd = open_no_follow(path, "the lock file", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder_text(path) or "another process"
            raise RecordError(f"{record_path} is being written by {holder}; wait for it to "
                              f"finish or stop it, then try again") from None
        # The holder before us removes the file before it lets go: if the file we locked is
        # no longer the one at `path`, lock the new one instead.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode())
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still held: see the inode check above
        os.close(fd)


def _command() -> str:
    """This process's command line, short: `landscape record -o r.h5 ...`."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    name = program.parent.name if program.name == "__main__.py" else program.name
    args = sys.argv[1:10]
    return " ".join([name, *args, *(["..."] if len(sys.argv) > 10 else [])])
