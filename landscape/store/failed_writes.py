"""Keeping a record openable after a write to it failed (full disk, disk quota, file-size limit).

When a write fails, HDF5 has often already written the superblock with the end-of-file
address the failed write would have reached, so the file on disk is shorter than its header
says: readers then refuse it as truncated (`_hdf5.check_not_truncated`), although every object
written before the failure is complete and lies inside the file (HDF5 allocates new space at
the end of the file, and in SWMR mode writes an object before anything that points to it).

`repair_end_of_file` sets the superblock's end-of-file address back to the file's real size
(and its checksum to match), which makes the file open again with everything up to the last
successful flush: what `RecordWriter` does as it closes after a failed write. Its test
(tests/test_failed_writes.py) fails writes under file-size limits at several sizes and resumes
the repaired records to the uninterrupted record.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from landscape.store._hdf5 import hdf5_function

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HEAD = 48  # superblock versions 2 and 3, 8-byte offsets: 44 bytes and a 4-byte checksum
_EOF = slice(28, 36)


def _checksum(data: bytes) -> int | None:
    """HDF5's own metadata checksum (Jenkins' lookup3), from the library h5py loaded (None if
    it cannot be found: the file is then left as it is)."""
    function = hdf5_function("H5_checksum_metadata")
    if function is None:
        return None
    function.restype = ctypes.c_uint32
    function.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32]
    return int(function(data, len(data), 0))


def repair_end_of_file(path: Path) -> bool:
    """Shrink the end-of-file address in the superblock of `path` to the file's size when it
    points past it. Returns whether the file now opens as far as its size goes (True also when
    it needed nothing); False when it is not a superblock this understands or the checksum
    function is missing."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        head = bytearray(os.pread(fd, _HEAD, 0))
        size = os.fstat(fd).st_size
        if (len(head) < _HEAD or head[:8] != _SIGNATURE or head[8] not in (2, 3)
                or head[9] != 8 or any(head[12:20])):  # another layout, or a user block
            return False
        if _checksum(bytes(head[:44])) != int.from_bytes(head[44:48], "little"):
            return False  # not a superblock as this module reads it
        if int.from_bytes(head[_EOF], "little") <= size:
            return True
        head[_EOF] = size.to_bytes(8, "little")
        head[44:48] = _checksum(bytes(head[:44])).to_bytes(4, "little")
        # Rewriting bytes inside the file never makes it longer: it succeeds on a full disk
        # and under a file-size limit alike.
        os.pwrite(fd, bytes(head), 0)
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
