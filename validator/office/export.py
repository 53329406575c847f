# SPDX-License-Identifier: Apache-2.0
"""Export journals to flat columnar files for the back office: one row per tap.

One output file per journal (validator), Parquet (pyarrow, zstd) or CSV, written in batches so
memory stays bounded. A folder of such files is a dataset DuckDB, Spark or Trino read as one
table (e.g. ``SELECT ... FROM 'DIR/*.parquet'``).

Each file is written under a temporary name and renamed only once it is complete: a failed
export leaves no partial or empty file that a query would take for the journal (issue 15.13).

Closing intents (validator.journal.intent) are not taps: they get no row, and each file's
result counts them (``intents``). The unknown tap a restart makes of an open intent is a tap:
it has its row (reason ``outcome_not_journaled``).

Export checks integrity as replay does (validator.office.replay.integrity: the chain, the
sequence, the HMACs with a journal key, the anchors) over the same lines it exports; if any
journal fails, no
file is renamed into place: a tampered journal never reaches the dataset (issue 15.19). A line
repeating a recent one verbatim is one tap: one row, reported as a duplicate.

With a pseudonymiser (``--pseudonymise KEYFILE``), the ``card`` column holds each serial's
pseudonym (validator.office.pseudonym), the same for one card and one key.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from validator.journal.entry import JournalEntry
from validator.journal.intent import ClosingIntent, read_record
from validator.journal.reading import JournalSource, RawLine, discover, read_journal
from validator.office.pseudonym import Pseudonymiser
from validator.office.replay.anchor import Anchor, AnchorCheck
from validator.office.replay.decisions import parse_time
from validator.office.replay.findings import Problem
from validator.office.replay.integrity import ChainChecker, check_overlaps, last_seqs
from validator.office.replay.line import entry_facts

FORMATS = ("parquet", "csv")
BATCH_ROWS = 10_000

SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us")),  # tap time, validator local time
        ("validator", pa.string()),
        ("station", pa.int64()),
        ("seq", pa.int64()),
        ("card", pa.string()),
        ("product_type", pa.string()),
        ("product", pa.string()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("contract", pa.int64()),
        ("debit", pa.int64()),
        ("remaining", pa.int64()),
        ("latency_ms", pa.float64()),
        ("mac_status", pa.string()),  # verified, not_verified (session signed), none
        ("attempts", pa.int64()),
        ("recovered_from_tap", pa.int64()),
        ("resolves_seq", pa.int64()),
        ("resolves_committed", pa.bool_()),
        ("journal_time", pa.string()),  # when the entry was written (ISO 8601, UTC)
    ]
)
COLUMNS = tuple(SCHEMA.names)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """One file written."""

    path: Path
    rows: int
    skipped: int  # lines that are not journal entries (torn, unreadable)
    duplicates: int = 0  # verbatim copies of a recent line, counted once
    intents: int = 0  # closing intents: records, not taps (no row)


@dataclass
class ExportReport:
    """What an export wrote (nothing when integrity failed) and what its check found."""

    results: list[ExportResult]
    chains: list[ChainChecker]
    anchors: AnchorCheck | None
    authenticated: bool

    @property
    def problems(self) -> list[Problem]:
        """Every integrity problem found (the first 1,000 of each journal)."""
        found = [p for chain in self.chains for p in chain.problems]
        return found + (self.anchors.problems if self.anchors is not None else [])

    @property
    def counts(self) -> dict[str, int]:
        """Every integrity problem, counted by kind."""
        counts: dict[str, int] = {}
        parts = [chain.counts for chain in self.chains]
        for part in parts + ([self.anchors.counts] if self.anchors is not None else []):
            for kind, n in part.items():
                counts[kind] = counts.get(kind, 0) + n
        return counts

    @property
    def ok(self) -> bool:
        """Integrity holds in every journal: the files were written."""
        return not self.counts


def mac_status(entry: JournalEntry) -> str:
    """The journal's MAC status: verified by the SAM at the gate, signed but not verified, none."""
    if entry.mac_verified:
        return "verified"
    return "not_verified" if entry.card_mac else "none"


def row(entry: JournalEntry) -> dict[str, Any]:
    """The flat row of one journal entry."""
    decision = entry.decision
    resolves = entry.resolves
    return {
        "time": parse_time(entry.when),
        "validator": entry.validator,
        "station": entry.station,
        "seq": entry.seq,
        "card": entry.card,
        "product_type": entry.product_type,
        "product": decision.product if decision is not None else None,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "contract": decision.contract if decision is not None else None,
        "debit": entry.debit,
        "remaining": decision.remaining if decision is not None else None,
        "latency_ms": entry.ms,
        "mac_status": mac_status(entry),
        "attempts": entry.attempts,
        "recovered_from_tap": entry.recovered_from_tap,
        "resolves_seq": resolves.seq if resolves is not None else None,
        "resolves_committed": resolves.committed if resolves is not None else None,
        "journal_time": entry.time,
    }


def entries(
    lines: Iterable[RawLine],
    chain: ChainChecker,
    key: bytes | None,
    skipped: list[int],
    pseudonyms: Pseudonymiser | None = None,
) -> Iterator[dict[str, Any]]:
    """The rows of a journal's taps (its ``lines`` in order), its chain checked on the way;
    ``skipped`` counts what is not one: [unreadable, intents]."""
    for raw in lines:
        if raw.duplicate_of:
            chain.duplicate(raw)
            continue
        facts, entry = entry_facts(raw.data, key)
        chain.feed(raw, facts)
        if not raw.terminated or entry is None or facts.seq is None:
            skipped[0] += 1  # a torn tail, or not an entry (an integrity problem)
            continue
        try:
            record = read_record(entry)
            if isinstance(record, ClosingIntent):
                skipped[1] += 1
                continue
            values = row(record)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            skipped[0] += 1  # an entry that does not read (EntryFormatError), or a bad time
            continue
        if pseudonyms is not None:
            values["card"] = pseudonyms.card(values["card"])
        yield values


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= BATCH_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dataset_name(source: JournalSource, used: set[str]) -> str:
    """The name of a journal's file in the dataset: its folder's, made unique."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.directory.name) or "journal"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name)
    return name


def _write_parquet(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for chunk in _chunks(rows):
            writer.write_table(pa.Table.from_pylist(chunk, schema=SCHEMA))
            count += len(chunk)
        if count == 0:
            writer.write_table(SCHEMA.empty_table())
    return count


def _write_csv(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for item in rows:
            item["time"] = item["time"].isoformat()
            writer.writerow(item)
            count += 1
    return count


def write_rows(path: Path, fmt: str, rows: Iterator[dict[str, Any]]) -> int:
    """Write ``rows`` (the export's columns) to one Parquet or CSV file; returns how many."""
    return (_write_parquet if fmt == "parquet" else _write_csv)(path, rows)


def export(
    paths: Sequence[Path],
    out: Path,
    fmt: str,
    progress: Callable[[int], None] | None = None,
    *,
    key: bytes | None = None,
    anchors: Sequence[Anchor] = (),
    pseudonymiser: Pseudonymiser | None = None,
) -> ExportReport:
    """Write one file per journal under ``out`` if integrity holds; returns what was found.

    ``pseudonymiser``: the card column holds pseudonyms instead of serials.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    sources = discover(paths)
    check = AnchorCheck(list(anchors)) if anchors else None
    report = ExportReport([], [ChainChecker(s, check) for s in sources], check, key is not None)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    temporaries: list[tuple[Path, Path]] = []
    try:
        for source, chain in zip(sources, report.chains, strict=True):
            path = out / f"taps-{dataset_name(source, used)}.{fmt}"
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temporaries.append((temporary, path))
            skipped = [0, 0]
            rows = entries(read_journal(source), chain, key, skipped, pseudonymiser)
            count = write_rows(temporary, fmt, rows)
            report.results.append(
                ExportResult(path, count, skipped[0], chain.duplicate_count, skipped[1])
            )
            if progress is not None:
                progress(source.size)
        publish(report, temporaries)
    finally:
        discard(temporaries)
    return report


def publish(report: ExportReport, staged: Sequence[tuple[Path, Path]]) -> None:
    """Check overlaps and anchors over every chain, then move the staged files into place
    only if integrity holds (a tampered journal never reaches the dataset)."""
    check_overlaps(report.chains)  # the same taps twice in the dataset: refused
    if report.anchors is not None:
        report.anchors.finish(last_seqs(report.chains))
    if report.ok:
        for temporary, path in staged:
            os.replace(temporary, path)


def discard(staged: Sequence[tuple[Path, Path]]) -> None:
    """Remove the staged files that were not moved into place."""
    for temporary, _ in staged:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
