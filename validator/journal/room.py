# SPDX-License-Identifier: Apache-2.0
"""Room for the journal: free space and the reserve file kept for a committed tap's entry.

DESIGN section 6: before Close is sent the journal is known writable. The engine checks the
filesystem's free space (``os.statvfs``) and that a preallocated reserve file is in place;
when the disk fills between that check and the entry's write, deleting the reserve file gives
the entry its room.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO

from validator.journal.files import fsync_dir

RESERVE_NAME = ".reserve"


def write_all(handle: IO[bytes], data: bytes) -> None:
    """Write every byte (an unbuffered write may be partial)."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:
            raise OSError(errno.EIO, "the journal file accepted no bytes")
        view = view[written:]


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged user may still write on the directory's filesystem (OSError)."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def has_reserve(directory: Path, size: int) -> bool:
    """Whether the reserve file is in place with at least ``size`` bytes."""
    try:
        return (directory / RESERVE_NAME).stat().st_size >= size
    except OSError:
        return False


def make_reserve(directory: Path, size: int) -> None:
    """Write the reserve file (zeros, fsynced, renamed into place); OSError when no room."""
    if size <= 0:
        return
    temporary = directory / (RESERVE_NAME + ".tmp")
    try:
        with open(temporary, "wb", buffering=0) as handle:
            write_all(handle, b"\0" * size)  # written, not sparse: the blocks are really held
            os.fsync(handle.fileno())
        os.replace(temporary, directory / RESERVE_NAME)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(directory)


def release_reserve(directory: Path) -> bool:
    """Delete the reserve file to free its room; whether there was one to delete."""
    try:
        (directory / RESERVE_NAME).unlink()
    except OSError:
        return False
    return True
