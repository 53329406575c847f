# SPDX-License-Identifier: Apache-2.0
"""Journals as replay, export and journal-head read them: found, then streamed line by line.

A journal is one directory's chain of ``journal-*.jsonl`` files (one validator). Paths may name
files, journal directories, or folders holding many of them (searched recursively). Lines are
read as bytes, never all at once; the journals are merged by tap time so that reconciliation
sees a card's taps in order across validators, while each journal keeps its file order (the
chain is checked in that order, which ``validator.journal.writer.journal_files`` gives).

A hostile journal costs bounded memory and time (issue 15.13): only regular files are read
(a FIFO, a device or a symlink to one is refused before it is opened), and a line longer than
``MAX_LINE`` is never held: it is skipped and hashed in chunks, and reported ``too long``.

A line that repeats, byte for byte, one of the last ``DUPLICATE_WINDOW`` lines of its journal
(same validator, seq and hash: a copy, not a second tap) is flagged ``duplicate_of``; replay and
export count it once and report it (issue 15.19). A copy further back shows as ``out_of_order``.
"""

from __future__ import annotations

import hashlib
import heapq
import operator
import os
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from validator.journal.writer import FILE_PREFIX, FILE_SUFFIX, QUARANTINE_PREFIX, journal_files

_TAP_TIME = b'"tap_time":"'
MAX_LINE = 1024 * 1024  # a journal entry is a few kB; anything longer is not one
_CHUNK = 64 * 1024
_KEY = operator.attrgetter("key")  # the merge's key: a RawLine's tap time
_BLOCK = 16 * 1024  # read at once from a journal merged with others: held per journal
DUPLICATE_WINDOW = 65_536  # lines remembered (by their hash) per journal to recognise a copy


class ReplayInputError(Exception):
    """The paths given hold no readable journal (exit code 2)."""


@dataclass(frozen=True, slots=True)
class JournalSource:
    """One validator's journal: its files oldest first, and the quarantined torn tails."""

    index: int
    directory: Path
    files: tuple[Path, ...]
    quarantine: tuple[Path, ...]

    @property
    def size(self) -> int:
        """Bytes to read."""
        return sum(path.stat().st_size for path in self.files)


@dataclass(slots=True)
class RawLine:
    """One non-empty line of a journal file, as bytes without its newline."""

    journal: int
    file: str
    line: int
    data: bytes
    key: bytes  # the tap time, for the merge
    terminated: bool  # False: the writer never finished it (torn tail)
    last: bool = False  # the last line of its journal
    too_long: int = 0  # the size of a line over MAX_LINE (then ``data`` is empty)
    digest: str = ""  # the SHA-256 of a line too long (hashed while skipped), or as received
    duplicate_of: int = 0  # the earlier line (same file or an earlier one) this one repeats
    duplicate_file: str = ""


class RecentLines:
    """The hashes of a journal's last DUPLICATE_WINDOW lines, and where each was.

    Python's keyed 64-bit ``hash`` of the bytes, not SHA-256: a fifth less reader time, and a
    chance collision cannot hide a tap, since the line taken for a copy is left out of the chain,
    whose next ``prev`` and seq then report it (``edited``, ``missing``).
    """

    def __init__(self) -> None:
        self._where: dict[int, tuple[str, int]] = {}
        self._order: deque[int] = deque()

    def seen(self, data: bytes, file: str, line: int) -> tuple[str, int] | None:
        """Where ``data`` was read before, or None (then it is remembered)."""
        digest = hash(data)
        earlier = self._where.get(digest)
        if earlier is not None:
            return earlier
        self._where[digest] = (file, line)
        self._order.append(digest)
        if len(self._order) > DUPLICATE_WINDOW:
            del self._where[self._order.popleft()]
        return None


def _regular(path: Path) -> None:
    """Refuse anything but a regular file (followed through symlinks) before opening it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ReplayInputError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ReplayInputError(f"{path}: not a regular file (FIFO, device or socket): refused")


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor on a regular file and its status; a FIFO or device is refused, never
    waited on (O_NONBLOCK: a FIFO swapped in after a check does not block the open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ReplayInputError(f"{path}: cannot open ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ReplayInputError(f"{path}: not a regular file (FIFO, device or socket): refused")
    return fd, info


def open_journal_file(path: Path) -> BinaryIO:
    """Open a journal file for reading; a FIFO or device is refused and never waited on."""
    _regular(path)
    fd, _ = _open_regular(path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class ReopeningFile:
    """A journal file read through a buffer, open only while the buffer is refilled.

    ``readline`` answers as an open file's does. Between refills no descriptor is held, so that
    merging thousands of journals needs one at a time, not one per journal (the common limit is
    1,024). The file is identified by device and inode at its first read: a file swapped for
    another under the same name is refused, never read on from the other's offset.
    """

    def __init__(self, path: Path, block: int = _BLOCK) -> None:
        self.path = path
        self.block = block
        self._buffer = b""
        self._start = 0  # of the unread part of the buffer
        self._offset = 0  # in the file, of the end of the buffer
        self._identity: tuple[int, int] | None = None

    def __enter__(self) -> ReopeningFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._buffer = b""

    @property
    def buffered(self) -> int:
        """Bytes of the file held in memory (read, or kept for a line not yet whole)."""
        return len(self._buffer)

    def _refill(self) -> bool:
        """Append the next block of the file (less at its end); False at its end."""
        fd, info = _open_regular(self.path)
        try:
            identity = (info.st_dev, info.st_ino)
            if self._identity is None:
                self._identity = identity
            elif identity != self._identity:
                raise ReplayInputError(f"{self.path}: replaced while being read: refused")
            data = os.pread(fd, self.block, self._offset)
        finally:
            os.close(fd)
        if not data:
            return False
        self._buffer = self._buffer[self._start :] + data
        self._start = 0
        self._offset += len(data)
        return True

    def readline(self, limit: int) -> bytes:
        """The next line with its newline, or its first ``limit`` bytes; b"" at the end."""
        while True:
            buffer, start = self._buffer, self._start
            end = buffer.find(b"\n", start, start + limit)
            if end >= 0:
                self._start = end + 1
                return buffer[start : end + 1]
            held = len(buffer) - start
            if held >= limit or not self._refill():
                taken = min(held, limit)
                self._start = start + taken
                return buffer[start : start + taken]


def bounded_lines(handle: BinaryIO | ReopeningFile) -> Iterator[tuple[bytes, bool, int, str]]:
    """(line without newline, terminated, size if too long, digest if too long), streamed.

    Memory stays under ``MAX_LINE``: a longer line is read in chunks, hashed, and dropped.
    """
    while True:
        raw = handle.readline(MAX_LINE + 1)
        if not raw:
            return
        if raw.endswith(b"\n"):
            yield raw[:-1], True, 0, ""
            continue
        if len(raw) <= MAX_LINE:  # the end of the file without a newline
            yield raw, False, 0, ""
            return
        digest, size, terminated = hashlib.sha256(raw), len(raw), False
        while chunk := handle.readline(_CHUNK):
            if chunk.endswith(b"\n"):
                digest.update(chunk[:-1])
                size += len(chunk) - 1
                terminated = True
                break
            digest.update(chunk)
            size += len(chunk)
        yield b"", terminated, size, digest.hexdigest()


def discover(paths: Sequence[Path]) -> list[JournalSource]:
    """Group the journal files under ``paths`` by directory, oldest file first."""
    groups: dict[Path, dict[Path, Path]] = {}
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            raise ReplayInputError(f"{path}: no such file or directory")
        for file in found:
            _regular(file)
            groups.setdefault(file.parent.resolve(), {}).setdefault(file.resolve(), file)
    sources: list[JournalSource] = []
    for directory in sorted(groups):
        chosen = groups[directory]
        # The journal's own order (validator.journal.writer): never parse file names here.
        order = {p.resolve(): n for n, p in enumerate(journal_files(directory))}
        keys = sorted(chosen, key=lambda p: (order.get(p, len(order)), p))
        files = tuple(chosen[key] for key in keys)
        stems = tuple(f"{QUARANTINE_PREFIX}{file.stem}-" for file in files)
        quarantine = tuple(
            sorted(
                q for q in files[0].parent.glob(f"{QUARANTINE_PREFIX}*") if q.name.startswith(stems)
            )
        )
        sources.append(JournalSource(len(sources), files[0].parent, files, quarantine))
    if not sources:
        raise ReplayInputError("no journal file (journal-*.jsonl) under the paths given")
    return sources


def tap_time_key(data: bytes, default: bytes) -> bytes:
    """The tap time of a canonical journal line without parsing it (``default`` if absent)."""
    start = data.find(_TAP_TIME)
    if start < 0:
        return default
    start += len(_TAP_TIME)
    end = data.find(b'"', start)
    return data[start:end] if end > 0 else default


def read_journal(source: JournalSource, *, reopening: bool = False) -> Iterator[RawLine]:
    """Every non-empty line of one journal in file order; the very last one is flagged.

    ``reopening``: hold no descriptor between reads (ReopeningFile), for a merge of many."""
    pending: RawLine | None = None
    key = b""
    recent = RecentLines()
    for path in source.files:
        if reopening:
            _regular(path)
        with ReopeningFile(path) if reopening else open_journal_file(path) as handle:
            for number, (data, terminated, too_long, digest) in enumerate(
                bounded_lines(handle), start=1
            ):
                if not too_long and not data.strip():
                    continue
                key = tap_time_key(data, key)
                line = RawLine(
                    source.index, str(path), number, data, key, terminated, False, too_long, digest
                )
                if terminated and not too_long:
                    earlier = recent.seen(data, str(path), number)
                    if earlier is not None:
                        line.duplicate_file, line.duplicate_of = earlier
                if pending is not None:
                    yield pending
                pending = line
    if pending is not None:
        pending.last = True
        yield pending


def merged(sources: Sequence[JournalSource]) -> Iterator[RawLine]:
    """The lines of every journal, merged by tap time (each journal keeps its own order).

    Each journal is read through a ReopeningFile: one descriptor at a time for the merge."""
    if len(sources) == 1:
        return read_journal(sources[0])
    readers = (read_journal(source, reopening=True) for source in sources)
    return heapq.merge(*readers, key=_KEY)
