# SPDX-License-Identifier: Apache-2.0
"""Where replay reads from: journals found under the paths given, streamed line by line.

A journal is one directory's chain of ``journal-*.jsonl`` files (one validator). Paths may name
files, journal directories, or folders holding many of them (searched recursively). Lines are
read as bytes, never all at once; the journals are merged by tap time so that reconciliation
sees a card's taps in order across validators, while each journal keeps its file order (the
chain is checked in that order).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from validator.journal import FILE_PREFIX, FILE_SUFFIX, QUARANTINE_PREFIX

_TAP_TIME = b'"tap_time":"'


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


def discover(paths: Sequence[Path]) -> list[JournalSource]:
    """Group the journal files under ``paths`` by directory, oldest file first."""
    groups: dict[Path, dict[Path, Path]] = {}
    for path in paths:
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(path.rglob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))
        else:
            raise ReplayInputError(f"{path}: no such file or directory")
        for file in found:
            groups.setdefault(file.parent.resolve(), {}).setdefault(file.resolve(), file)
    sources: list[JournalSource] = []
    for directory in sorted(groups):
        files = tuple(groups[directory][key] for key in sorted(groups[directory]))
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


def read_journal(source: JournalSource) -> Iterator[RawLine]:
    """Every non-empty line of one journal in file order; the very last one is flagged."""
    pending: RawLine | None = None
    key = b""
    for path in source.files:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                data = raw.rstrip(b"\n")
                if not data.strip():
                    continue
                key = tap_time_key(data, key)
                line = RawLine(source.index, str(path), number, data, key, raw.endswith(b"\n"))
                if pending is not None:
                    yield pending
                pending = line
    if pending is not None:
        pending.last = True
        yield pending


def merged(sources: Sequence[JournalSource]) -> Iterator[RawLine]:
    """The lines of every journal, merged by tap time (each journal keeps its own order)."""
    if len(sources) == 1:
        return read_journal(sources[0])
    return heapq.merge(*(read_journal(s) for s in sources), key=lambda line: line.key)
