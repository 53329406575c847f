# SPDX-License-Identifier: Apache-2.0
"""One received file checked against its validator's anchor: what is new, known, or held.

The chain continues from the anchor the office holds (the last trusted seq and the SHA-256 of
its line), so that what no check inside the validator's host can see is seen here: a removed
tail followed by new entries, an entry changed after it was shipped, a journal that restarts
from genesis (DESIGN section 6). Lines are read as replay reads them
(validator.journal.reading.bounded_lines: a line longer than MAX_LINE is hashed, never held
whole) and checked as replay checks them (validator.office.replay.line.entry_facts: hash,
parse, HMAC with the journal key).

Each line of the file is, in order:

- a duplicate: its seq is at or below the anchor and its hash is the one received before (a
  file sent twice, or overlapping an earlier one, adds nothing);
- new and trusted: the next seq, linked to the anchor by ``prev`` (seq 1 to genesis), its HMAC
  verified when a key is given, naming the file's validator;
- or a break, and then held, with every line after it in the file: nothing after a break is
  taken as trusted. The kinds: ``unreadable`` (not an entry), ``missing`` (seqs skipped),
  ``edited`` (an entry's hash is not the ``prev`` of the next: the entry was changed; when the
  changed entry is in this same file it is held too, since only its successor shows it),
  ``replaced`` (a seq already received, with another content), ``restarted`` (seq 1 from
  genesis again after the chain had gone further), ``chain_break`` (seq 1 not from genesis),
  ``hmac_failure``, ``foreign`` (an entry naming another validator).

An unterminated last line is the unfinished part of a file still being written (the shipper
sends the finished part): it is neither trusted nor a break, only counted; it arrives whole
with the next shipment. Blank lines are skipped, as replay skips them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from validator.journal.reading import MAX_LINE, bounded_lines
from validator.journal.writer import GENESIS
from validator.office.replay.line import entry_facts

__all__ = [
    "Break",
    "FileCheck",
    "Line",
    "check_file",
    "read_lines",
    "utf8",
    "valid_validator_id",
]

# jsonb holds no NUL character and no lone surrogate: such a line is stored as raw bytes.
_NOT_JSONB = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
MAX_SEQ = 2**63 - 1  # PostgreSQL's bigint
_VALIDATOR_ID = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


def valid_validator_id(value: Any) -> bool:
    """A validator id the office stores: 1 to 128 characters, no control one, valid UTF-8."""
    return isinstance(value, str) and _VALIDATOR_ID.fullmatch(value) is not None and utf8(value)


def utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (a lone surrogate, which JSON may carry, does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Line:
    """One non-blank line of a received file, hashed and parsed."""

    number: int
    data: bytes  # without its newline; empty for a line longer than MAX_LINE
    digest: str  # SHA-256 of the line, what the next entry's prev carries
    size: int
    seq: int | None  # None: not a journal entry
    prev: str
    validator: Any  # the entry's ``validator`` field, as read
    hmac_ok: bool | None  # None: no journal key given
    entry: dict[str, Any] | None
    error: str = ""

    @property
    def jsonb_safe(self) -> bool:
        """Whether PostgreSQL's jsonb can hold the entry as it is (no NUL, no lone surrogate)."""
        return _NOT_JSONB.search(self.data) is None


@dataclass(frozen=True, slots=True)
class Break:
    """One break of a validator's chain, located in the file."""

    kind: str
    seq: int  # the seq where the chain broke (of the changed entry, the first missing one...)
    line: int
    detail: str


@dataclass
class FileCheck:
    """What one file adds to its validator's chain."""

    validator: str
    anchor_seq: int  # the anchor after this file (unchanged when nothing new is trusted)
    anchor_hash: str
    new: list[Line] = field(default_factory=list)
    duplicates: int = 0
    held: list[tuple[Line, str, str]] = field(default_factory=list)  # line, break kind, why
    breaks: list[Break] = field(default_factory=list)
    torn: int = 0  # bytes of an unterminated last line


def read_lines(data: bytes, key: bytes | None) -> tuple[list[Line], int]:
    """The non-blank terminated lines of a file's bytes, and the size of a torn last line."""
    lines: list[Line] = []
    torn = 0
    for number, (text, terminated, too_long, digest) in enumerate(
        bounded_lines(io.BytesIO(data)), start=1
    ):
        if not terminated:
            torn = too_long or len(text)
            continue
        if too_long:
            detail = f"too long: {too_long} bytes (a journal line is at most {MAX_LINE})"
            lines.append(Line(number, b"", digest, too_long, None, "", None, None, None, detail))
            continue
        if not text.strip():
            continue
        facts, entry = entry_facts(text, key)
        seq = entry.get("seq") if isinstance(entry, dict) else None
        prev = entry.get("prev") if isinstance(entry, dict) else None
        if type(seq) is not int or not 1 <= seq <= MAX_SEQ or not isinstance(prev, str):
            error = facts.error or "not a journal entry (seq or prev missing or wrong)"
            lines.append(
                Line(number, text, facts.digest, len(text), None, "", None, None, None, error)
            )
            continue
        assert isinstance(entry, dict)  # noqa: S101 - seq was read from it
        lines.append(
            Line(
                number,
                text,
                facts.digest,
                len(text),
                seq,
                prev,
                entry.get("validator"),
                facts.hmac_ok,
                entry,
            )
        )
    return lines, torn


def file_validator(lines: list[Line]) -> str | None:
    """The validator the file's first entry names (None when no entry names a valid one)."""
    for line in lines:
        if line.seq is not None:
            return str(line.validator) if valid_validator_id(line.validator) else None
    return None


def known_seqs(lines: list[Line], anchor_seq: int) -> list[int]:
    """The seqs of the file at or below the anchor: their stored hashes are needed."""
    return sorted({line.seq for line in lines if line.seq is not None and line.seq <= anchor_seq})


class _Walk:
    """The chain walked line by line from the anchor."""

    def __init__(self, check: FileCheck, stored: Mapping[int, str]) -> None:
        self.check = check
        self.stored = stored
        self.base = (check.anchor_seq, check.anchor_hash)
        self.seen: dict[int, str] = {}  # accepted in this file

    @property
    def cursor(self) -> tuple[int, str]:
        new = self.check.new
        return (new[-1].seq or 0, new[-1].digest) if new else self.base

    def problem(self, line: Line) -> Break | None:
        """The break this line makes, or None (then it is accepted or a duplicate)."""
        last_seq, last_hash = self.cursor
        validator = self.check.validator
        if line.seq is None:
            return Break("unreadable", last_seq + 1, line.number, line.error)
        seq = line.seq
        if line.validator != validator:
            return Break(
                "foreign",
                seq,
                line.number,
                f"seq {seq} names validator {line.validator!r}, not {validator!r}",
            )
        if seq <= last_seq:
            known = self.seen.get(seq) or self.stored.get(seq)
            if known == line.digest:
                self.check.duplicates += 1
                return None
            if seq == 1 and line.prev == GENESIS:
                return Break(
                    "restarted",
                    1,
                    line.number,
                    f"the journal restarts from genesis after seq {last_seq} was received",
                )
            return Break(
                "replaced",
                seq,
                line.number,
                f"seq {seq} differs from the seq {seq} received before",
            )
        if seq > last_seq + 1:
            first = last_seq + 1
            missing = f"seq {first}" if seq == first + 1 else f"seq {first}..{seq - 1}"
            return Break("missing", first, line.number, f"{missing} missing before seq {seq}")
        if seq == 1 and line.prev != GENESIS:
            return Break("chain_break", 1, line.number, "seq 1 does not start from genesis")
        if line.prev != last_hash:
            return self._edited(line, last_seq)
        if line.hmac_ok is False:
            return Break("hmac_failure", seq, line.number, f"seq {seq}: HMAC missing or wrong")
        self.check.new.append(line)
        self.seen[seq] = line.digest
        return None

    def _edited(self, line: Line, last_seq: int) -> Break:
        new = self.check.new
        if new:  # the changed entry is in this file: only now is it seen, so it is held too
            changed = new.pop()
            del self.seen[last_seq]
            why = f"edited: its hash is not the prev of seq {line.seq}"
            self.check.held.append((changed, "edited", why))
            return Break(
                "edited",
                last_seq,
                changed.number,
                f"seq {last_seq} was changed: its hash does not match the prev of seq {line.seq}"
                f" (line {line.number})",
            )
        return Break(
            "edited",
            last_seq,
            line.number,
            f"seq {line.seq} does not continue the anchored seq {last_seq}: the entry received "
            "before was changed on the validator, or this one is not its successor",
        )


def check_file(
    lines: list[Line],
    validator: str,
    anchor: tuple[int, str],
    stored: Mapping[int, str],
) -> FileCheck:
    """Walk ``lines`` from ``anchor`` (seq, hash); ``stored``: hashes received at or below it."""
    check = FileCheck(validator, *anchor)
    walk = _Walk(check, stored)
    rest: Iterator[Line] = iter(lines)
    for line in rest:
        found = walk.problem(line)
        if found is None:
            continue
        check.breaks.append(found)
        why = f"{found.kind} at seq {found.seq}"
        check.held.append((line, found.kind, why))
        check.held.extend((after, found.kind, f"after the {why}") for after in rest)
    check.anchor_seq, check.anchor_hash = walk.cursor
    return check
