# SPDX-License-Identifier: Apache-2.0
"""The journal's files on disk: their names and order, and the repair of a torn or foreign tail.

A file is named by the sequence number of its first entry, ``journal-s<seq, 12 digits>-<day>.jsonl``
(the day, of the wall clock when the file was started, is for humans only): names sort in
sequence order, so a clock that steps back changes no file order (DESIGN section 6). Files of
older versions, ``journal-YYYYMMDD-NNNN.jsonl``, come before every new name (digits sort before
``s``) and among themselves by date and index, as they always did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_PREFIX = "journal-"
FILE_SUFFIX = ".jsonl"
QUARANTINE_PREFIX = "quarantine-"
_NEW_NAME = re.compile(r"journal-s(\d{12})-(\d{8})\.jsonl")
_OLD_NAME = re.compile(r"journal-(\d{8})-(\d{4,})\.jsonl")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A "seq" key anywhere in a canonical line (inside a string it would read \"seq\").
_ANY_SEQ = re.compile(rb'"seq":(\d{1,18})[,}]')


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A torn or foreign tail moved aside at start-up."""

    source: Path
    quarantine: Path
    size: int


def file_name(first_seq: int, day: str) -> str:
    """The name of a journal file whose first entry is ``first_seq``, started on ``day``."""
    return f"{FILE_PREFIX}s{first_seq:012d}-{day}{FILE_SUFFIX}"


def first_seq(path: Path) -> int | None:
    """The first sequence number a new-style name carries (None for an old-style name)."""
    match = _NEW_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else None


def file_day(path: Path) -> str | None:
    """The day (YYYYMMDD) a file's name carries, new style or old."""
    match = _NEW_NAME.fullmatch(path.name) or _OLD_NAME.fullmatch(path.name)
    if match is None:
        return None
    return match.group(2) if match.re is _NEW_NAME else match.group(1)


def _order(path: Path) -> tuple[int, int, str, int, str]:
    new = _NEW_NAME.fullmatch(path.name)
    if new:
        return (1, int(new.group(1)), "", 0, path.name)
    old = _OLD_NAME.fullmatch(path.name)
    if old:
        return (0, 0, old.group(1), int(old.group(2)), path.name)
    return (0, 0, "", 0, path.name)  # a foreign name: before ours, by name


def journal_files(directory: Path) -> list[Path]:
    """The journal files of a directory, oldest first (old-style names, then by first seq)."""
    return sorted(directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"), key=_order)


def line_hash(line: str) -> str:
    """SHA-256 of a journal line (without its newline), in hex."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def parse_entry(raw: bytes) -> dict[str, Any] | None:
    """The entry a line holds, or None when it is not one (bad UTF-8, JSON or shape).

    Shape: an object with an integer ``seq`` >= 1 and a 64-hex ``prev``. Deep nesting and
    huge numbers are refused, not raised.
    """
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    seq, prev = value.get("seq"), value.get("prev")
    if type(seq) is not int or seq < 1 or not isinstance(prev, str):
        return None
    if not _HEX64.fullmatch(prev):
        return None
    return value


def highest_seq(path: Path) -> int:
    """The highest seq a file mentions, and at least its name's first seq if it holds a line.

    A last entry whose seq was corrupted downwards must not make the writer reuse a seq the
    file already holds; nested seqs (``resolves.seq``) only name earlier taps.
    """
    data = path.read_bytes()
    found = max((int(m) for m in _ANY_SEQ.findall(data)), default=0)
    named = first_seq(path)
    if named is None:
        return found
    # The name's seq was written into this file, unless the file holds no line at all.
    return max(found, named if data.strip() else named - 1)


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a created, renamed or removed file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def last_entry(path: Path) -> tuple[dict[str, Any], str] | None:
    """The last line of a (repaired) file as an entry and its text, or None when empty."""
    data = path.read_bytes().rstrip(b"\n")
    if not data:
        return None
    raw = data[data.rfind(b"\n") + 1 :]
    entry = parse_entry(raw)
    if entry is None:
        return None
    return entry, raw.decode("utf-8")


def repair_tail(path: Path, directory: Path) -> Quarantined | None:
    """Move a torn, unparsable or foreign tail to a quarantine file; truncate it away.

    The tail is everything after the last line that holds an entry (read as bytes: a bad
    UTF-8 byte, JSON that is not an entry, or a line cut by a crash are set aside alike).
    """
    data = path.read_bytes()
    cut = len(data)
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1  # a line cut by a crash
    while cut > 0:
        start = data.rfind(b"\n", 0, cut - 1) + 1
        line = data[start : cut - 1]
        if not line.strip() or parse_entry(line) is None:
            cut = start  # blank, torn or foreign: into the quarantine with what follows
            continue
        break
    if cut == len(data):
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    quarantine = directory / f"{QUARANTINE_PREFIX}{path.stem}-{stamp}.bin"
    with open(quarantine, "wb") as out:
        out.write(data[cut:])
        out.flush()
        os.fsync(out.fileno())
    with open(path, "r+b") as handle:
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(directory)
    return Quarantined(path, quarantine, len(data) - cut)


def read_entries(paths: list[Path]) -> Iterator[tuple[Path, int, str]]:
    """Every non-empty line of the given files in order: (file, line number, line)."""
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield path, number, line.rstrip("\n")
