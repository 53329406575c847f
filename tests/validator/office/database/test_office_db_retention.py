# SPDX-License-Identifier: Apache-2.0
"""``validator office retention``: card-level data older than N days deleted, aggregates kept."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from office_journals import JOURNAL_KEY, changed, data, lines_of, query, write_journal

from validator.cli.main import main
from validator.journal.writer import journal_files

pytest_plugins = ["postgres_fixtures"]
psycopg = pytest.importorskip("psycopg")

from validator.office.database.ingest import ingest_file, ingest_paths  # noqa: E402

NOW = dt.datetime.now().replace(microsecond=0)
OLD = NOW - dt.timedelta(days=40)
RECENT = NOW - dt.timedelta(days=2)


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """validator-1: 60 taps 40 days ago; validator-2: 40 taps 2 days ago."""
    root = tmp_path_factory.mktemp("retention")
    write_journal(root / "validator-1", start=OLD)
    write_journal(root / "validator-2", validator="validator-2", taps=40, seed=8, start=RECENT)
    return root


@pytest.fixture
def loaded(office_db: str, journals: Path) -> str:
    """The office database holding both journals."""
    results = ingest_paths(office_db, [journals], key=JOURNAL_KEY)
    assert all(not isinstance(r, Exception) and r.ok for r in results)
    return office_db


def retention(url: str, *args: str) -> tuple[int, dict[str, Any] | str, str]:
    """``validator office retention --db URL ARGS``: exit code, JSON document or stdout, stderr."""
    result = CliRunner().invoke(main, ["office", "retention", "--db", url, *args])
    out: dict[str, Any] | str = result.stdout
    if "--json" in args and result.exit_code == 0:
        out = json.loads(result.stdout)
    return result.exit_code, out, result.stderr


def per_hour(url: str, validator: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Taps and revenue per station, hour and outcome of one validator, computed from ``taps``."""
    rows = query(
        url,
        "SELECT station, date_trunc('hour', time), outcome, count(*), coalesce(sum(debit), 0)"
        " FROM taps WHERE validator = %s GROUP BY 1, 2, 3",
        validator,
    )
    return {(s, h, o): (int(n), int(r)) for s, h, o, n, r in rows}


def aggregates(url: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    """The rows of ``tap_aggregates``."""
    rows = query(url, "SELECT station, hour, outcome, taps, revenue FROM tap_aggregates")
    return {(s, h, o): (int(n), int(r)) for s, h, o, n, r in rows}


def test_old_taps_become_aggregates(loaded: str, journals: Path) -> None:
    """Taps older than N days are deleted, their counts and debits kept per station and hour."""
    before = per_hour(loaded, "validator-1")
    assert sum(n for n, _ in before.values()) == 60
    code, doc, err = retention(loaded, "--days", "30", "--json")
    assert code == 0, err
    assert isinstance(doc, dict) and doc["taps"] == 60 and doc["kept_taps"] == 40
    assert aggregates(loaded) == before
    assert query(loaded, "SELECT DISTINCT validator FROM taps") == [("validator-2",)]
    heads = [len(lines_of(journal_files(journals / v))) for v in ("validator-1", "validator-2")]
    assert query(loaded, "SELECT last_seq FROM validators ORDER BY id") == [(n,) for n in heads]


def test_unknown_taps_keep_their_resolution_not_their_card(loaded: str) -> None:
    """An old unknown tap loses its card, keeps its resolution; a recent one keeps its card."""
    old = "SELECT count(*) FROM unknown_taps WHERE validator = 'validator-1'"
    count_before = query(loaded, old)
    assert retention(loaded, "--days", "30")[0] == 0
    assert query(loaded, old) == count_before and count_before[0][0] > 0
    assert query(loaded, old + " AND card IS NOT NULL") == [(0,)]
    recent = "SELECT count(*) FROM unknown_taps WHERE validator = 'validator-2' AND card IS NULL"
    assert query(loaded, recent) == [(0,)]


def test_idempotent(loaded: str) -> None:
    """A second run deletes nothing and leaves the aggregates as they were."""
    assert retention(loaded, "--days", "30")[0] == 0
    first = aggregates(loaded)
    code, doc, _ = retention(loaded, "--days", "30", "--json")
    assert code == 0 and isinstance(doc, dict)
    assert (doc["taps"], doc["records"], doc["held"], doc["unknown_cards"]) == (0, 0, 0, 0)
    assert aggregates(loaded) == first


def test_prints_what_it_deleted_and_kept(loaded: str) -> None:
    """The text output says the taps deleted and what was kept."""
    code, out, _ = retention(loaded, "--days", "30")
    assert code == 0 and isinstance(out, str)
    assert "deleted: 60 taps" in out and "40 taps younger than the cut-off" in out


@pytest.mark.parametrize("days", ["0", "-3"])
def test_days_below_one_refused(loaded: str, days: str) -> None:
    """--days below 1 is refused (exit 2) and nothing is deleted."""
    code, _, err = retention(loaded, "--days", days)
    assert code == 2 and "--days" in err
    assert query(loaded, "SELECT count(*) FROM taps") == [(100,)]


def test_ingestion_goes_on_after_retention(loaded: str, journals: Path, tmp_path: Path) -> None:
    """After retention: a file sent again adds nothing and breaks nothing; new taps chain on."""
    assert retention(loaded, "--days", "30")[0] == 0
    lines = lines_of(journal_files(journals / "validator-1"))
    with psycopg.connect(loaded) as conn:  # other bytes, the same taps
        again = ingest_file(conn, "resent", data(lines), key=JOURNAL_KEY)
    assert again.ok and again.duplicates == len(lines) and again.new_taps == 0
    continued = tmp_path / "validator-1"
    shutil.copytree(journals / "validator-1", continued)
    write_journal(continued, taps=10, seed=9, start=NOW - dt.timedelta(hours=5))
    results = ingest_paths(loaded, [continued], key=JOURNAL_KEY)
    assert all(not isinstance(r, Exception) and r.ok for r in results)
    last = len(lines_of(journal_files(continued)))  # 70 taps and their closing intents
    assert query(loaded, "SELECT last_seq FROM validators WHERE id = 'validator-1'") == [(last,)]
    assert query(loaded, "SELECT count(*) FROM integrity_breaks") == [(0,)]


def test_held_lines_of_old_files_are_deleted(loaded: str, journals: Path) -> None:
    """Lines held after a break, from files received before the cut-off, are deleted."""
    lines = lines_of(journal_files(journals / "validator-2"))
    with psycopg.connect(loaded) as conn:  # seq 1 again, changed: a break, the line held
        ingest_file(conn, "tampered", data([changed(lines[0], debit=999)]), key=JOURNAL_KEY)
    query(loaded, "UPDATE ingested_files SET received_at = now() - interval '31 days'")
    held = query(loaded, "SELECT count(*) FROM held_entries")[0][0]
    code, doc, _ = retention(loaded, "--days", "30", "--json")
    assert held > 0 and code == 0 and isinstance(doc, dict) and doc["held"] == held
    assert query(loaded, "SELECT count(*) FROM held_entries") == [(0,)]
    assert query(loaded, "SELECT count(*) FROM integrity_breaks")[0][0] > 0
