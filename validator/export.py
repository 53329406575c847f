# SPDX-License-Identifier: Apache-2.0
"""Export journals to flat columnar files for the back office: one row per tap.

One output file per journal (validator), Parquet (pyarrow, zstd) or CSV, written in batches so
memory stays bounded. A folder of such files is a dataset DuckDB, Spark or Trino read as one
table (e.g. ``SELECT ... FROM 'DIR/*.parquet'``).

Each file is written under a temporary name and renamed only once it is complete: a failed
export leaves no partial or empty file that a query would take for the journal (issue 15.13).
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from validator.replay_decisions import parse_time
from validator.replay_json import loads
from validator.replay_source import JournalSource, discover, read_journal

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


def mac_status(entry: dict[str, Any]) -> str:
    """The journal's MAC status: verified by the SAM at the gate, signed but not verified, none."""
    if entry.get("mac_verified"):
        return "verified"
    return "not_verified" if entry.get("card_mac") else "none"


def row(entry: dict[str, Any]) -> dict[str, Any]:
    """The flat row of one journal entry."""
    decision = entry.get("decision") or {}
    resolves = entry.get("resolves") or {}
    return {
        "time": parse_time(str(entry.get("tap_time") or entry["time"])),
        "validator": entry.get("validator"),
        "station": entry.get("station"),
        "seq": entry.get("seq"),
        "card": entry.get("card"),
        "product_type": entry.get("product_type"),
        "product": decision.get("product"),
        "outcome": entry.get("outcome"),
        "reason": entry.get("reason"),
        "contract": decision.get("contract"),
        "debit": entry.get("debit"),
        "remaining": decision.get("remaining"),
        "latency_ms": entry.get("ms"),
        "mac_status": mac_status(entry),
        "attempts": entry.get("attempts"),
        "recovered_from_tap": entry.get("recovered_from_tap"),
        "resolves_seq": resolves.get("seq"),
        "resolves_committed": resolves.get("committed"),
        "journal_time": entry.get("time"),
    }


def _entries(source: JournalSource, skipped: list[int]) -> Iterator[dict[str, Any]]:
    for raw in read_journal(source):
        try:
            entry = loads(raw.data)
            if not raw.terminated or not isinstance(entry, dict):
                raise ValueError("torn")
            yield row(entry)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            skipped[0] += 1  # not an entry, or one of the wrong shape (an edited line)


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= BATCH_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _name(source: JournalSource, used: set[str]) -> str:
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


def export(
    paths: Sequence[Path],
    out: Path,
    fmt: str,
    progress: Callable[[int], None] | None = None,
) -> list[ExportResult]:
    """Write one file per journal under ``out`` (created); returns what was written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    sources = discover(paths)
    out.mkdir(parents=True, exist_ok=True)
    written: list[ExportResult] = []
    used: set[str] = set()
    for source in sources:
        path = out / f"taps-{_name(source, used)}.{fmt}"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        skipped = [0]
        rows = _entries(source, skipped)
        try:
            if fmt == "parquet":
                count = _write_parquet(temporary, rows)
            else:
                count = _write_csv(temporary, rows)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        written.append(ExportResult(path, count, skipped[0]))
        if progress is not None:
            progress(source.size)
    return written
