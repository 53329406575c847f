# SPDX-License-Identifier: Apache-2.0
"""A journal on a disk that fills up: writes fail with ENOSPC once the free space is used.

Works unprivileged (no small filesystem to mount): the journal's file handle is wrapped so
that a write takes what still fits, as the kernel does on a full disk (a partial write), and
then fails with ENOSPC; the start-up probe (``check_writable``) sees the same free space.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
from pathlib import Path
from typing import IO, Any

from validator.engine.recording import JournalError
from validator.journal.writer import Journal


class Disk:
    """The free space of the journal's disk, in bytes (None: plenty)."""

    def __init__(self) -> None:
        self.free: int | None = None
        self.refused = 0  # writes that failed for lack of room

    def take(self, size: int) -> int:
        """How many of ``size`` bytes fit; raises ENOSPC when none does."""
        if self.free is None:
            return size
        if self.free <= 0:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        room = min(size, self.free)
        self.free -= room
        return room


class _QuotaFile:
    """A journal file handle on the limited disk (unbuffered bytes, as the journal opens it)."""

    def __init__(self, real: IO[bytes], disk: Disk) -> None:
        self._real = real
        self._disk = disk

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        room = self._disk.take(len(chunk))
        return self._real.write(chunk[:room])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class DiskJournal(Journal):
    """The real journal, its files on a disk whose free space the campaign controls."""

    def __init__(self, directory: Path | str, disk: Disk, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self.disk = disk

    def _writable(self, now: dt.datetime, size: int) -> IO[bytes]:
        handle = super()._writable(now, size)
        if not isinstance(handle, _QuotaFile):
            self._file = _QuotaFile(handle, self.disk)  # type: ignore[assignment]
        return self._file  # type: ignore[return-value]

    def _free_bytes(self) -> int:
        """The simulated disk's free space (the real one's when unlimited)."""
        if self.disk.free is None:
            return super()._free_bytes()
        return self.disk.free

    def _make_reserve(self) -> None:
        """The reserve file takes its room on the simulated disk."""
        if self.disk.free is not None:
            if self.disk.free < self.reserve_bytes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.disk.free -= self.reserve_bytes
        super()._make_reserve()

    def _release_reserve(self) -> bool:
        """Deleting the reserve file gives its room back to the simulated disk."""
        released = super()._release_reserve()
        if released and self.disk.free is not None:
            self.disk.free += self.reserve_bytes
        return released

    def check_writable(self, size: int = 64 * 1024) -> None:
        """The probe, refused while the disk has less than ``size`` bytes free."""
        if self.disk.free is not None and self.disk.free < size:
            raise JournalError(f"the journal has no room: {os.strerror(errno.ENOSPC)}")
        super().check_writable(size)
