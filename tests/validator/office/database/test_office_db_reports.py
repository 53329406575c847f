# SPDX-License-Identifier: Apache-2.0
"""``validator replay --db`` and ``validator export --db``: the same reports as from the files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import CONFIG
from office_journals import JOURNAL_KEY, START, data, lines_of, query, tap_lines, write_journal

from validator.cli.main import main

pytest_plugins = ["postgres_fixtures"]
psycopg = pytest.importorskip("psycopg")

from validator.office.database.ingest import ingest_file, ingest_paths  # noqa: E402

KEYS = CONFIG / "keys.sim.yaml"


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two validators' journals (60 and 40 taps, at stations of the shipped config)."""
    root = tmp_path_factory.mktemp("reports")
    write_journal(root / "validator-1")
    write_journal(root / "validator-2", validator="validator-2", taps=40, seed=8)
    return root


@pytest.fixture
def loaded(office_db: str, journals: Path) -> str:
    """The office database holding both journals."""
    assert all(r.ok for r in ingest_paths(office_db, [journals], key=JOURNAL_KEY))  # type: ignore[union-attr]
    return office_db


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The journal key as hex, mode 0600."""
    path = tmp_path / "journal.key"
    path.write_text(JOURNAL_KEY.hex(), encoding="utf-8")
    path.chmod(0o600)
    return path


def run(*args: str) -> tuple[int, str, str]:
    """``validator ...``: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def replay(*args: str) -> tuple[int, dict[str, Any]]:
    """``validator replay ... --json`` with the shipped config: exit code and the document."""
    code, out, err = run("replay", *args, "--config", str(CONFIG), "--json")
    assert out, err
    return code, json.loads(out)


def figures(doc: dict[str, Any]) -> dict[str, Any]:
    """What a replay found, without where (files, lines) and how long it took."""
    decisions = {k: v for k, v in doc["decisions"].items() if k != "differences"}
    return {
        "entries": doc["entries"],
        "lines": doc["lines"],
        "integrity": {k: doc["integrity"][k] for k in ("ok", "counts", "authenticated")},
        "mac": {k: v for k, v in doc["mac"].items() if k != "failures"},
        "decisions": decisions,
        "unknown": (doc["unknown"]["total"], doc["unknown"]["resolved"]),
        "recoveries": (doc["recoveries"]["total"], doc["recoveries"]["with_paid_entry"]),
        "double_debits": doc["double_debit_count"],
        "exit_code": doc["exit_code"],
        "journals": [
            (j["entries"], j["first_seq"], j["last_seq"], j["ok"]) for j in doc["journals"]
        ],
    }


def test_replay_from_the_database_is_the_replay_of_the_files(
    loaded: str, journals: Path, key_file: Path
) -> None:
    """Integrity with HMACs, MACs recomputed, decisions, reconciliation: the same figures."""
    common = ("--keys", str(KEYS), "--journal-key-file", str(key_file))
    code_files, from_files = replay(str(journals), *common)
    code_db, from_db = replay("--db", loaded, *common)
    assert code_files == code_db == 0
    assert figures(from_db) == figures(from_files)
    assert from_db["entries"] == 100 and from_db["mac"]["verified"] > 0
    assert from_db["unknown"]["total"] > 0 and from_db["integrity"]["authenticated"]


def test_a_period_and_a_validator(loaded: str, journals: Path) -> None:
    """--since/--until select the same taps as on files (--jobs 2 too); --validator: one."""
    since, until = START + dt.timedelta(minutes=5), START + dt.timedelta(minutes=20)
    period = ("--since", since.isoformat(), "--until", until.isoformat())
    _, from_files = replay(str(journals), *period)
    _, from_db = replay("--db", loaded, *period, "--jobs", "2")  # worker processes too
    assert figures(from_db)["entries"] == figures(from_files)["entries"]
    assert 0 < from_db["entries"] < 100
    assert from_db["decisions"] == from_files["decisions"]
    _, one = replay("--db", loaded, "--validator", "validator-2")
    assert [j["directory"] for j in one["journals"]] == ["office:validator-2"]
    assert one["entries"] == 40


def test_a_row_changed_in_the_database_is_an_edited_entry(loaded: str) -> None:
    """A debit rewritten inside the database breaks the chain replay rebuilds: edited, exit 1."""
    query(
        loaded,
        "UPDATE taps SET entry = jsonb_set(entry, '{debit}', '999')"
        " WHERE validator = 'validator-1' AND seq = 30",
    )
    code, doc = replay("--db", loaded)
    assert code == 1 and doc["integrity"]["counts"] == {"edited": 1}
    assert doc["integrity"]["breaks"][0]["seq"] == 30


def test_breaks_found_at_ingestion_are_in_the_report(
    office_db: str, journals: Path, tmp_path: Path
) -> None:
    """A break recorded by ingestion makes replay --db exit 1 and export --db write nothing."""
    lines = lines_of(sorted((journals / "validator-1").glob("journal-*.jsonl")))
    with psycopg.connect(office_db) as conn:
        ingest_file(conn, "with-a-gap", data([*lines[:29], *lines[30:]]), key=JOURNAL_KEY)
    code, doc = replay("--db", office_db)
    assert code == 1 and doc["integrity"]["counts"] == {"missing": 1}
    assert doc["entries"] == len(tap_lines(lines[:29]))  # the taps before the gap
    out = tmp_path / "out"
    code, _, err = run("export", "--db", office_db, "--out", str(out))
    assert code == 1 and "missing" in err and not out.exists()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_from_the_database_is_the_export_of_the_files(
    loaded: str, journals: Path, key_file: Path, tmp_path: Path, fmt: str
) -> None:
    """The same files, row for row, from the database as from the journals."""
    files_out, db_out = tmp_path / "files", tmp_path / "db"
    code, _, err = run(
        "export", str(journals), "--out", str(files_out), "--format", fmt,
        "--journal-key-file", str(key_file), "--config", str(CONFIG),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run("export", "--db", loaded, "--out", str(db_out), "--format", fmt)
    assert code == 0, err
    names = sorted(p.name for p in files_out.iterdir())
    assert (
        names
        == sorted(p.name for p in db_out.iterdir())
        == [
            f"taps-validator-1.{fmt}",
            f"taps-validator-2.{fmt}",
        ]
    )
    for name in names:
        if fmt == "parquet":
            assert pq.read_table(db_out / name).equals(pq.read_table(files_out / name))
        else:
            assert (db_out / name).read_text() == (files_out / name).read_text()
    assert "60 taps" in out and "40 taps" in out


def test_export_selects_a_station_and_a_period(loaded: str, tmp_path: Path) -> None:
    """--station and --since/--until keep only the taps asked for."""
    stations = query(loaded, "SELECT DISTINCT station FROM taps ORDER BY station")
    station = stations[0][0]
    since = START + dt.timedelta(minutes=5)
    expected = query(
        loaded, "SELECT count(*) FROM taps WHERE station = %s AND time >= %s", station, since
    )[0][0]
    code, _, err = run(
        "export", "--db", loaded, "--out", str(tmp_path), "--station", str(station),
        "--since", since.isoformat(),
    )  # fmt: skip
    assert code == 0, err
    rows = sum(pq.read_table(p).num_rows for p in tmp_path.glob("taps-*.parquet"))
    assert 0 < rows == expected


def test_db_and_paths_together_are_refused(loaded: str, journals: Path) -> None:
    """Files and --db at once, or neither, or --station without --db: usage error (exit 2)."""
    assert run("replay", str(journals), "--db", loaded)[0] == 2
    assert run("replay")[0] == 2
    assert run("replay", str(journals), "--station", "1")[0] == 2
