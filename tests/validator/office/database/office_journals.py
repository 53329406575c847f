# SPDX-License-Identifier: Apache-2.0
"""Journals for the office database tests, written by the real journal writer from demo runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from conftest import CONFIG

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.journal.writer import Journal, canonical, journal_files

JOURNAL_KEY = bytes(range(32))
START = dt.datetime(2026, 3, 2, 7, 0)


def write_journal(
    directory: Path,
    *,
    key: bytes | None = JOURNAL_KEY,
    taps: int = 60,
    seed: int = 5,
    validator: str = "validator-1",
    start: dt.datetime = START,
) -> list[Path]:
    """A demo journal of ``taps`` taps in several files (tears: unknown taps and a resolution).

    Run again on the same directory, it continues the journal. Returns its files, oldest first.
    """
    settings = load_settings(CONFIG).model_copy(update={"validator_id": validator})
    with Journal(directory, key=key, max_bytes=40_000, validator_id=validator) as journal:
        run_demo(
            CONFIG, settings, taps=taps, seed=seed, start=start, journal=journal, tear_rate=0.3
        )
    return journal_files(directory)


def lines_of(files: list[Path]) -> list[str]:
    """Every line of ``files`` in order, without newlines."""
    return [line for path in files for line in path.read_text(encoding="utf-8").splitlines()]


def is_intent(line: str) -> bool:
    """Whether a journal line is a closing intent (a record, not a tap: no taps row)."""
    return '"kind":"intent"' in line


def tap_lines(lines: list[str]) -> list[str]:
    """The lines of ``lines`` that are taps (the closing intents left out)."""
    return [line for line in lines if not is_intent(line)]


def entries_of(files: list[Path]) -> list[dict[str, Any]]:
    """Every entry of ``files`` in order."""
    return [json.loads(line) for line in lines_of(files)]


def data(lines: list[str]) -> bytes:
    """A file's bytes holding ``lines``."""
    return "".join(line + "\n" for line in lines).encode("utf-8")


def changed(line: str, **fields: Any) -> str:
    """``line`` with ``fields`` changed (its hash changes; its HMAC no longer verifies)."""
    entry = json.loads(line)
    entry.update(fields)
    return canonical(entry)


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of one query on the office database."""
    import psycopg

    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql, params or None)
        return list(cursor.fetchall()) if cursor.description else []


def count(url: str, table: str) -> int:
    """The number of rows of ``table``."""
    return int(query(url, f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 - test tables
