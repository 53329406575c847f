# SPDX-License-Identifier: Apache-2.0
"""Ingestion of journal files into the office database: idempotent, one transaction per file.

``ingest_file`` takes one file's bytes (what the collector receives) and, in one transaction:
records the file by its SHA-256 (the same bytes again add nothing), locks its validator's row
(two files of one validator are ingested one after the other), checks the file's chain from the
validator's anchor (validator.office.database.chain), stores what is new and trusted, records
the breaks and holds what follows them, then moves the anchor. A failure of the database rolls
the whole file back: nothing of it is stored, and the sender still holds it.

What the trusted entries become is validator.office.database.rows' (taps, records of other
kinds, unknown taps and their resolutions). Entries held for a gap (a file that arrived before
the one it follows) are taken in once a later file fills it (``_resume``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from validator.journal.reading import discover, open_journal_file
from validator.journal.writer import GENESIS
from validator.office.database.chain import (
    Break,
    FileCheck,
    Line,
    check_file,
    file_validator,
    known_seqs,
    read_lines,
    valid_validator_id,
)
from validator.office.database.privacy import database_pseudonymiser
from validator.office.database.rows import Rows, build_rows, fits, store_rows
from validator.office.database.schema import OfficeDatabaseError, connect, require_schema
from validator.office.pseudonym import Pseudonymiser

__all__ = ["IngestError", "IngestResult", "ingest_file", "ingest_paths"]

MAX_FILE = 256 * 1024 * 1024  # a journal file rotates at 16 MiB by default


class IngestError(ValueError):
    """A file that cannot be ingested as it is (no validator named, too large): nothing stored."""


@dataclass
class IngestResult:
    """What one file added (``status``: ingested, or already_ingested: the same bytes before)."""

    name: str
    digest: str
    validator: str | None
    status: str = "ingested"
    entries: int = 0  # lines read (terminated, non-blank)
    new_taps: int = 0
    new_records: int = 0
    duplicates: int = 0
    held: int = 0
    torn: int = 0
    resumed: int = 0  # held entries (of files received earlier) this file's entries continue
    breaks: list[Break] = field(default_factory=list)
    anchor: tuple[int, str] | None = None  # the validator's anchor after the file (seq, hash)

    @property
    def ok(self) -> bool:
        """No break of the chain in this file."""
        return not self.breaks

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON: ``office ingest --json`` prints it, the collector answers it."""
        anchor = self.anchor
        return {
            "file": self.name,
            "digest": self.digest,
            "validator": self.validator,
            "status": self.status,
            "entries": self.entries,
            "new_taps": self.new_taps,
            "new_records": self.new_records,
            "duplicates": self.duplicates,
            "held": self.held,
            "resumed": self.resumed,
            "torn": self.torn,
            "breaks": [
                {"kind": b.kind, "seq": b.seq, "line": b.line, "detail": b.detail}
                for b in self.breaks
            ],
            "anchor": (
                {"validator": self.validator, "seq": anchor[0], "hash": anchor[1]}
                if anchor
                else None
            ),
        }


def ingest_file(
    conn: psycopg.Connection[Any],
    name: str,
    data: bytes,
    *,
    key: bytes | None = None,
    validator: str | None = None,
    pseudonymiser: Pseudonymiser | None = None,
) -> IngestResult:
    """Ingest one journal file's bytes in one transaction; returns what it added.

    ``key``: the journal key (each entry's HMAC is checked). ``validator``: the validator the
    sender is known to be (the collector knows it from its certificate): every entry must name
    it. ``pseudonymiser``: the office key's, required by (and only by) a database that stores
    pseudonyms only (validator.office.database.privacy). IngestError when the file cannot be
    taken as it is; OfficeDatabaseError when the database fails or the office key is not the
    database's (then nothing of the file is stored).
    """
    if len(data) > MAX_FILE:
        raise IngestError(f"{name}: {len(data)} bytes, more than a journal file ({MAX_FILE})")
    if validator is not None and not valid_validator_id(validator):
        raise IngestError(f"{name}: {validator!r} is not a validator id")
    digest = hashlib.sha256(data).hexdigest()
    # A file name is bytes on Linux: one that is not UTF-8 is kept readable, escaped.
    name = name.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")[:1024]
    try:
        with conn.transaction():
            earlier = _earlier(conn, name, digest)
        if earlier is not None:  # these very bytes were ingested before: not even read again
            return earlier
        lines, torn = read_lines(data, key)
        who = validator or file_validator(lines)
        if who is None:
            if not lines:  # empty, or only an unfinished line: nothing to ingest yet
                return IngestResult(name, digest, None, status="empty", torn=torn)
            raise IngestError(f"{name}: no journal entry names its validator: nothing ingested")
        with conn.transaction():
            pseudonyms = database_pseudonymiser(conn, pseudonymiser)
            return _ingest(conn, name, digest, len(data), lines, torn, who, key, pseudonyms)
    except psycopg.Error as exc:
        raise OfficeDatabaseError(f"{name}: not ingested (nothing stored): {exc}") from None


def _earlier(conn: psycopg.Connection[Any], name: str, digest: str) -> IngestResult | None:
    """The result for a file whose bytes were ingested before (its validator's anchor now)."""
    found = conn.execute(
        "SELECT f.validator, v.last_seq, v.last_hash FROM ingested_files f"
        " LEFT JOIN validators v ON v.id = f.validator WHERE f.digest = %s",
        (digest,),
    ).fetchone()
    if found is None:
        return None
    anchor = (int(found[1]), str(found[2])) if found[1] is not None else None
    return IngestResult(name, digest, found[0], status="already_ingested", anchor=anchor)


def _ingest(
    conn: psycopg.Connection[Any],
    name: str,
    digest: str,
    size: int,
    lines: list[Line],
    torn: int,
    who: str,
    key: bytes | None,
    pseudonyms: Pseudonymiser | None,
) -> IngestResult:
    result = IngestResult(name, digest, who, entries=len(lines), torn=torn)
    found = conn.execute(
        "INSERT INTO ingested_files (name, digest, size, validator, entries, new_entries,"
        " duplicates, held, breaks) VALUES (%s, %s, %s, %s, %s, 0, 0, 0, 0)"
        " ON CONFLICT (digest) DO NOTHING RETURNING id",
        (name, digest, size, who, len(lines)),
    ).fetchone()
    conn.execute(
        "INSERT INTO validators (id, last_seq, last_hash) VALUES (%s, 0, %s)"
        " ON CONFLICT (id) DO NOTHING",
        (who, GENESIS),
    )
    anchor = conn.execute(
        "SELECT last_seq, last_hash FROM validators WHERE id = %s FOR UPDATE", (who,)
    ).fetchone()
    assert anchor is not None  # noqa: S101 - inserted just above
    if found is None:  # the same bytes, ingested meanwhile by another session: nothing to add
        result.status = "already_ingested"
        result.anchor = (int(anchor[0]), str(anchor[1]))
        return result
    file_id = int(found[0])
    seqs = known_seqs(lines, int(anchor[0]))
    stored: dict[int, str] = {}
    if seqs:
        for seq, known in conn.execute(
            "SELECT seq, hash FROM taps WHERE validator = %(v)s AND seq = ANY(%(s)s)"
            " UNION ALL SELECT seq, hash FROM records WHERE validator = %(v)s AND seq = ANY(%(s)s)"
            # entries deleted by retention: a file sent again is still the one received
            " UNION ALL SELECT seq, hash FROM retained_chain"
            " WHERE validator = %(v)s AND seq = ANY(%(s)s)",
            {"v": who, "s": seqs},
        ):
            stored[int(seq)] = str(known)
    check = check_file(lines, who, (int(anchor[0]), str(anchor[1])), stored)
    rows = build_rows(check, lambda _: file_id, pseudonyms)
    store_rows(conn, rows)
    _record_problems(conn, check, file_id)
    head = (check.anchor_seq, check.anchor_hash)
    resumed = Rows()
    if check.new:  # the anchor moved: entries held for a gap may continue it now
        head, resumed = _resume(conn, who, head, key, file_id, pseudonyms)
    conn.execute(
        "UPDATE validators SET last_seq = %s, last_hash = %s,"
        " last_time = coalesce(%s, %s, last_time), updated_at = now() WHERE id = %s",
        (head[0], head[1], resumed.last_time, rows.last_time, who),
    )
    conn.execute(
        "UPDATE ingested_files SET new_entries = %s, duplicates = %s, held = %s, breaks = %s"
        " WHERE id = %s",
        (len(check.new), check.duplicates, len(check.held), len(check.breaks), file_id),
    )
    result.new_taps, result.new_records = len(rows.taps), len(rows.records)
    result.duplicates, result.held = check.duplicates, len(check.held)
    result.breaks = check.breaks
    result.resumed = len(resumed.taps) + len(resumed.records)
    result.anchor = head
    return result


def _resume(
    conn: psycopg.Connection[Any],
    validator: str,
    anchor: tuple[int, str],
    key: bytes | None,
    file_id: int,
    pseudonyms: Pseudonymiser | None = None,
) -> tuple[tuple[int, str], Rows]:
    """Take in the entries held for a gap that now continue ``anchor``: a file that arrived
    before the one it follows (or after a file lost in transit, sent again). Returns the new
    anchor and what was stored.

    Only lines held for a ``missing`` break, from earlier files, are candidates: a file's own
    breaks, and every other kind (edited, replaced, restarted...), hold for good. They are
    walked by seq exactly as a file is (check_file, from the anchor, with the key): those that
    chain are stored with the file they came in and leave the hold; the walk stops at the first
    that does not. The break recorded when they were held stays, as the history of what
    arrived. Held copies of entries now trusted (the same hash at the same seq) are dropped:
    nothing is lost.
    """
    conn.execute(  # driven by the held rows (few, usually none), each looked up by its seq
        "DELETE FROM held_entries h WHERE h.validator = %(v)s AND h.seq <= %(seq)s AND ("
        " EXISTS (SELECT 1 FROM taps t WHERE t.validator = %(v)s AND t.seq = h.seq"
        "  AND t.hash = h.hash)"
        " OR EXISTS (SELECT 1 FROM records r WHERE r.validator = %(v)s AND r.seq = h.seq"
        "  AND r.hash = h.hash)"
        " OR EXISTS (SELECT 1 FROM retained_chain c WHERE c.validator = %(v)s AND c.seq = h.seq"
        "  AND c.hash = h.hash))",
        {"v": validator, "seq": anchor[0]},
    )
    held = conn.execute(
        "SELECT line, file_id FROM held_entries WHERE validator = %s AND seq > %s"
        " AND kind = 'missing' AND file_id <> %s ORDER BY seq, file_id, line_number",
        (validator, anchor[0], file_id),
    ).fetchall()
    if not held:
        return anchor, Rows()
    data = b"".join(bytes(line) + b"\n" for line, _ in held)
    lines, _ = read_lines(data, key)  # numbered 1.. in the order held (no blank line)
    check = check_file(lines, validator, anchor, {})
    if not check.new:
        return anchor, Rows()
    rows = build_rows(check, lambda line: int(held[line.number - 1][1]), pseudonyms)
    store_rows(conn, rows)
    conn.execute(
        "DELETE FROM held_entries WHERE validator = %s AND hash = ANY(%s)",
        (validator, [line.digest for line in check.new]),
    )
    return (check.anchor_seq, check.anchor_hash), rows


def _record_problems(conn: psycopg.Connection[Any], check: FileCheck, file_id: int) -> None:
    """The breaks (once per validator, kind and seq) and the held lines (once per hash)."""
    with conn.cursor() as cur:
        if check.breaks:
            cur.executemany(
                "INSERT INTO integrity_breaks (validator, seq, kind, detail, file_id, line)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (validator, kind, seq) DO NOTHING",
                [(check.validator, b.seq, b.kind, b.detail, file_id, b.line) for b in check.breaks],
            )
        if check.held:
            cur.executemany(
                "INSERT INTO held_entries (validator, hash, seq, kind, reason, line, size,"
                " file_id, line_number) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (validator, hash) DO NOTHING",
                [
                    (
                        check.validator,
                        line.digest,
                        line.seq if line.seq is not None and fits((line.seq,)) else None,
                        kind,
                        why,
                        line.data,
                        line.size,
                        file_id,
                        line.number,
                    )
                    for line, kind, why in check.held
                ],
            )


def ingest_paths(
    url: str,
    paths: Sequence[Path],
    *,
    key: bytes | None = None,
    pseudonymiser: Pseudonymiser | None = None,
) -> list[IngestResult | IngestError]:
    """Ingest every journal file under ``paths``, each journal's files oldest first.

    A file that cannot be taken (IngestError) is reported in the list and the others go on;
    a database failure (OfficeDatabaseError) stops the run: the files before it are in.
    """
    sources = discover(paths)  # ReplayInputError when no journal file is there
    results: list[IngestResult | IngestError] = []
    with connect(url) as conn:
        require_schema(conn)
        database_pseudonymiser(conn, pseudonymiser)  # refused before any file is read
        conn.commit()
        for source in sources:
            for path in source.files:
                try:
                    with open_journal_file(path) as handle:
                        data = handle.read(MAX_FILE + 1)
                    results.append(
                        ingest_file(conn, str(path), data, key=key, pseudonymiser=pseudonymiser)
                    )
                except IngestError as exc:
                    results.append(exc)
    return results
