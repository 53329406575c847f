# SPDX-License-Identifier: Apache-2.0
"""Replay and export read from the office database: the same reports as from files.

A selection (a period, stations, validators) picks validators and, for each, the range of
sequence numbers that holds its taps in the period, widened to the records that belong to them:
those between the tap before and the first one selected (the closing intents written before its
Close), and, when no tap follows the last one selected, those after it (intents still open at
the end, as a replay of the files reads them). That range of its chain (taps and records, by
seq) is streamed back as journal lines, one journal per validator, merged by tap time as
files are (validator.journal.reading.merged), and replayed by the very code that replays files
(validator.office.replay.audit.replay_lines): the chain, the HMACs, the decisions, the MACs and
the reconciliation are checked as they are on files, and ``--since``/``--until`` select the
taps analysed as they do on files.

A line comes back as the writer wrote it: a tap's entry is stored as jsonb, which keeps neither
key order nor spacing, so its canonical form (validator.journal.writer.canonical: the writer's
one serialisation) is rebuilt, and the chain check recomputes its hash: a row changed inside
the database shows as an ``edited`` entry, as an edited file does. A record stored raw comes
back as its bytes. The integrity breaks recorded at ingestion for the validators selected are
problems of the report too: a replay from the database never says ``ok`` of a chain the
office found broken.

Export writes one file per validator of the rows of ``taps`` selected (the export's columns,
which ingestion stored), and refuses, writing nothing, when the office recorded an integrity
break for one of them, as export from files refuses a journal that fails its check.

A database that stores pseudonyms only (validator.office.database.privacy) keeps each entry
changed from the line received: its hash cannot be recomputed, so the chain is checked on the
hashes ingestion verified (each line's ``hash`` is the next one's ``prev``, the seqs follow):
a row deleted, inserted or reordered in the database still shows, a row whose content was
changed does not. The HMACs (checked at ingestion) cannot be checked again, nor the card MACs
(the traces are not kept): replay runs without the journal key and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import heapq
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from validator.journal.jsonline import loads
from validator.journal.reading import JournalSource, RawLine, tap_time_key
from validator.journal.writer import canonical
from validator.office.database.privacy import pseudonymised
from validator.office.database.schema import OfficeDatabaseError, connect, require_schema
from validator.office.export import COLUMNS, FORMATS, ExportResult, write_rows
from validator.office.pseudonym import Pseudonymiser
from validator.office.replay.audit import Progress, ReplayRequest, replay_lines
from validator.office.replay.findings import Problem
from validator.office.replay.report import ReplayReport

__all__ = ["DatabaseExport", "Selection", "export_database", "replay_database"]

FETCH = 2000  # rows fetched at a time from each validator's server-side cursor


@dataclass(frozen=True, slots=True)
class Selection:
    """Which taps: tap time in [since, until), at these stations, of these validators."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    stations: tuple[int, ...] = ()
    validators: tuple[str, ...] = ()


_WHERE = (
    " WHERE (%(since)s::timestamp IS NULL OR time >= %(since)s)"
    " AND (%(until)s::timestamp IS NULL OR time < %(until)s)"
    " AND (cardinality(%(stations)s::bigint[]) = 0 OR station = ANY(%(stations)s))"
    " AND (cardinality(%(validators)s::text[]) = 0 OR validator = ANY(%(validators)s))"
)


# Built once from constants (the export's column names): every value goes as a parameter.
_SELECTED = (
    f"WITH picked AS (SELECT validator, min(seq) AS lo, max(seq) AS hi FROM taps{_WHERE}"  # noqa: S608
    " GROUP BY validator)"
    " SELECT p.validator,"
    "  1 + COALESCE((SELECT max(t.seq) FROM taps t"
    "   WHERE t.validator = p.validator AND t.seq < p.lo), 0),"
    "  CASE WHEN EXISTS (SELECT 1 FROM taps t WHERE t.validator = p.validator AND t.seq > p.hi)"
    "   THEN p.hi ELSE GREATEST(p.hi, (SELECT max(r.seq) FROM records r"
    "   WHERE r.validator = p.validator)) END"
    " FROM picked p"
)
_EXPORT = f"SELECT {', '.join(COLUMNS)} FROM taps{_WHERE} ORDER BY seq"  # noqa: S608


def _params(selection: Selection) -> dict[str, Any]:
    return {
        "since": selection.since,
        "until": selection.until,
        "stations": list(selection.stations),
        "validators": list(selection.validators),
    }


def selected(conn: psycopg.Connection[Any], selection: Selection) -> list[tuple[str, int, int]]:
    """(validator, first seq, last seq) of each validator with a tap selected, by validator."""
    rows = conn.execute(_SELECTED + " ORDER BY p.validator", _params(selection)).fetchall()
    return [(str(v), int(first), int(last)) for v, first, last in rows]


def _lines(
    conn: psycopg.Connection[Any],
    index: int,
    validator: str,
    first: int,
    last: int,
    as_received: bool = False,
) -> Iterator[RawLine]:
    """A validator's chain from seq ``first`` to ``last`` as journal lines, by seq.

    ``as_received``: each line carries the hash of the line received (a pseudonymised entry).
    """
    place = f"office:{validator}"
    key = b""
    with conn.cursor(name=f"chain_{index}") as cur:
        cur.itersize = FETCH
        cur.execute(
            "SELECT seq, entry::text, line, hash FROM ("
            " SELECT seq, entry, NULL::bytea AS line, hash FROM taps"
            "  WHERE validator = %(v)s AND seq BETWEEN %(first)s AND %(last)s"
            " UNION ALL SELECT seq, entry, line, hash FROM records"
            "  WHERE validator = %(v)s AND seq BETWEEN %(first)s AND %(last)s"
            ") chain ORDER BY seq",
            {"v": validator, "first": first, "last": last},
        )
        for seq, text, raw, digest in cur:
            data = bytes(raw) if raw is not None else canonical(loads(text)).encode("utf-8")
            key = tap_time_key(data, key)
            received = str(digest) if as_received else ""
            yield RawLine(index, place, int(seq), data, key, True, digest=received)


def _recorded_breaks(
    conn: psycopg.Connection[Any], validators: Sequence[str]
) -> list[tuple[str, Problem]]:
    rows = conn.execute(
        "SELECT b.validator, b.kind, b.seq, b.detail, f.name, b.line FROM integrity_breaks b"
        " JOIN ingested_files f ON f.id = b.file_id WHERE b.validator = ANY(%s) ORDER BY b.id",
        (list(validators),),
    ).fetchall()
    return [
        (
            str(v),
            Problem(str(kind), str(name), int(line), int(seq), f"{detail} (found at ingestion)"),
        )
        for v, kind, seq, detail, name, line in rows
    ]


def replay_database(
    request: ReplayRequest,
    url: str,
    selection: Selection,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay the taps selected from the office database (``request.paths`` is not read).

    A database of pseudonyms is replayed without the journal key (see the module's notes).
    """
    try:
        with connect(url) as conn:
            require_schema(conn)
            as_received = pseudonymised(conn) is not None
            if as_received:
                options = dataclasses.replace(request.options, journal_key=None)
                request = dataclasses.replace(request, options=options)
            ranges = selected(conn, selection)
            sources = [
                JournalSource(index, Path(f"office:{validator}"), (), ())
                for index, (validator, _, _) in enumerate(ranges)
            ]
            streams = [_lines(conn, i, *span, as_received) for i, span in enumerate(ranges)]
            lines = heapq.merge(*streams, key=lambda line: line.key)
            report = replay_lines(request, sources, lines, progress)
            breaks = _recorded_breaks(conn, [v for v, _, _ in ranges])
    except psycopg.Error as exc:
        raise OfficeDatabaseError(f"cannot read the office database: {exc}") from None
    by_validator = {v: chain for (v, _, _), chain in zip(ranges, report.chains, strict=True)}
    for validator, problem in breaks:
        by_validator[validator].add(problem)
    return report


@dataclass
class DatabaseExport:
    """What an export from the database wrote (nothing when a break was recorded)."""

    results: list[ExportResult]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """No integrity break recorded for the validators selected: the files were written."""
        return not self.problems

    @property
    def counts(self) -> dict[str, int]:
        """The recorded breaks, counted by kind."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.kind] = counts.get(problem.kind, 0) + 1
        return counts


def _rows(
    conn: psycopg.Connection[Any],
    validator: str,
    selection: Selection,
    pseudonyms: Pseudonymiser | None,
) -> Iterator[Any]:
    params = {**_params(selection), "validators": [validator]}
    with conn.cursor(name="export_rows") as cur:
        cur.itersize = FETCH
        cur.execute(_EXPORT, params)
        for values in cur:
            out = dict(zip(COLUMNS, values, strict=True))
            if pseudonyms is not None:
                out["card"] = pseudonyms.card(out["card"])
            yield out


def export_database(
    url: str,
    selection: Selection,
    out: Path,
    fmt: str,
    pseudonymiser: Pseudonymiser | None = None,
) -> DatabaseExport:
    """Write one file per validator selected under ``out``, unless a break was recorded.

    ``pseudonymiser``: write pseudonyms instead of card serials. A database that stores
    pseudonyms only holds them already: then the key given must be the database's
    (OfficeDatabaseError otherwise), and without one its pseudonyms are written as stored.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    report = DatabaseExport([], [])
    temporaries: list[tuple[Path, Path]] = []
    try:
        with connect(url) as conn:
            require_schema(conn)
            key_id = pseudonymised(conn)
            if key_id is not None and pseudonymiser is not None and pseudonymiser.key_id != key_id:
                raise OfficeDatabaseError(
                    f"the office key given (key id {pseudonymiser.key_id}) is not the one of the "
                    f"database's pseudonyms (key id {key_id}): nothing exported"
                )
            pseudonyms = pseudonymiser if key_id is None else None
            validators = [v for v, _, _ in selected(conn, selection)]
            report.problems = [p for _, p in _recorded_breaks(conn, validators)]
            if report.problems:
                return report
            out.mkdir(parents=True, exist_ok=True)
            for validator in validators:
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", validator)
                path = out / f"taps-{name}.{fmt}"
                temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                temporaries.append((temporary, path))
                rows = _rows(conn, validator, selection, pseudonyms)
                count = write_rows(temporary, fmt, rows)
                report.results.append(ExportResult(path, count, 0))
        for temporary, path in temporaries:  # only once every file is complete
            os.replace(temporary, path)
    except psycopg.Error as exc:
        raise OfficeDatabaseError(f"cannot read the office database: {exc}") from None
    finally:
        for temporary, _ in temporaries:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return report
