# SPDX-License-Identifier: Apache-2.0
"""What the trusted entries of a file become: rows of taps, records and unknown taps, stored.

A tap (an entry with an ``outcome`` and no other ``kind``) gets a row of the export's columns
(validator.office.export.row) in ``taps``, with its hash, prev and raw entry; any other kind,
which a newer validator may write (a record this release does not know as a tap), is stored
raw with its kind in ``records``, never dropped; so is a tap this release cannot read, with the
reason in ``note``, and an entry jsonb cannot hold (a NUL character, a lone surrogate), as its
bytes. A value PostgreSQL would refuse (a number beyond bigint) never fails the file's
transaction: the entry goes to ``records`` raw, or the value to NULL where it is no export
column.

With a pseudonymiser (a database that stores pseudonyms only,
validator.office.database.privacy), every entry is stored as Pseudonymiser.entry makes it (card
pseudonymised, no trace, no copy of the serial), after its line was checked as received; its
hash and prev stay those of the line received, which the chain goes on from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from validator.journal.entry import JournalEntry
from validator.journal.writer import canonical
from validator.office.database.chain import FileCheck, Line, utf8
from validator.office.export import COLUMNS, row
from validator.office.pseudonym import Pseudonymiser
from validator.office.replay.decisions import parse_time

__all__ = ["TAP", "Rows", "build_rows", "entry_kind", "fits", "store_rows"]

TAP = "tap"
_BIGINT = (-(2**63), 2**63 - 1)
_TAP_COLUMNS = (*COLUMNS, "hash", "prev", "entry", "file_id")
_RECORD_COLUMNS = ("validator", "seq", "kind", "note", "hash", "prev", "entry", "line", "file_id")
_KIND = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


def entry_kind(entry: dict[str, Any]) -> str:
    """An entry's record kind: its ``kind`` field, else ``tap`` for an entry with an outcome."""
    kind = entry.get("kind")
    if isinstance(kind, str) and _KIND.fullmatch(kind) and utf8(kind):
        return kind
    return TAP if "outcome" in entry and kind is None else "untyped"


def fits(values: Sequence[Any]) -> bool:
    """Every integer fits PostgreSQL's bigint (a hostile entry may hold larger ones)."""
    low, high = _BIGINT
    return all(low <= v <= high for v in values if isinstance(v, int))


def _stored(line: Line, pseudonyms: Pseudonymiser | None) -> dict[str, Any]:
    """The entry as the database keeps it: as read, or pseudonymised."""
    assert line.entry is not None  # noqa: S101 - only entries are trusted
    return line.entry if pseudonyms is None else pseudonyms.entry(line.entry)


def _text(line: Line, stored: dict[str, Any], pseudonyms: Pseudonymiser | None) -> str:
    """The jsonb text of a trusted line (the line itself, or its pseudonymised entry)."""
    return line.data.decode("utf-8") if pseudonyms is None else canonical(stored)


def _raw(line: Line, stored: dict[str, Any], pseudonyms: Pseudonymiser | None) -> bytes:
    """The bytes of a line jsonb cannot hold (pseudonymised: JSON with every escape kept)."""
    if pseudonyms is None:
        return line.data
    return json.dumps(stored, sort_keys=True, separators=(",", ":")).encode("ascii")


def _tap_row(
    line: Line, file_id: int, pseudonyms: Pseudonymiser | None
) -> tuple[tuple[Any, ...] | None, JournalEntry | None, str]:
    """The taps row of a line, its entry, and why not when it cannot be one."""
    assert line.entry is not None  # noqa: S101 - only entries are trusted
    if not line.jsonb_safe:
        return None, None, "stored raw: a NUL character or lone surrogate jsonb cannot hold"
    try:
        stored = _stored(line, pseudonyms)
        entry = JournalEntry.from_json(stored)
        values = row(entry)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        return None, None, f"not a readable tap: {exc}"
    if not fits(list(values.values())):
        return None, None, "not a readable tap: a number beyond 64 bits"
    text = _text(line, stored, pseudonyms)
    out = (*values.values(), line.digest, line.prev, text, file_id)
    return out, entry, ""


def _unknown_values(validator: str, entry: JournalEntry) -> tuple[Any, ...]:
    counter = entry.transaction_counter  # not an export column: checked here
    return (
        validator,
        entry.seq,
        parse_time(entry.when),
        entry.card,
        counter if fits((counter,)) else None,
        entry.debit,
    )


def _resolution(validator: str, entry: JournalEntry) -> tuple[Any, ...] | None:
    resolves = entry.resolves
    if resolves is None:
        return None
    values = (validator, resolves.seq, entry.seq, resolves.committed, resolves.debit)
    return (*values, parse_time(entry.when)) if fits(values) else None


@dataclass
class Rows:
    taps: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    unknown: list[tuple[Any, ...]] = field(default_factory=list)
    resolved: list[tuple[Any, ...]] = field(default_factory=list)
    last_time: str | None = None


def build_rows(
    check: FileCheck, file_of: Callable[[Line], int], pseudonyms: Pseudonymiser | None = None
) -> Rows:
    """The rows of every new trusted line, by table (``file_of``: the file it came in).

    ``pseudonyms``: store pseudonymised entries (the database stores pseudonyms only).
    """
    out = Rows()
    validator = check.validator
    for line in check.new:
        file_id = file_of(line)
        entry = line.entry
        assert entry is not None  # noqa: S101 - only entries are trusted
        time = entry.get("time")
        if line.jsonb_safe and isinstance(time, str) and len(time) <= 64:
            out.last_time = time
        kind = entry_kind(entry)
        note = ""
        if kind == TAP:
            values, tap, note = _tap_row(line, file_id, pseudonyms)
            if values is not None and tap is not None:
                out.taps.append(values)
                if tap.outcome == "unknown":
                    out.unknown.append(_unknown_values(validator, tap))
                resolved = _resolution(validator, tap)
                if resolved is not None:
                    out.resolved.append(resolved)
                continue
        safe = line.jsonb_safe
        if not safe:
            note = note or "stored raw: a NUL character or lone surrogate jsonb cannot hold"
        stored = _stored(line, pseudonyms)
        text = _text(line, stored, pseudonyms) if safe else None
        raw = None if safe else _raw(line, stored, pseudonyms)
        out.records.append(
            (validator, line.seq, kind, note or None) + (line.digest, line.prev, text, raw, file_id)
        )
    return out


def store_rows(conn: psycopg.Connection[Any], rows: Rows) -> None:
    """Copy the new taps and records in, then note unknown taps and their resolutions."""
    with conn.cursor() as cur:
        if rows.taps:
            with cur.copy(f"COPY taps ({', '.join(_TAP_COLUMNS)}) FROM STDIN") as copy:
                for values in rows.taps:
                    copy.write_row(values)
        if rows.records:
            with cur.copy(f"COPY records ({', '.join(_RECORD_COLUMNS)}) FROM STDIN") as copy:
                for values in rows.records:
                    copy.write_row(values)
        if rows.unknown:
            cur.executemany(
                "INSERT INTO unknown_taps (validator, seq, tap_time, card, transaction_counter,"
                " debit_sent) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (validator, seq)"
                " DO UPDATE SET tap_time = EXCLUDED.tap_time, card = EXCLUDED.card,"
                " transaction_counter = EXCLUDED.transaction_counter,"
                " debit_sent = EXCLUDED.debit_sent",
                rows.unknown,
            )
        if rows.resolved:  # a resolution is kept even when its unknown tap was never received
            cur.executemany(
                "INSERT INTO unknown_taps (validator, seq, resolved_by_seq, committed, debit,"
                " resolved_time) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (validator, seq)"
                " DO UPDATE SET resolved_by_seq = EXCLUDED.resolved_by_seq,"
                " committed = EXCLUDED.committed, debit = EXCLUDED.debit,"
                " resolved_time = EXCLUDED.resolved_time",
                rows.resolved,
            )
