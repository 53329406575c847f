# SPDX-License-Identifier: Apache-2.0
"""Pseudonymised card serials in exports and in the office database (issue 20, privacy)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CONFIG
from office_journals import JOURNAL_KEY, entries_of, query, write_journal

from validator.cli.main import main
from validator.office.pseudonym import Pseudonymiser

pytest_plugins = ["postgres_fixtures"]
pytest.importorskip("psycopg")

OFFICE_KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(200, 232))


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two validators' journals (60 and 40 taps, unknown taps and resolutions among them)."""
    root = tmp_path_factory.mktemp("privacy")
    write_journal(root / "validator-1")
    write_journal(root / "validator-2", validator="validator-2", taps=40, seed=8)
    return root


def serials(journals: Path) -> set[str]:
    """Every card serial of the journals."""
    files = sorted(journals.rglob("*.jsonl"))
    return {e["card"] for e in entries_of(files) if e.get("card")}


def hex_file(tmp_path: Path, name: str, key: bytes) -> Path:
    """A key file of ``key`` as hex, mode 0600."""
    path = tmp_path / name
    path.write_text(key.hex() + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """The journal key, the office key and another office key, as files."""
    return {
        "journal": hex_file(tmp_path, "journal.key", JOURNAL_KEY),
        "office": hex_file(tmp_path, "office.key", OFFICE_KEY),
        "other": hex_file(tmp_path, "other.key", OTHER_KEY),
    }


def run(*args: str) -> tuple[int, str, str]:
    """``validator ...``: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def csv_rows(folder: Path) -> list[dict[str, Any]]:
    """Every row of the CSV files of ``folder``."""
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def dump(url: str) -> str:
    """Every row of every table holding card-level data, as text."""
    tables = ("taps", "records", "unknown_taps", "held_entries", "integrity_breaks")
    return "\n".join(
        str(query(url, f"SELECT t::text FROM {table} t"))  # noqa: S608 - test tables
        for table in tables
    ).upper()


def export_csv(out: Path, *args: str) -> list[dict[str, Any]]:
    """``validator export --format csv --out OUT ...`` (exit 0): the rows written."""
    code, _, err = run("export", "--format", "csv", "--out", str(out), *args)
    assert code == 0, err
    return csv_rows(out)


class TestExportPseudonymised:
    """``validator export --pseudonymise KEYFILE``: pseudonyms instead of serials."""

    def test_files(self, journals: Path, keys: dict[str, Path], tmp_path: Path) -> None:
        """One pseudonym per card for one key, another for another key; no serial written."""
        key = ("--journal-key-file", str(keys["journal"]))
        clear = export_csv(tmp_path / "clear", str(journals), *key)
        one = export_csv(
            tmp_path / "one", str(journals), *key, "--pseudonymise", str(keys["office"])
        )
        other = export_csv(
            tmp_path / "two", str(journals), *key, "--pseudonymise", str(keys["other"])
        )
        pseudonyms = Pseudonymiser(OFFICE_KEY)
        assert [r["card"] for r in one] == [pseudonyms.card(r["card"] or None) or "" for r in clear]
        links = {(c["card"], o["card"]) for c, o in zip(clear, one, strict=True)}
        assert len({c for c, _ in links}) == len(links) == len({o for _, o in links}) > 3
        assert all(a["card"] != b["card"] for a, b in zip(one, other, strict=True) if a["card"])
        text = "".join(p.read_text() for p in (tmp_path / "one").glob("*.csv")).upper()
        assert not any(serial in text for serial in serials(journals))

    def test_database_as_files(
        self, office_db: str, journals: Path, keys: dict[str, Path], tmp_path: Path
    ) -> None:
        """From a database of clear serials, --db --pseudonymise writes the files' pseudonyms."""
        code, _, err = run(
            "office", "ingest", "--db", office_db, str(journals),
            "--journal-key-file", str(keys["journal"]),
        )  # fmt: skip
        assert code == 0, err
        pseudonymise = ("--pseudonymise", str(keys["office"]))
        from_db = export_csv(tmp_path / "db", "--db", office_db, *pseudonymise)
        files = ("--journal-key-file", str(keys["journal"]), *pseudonymise)
        from_files = export_csv(tmp_path / "files", str(journals), *files)
        assert sorted(r["card"] for r in from_db) == sorted(r["card"] for r in from_files)

    def test_refused_key(self, journals: Path, tmp_path: Path) -> None:
        """A world-readable office key is refused: exit 2, nothing written."""
        path = hex_file(tmp_path, "open.key", OFFICE_KEY)
        path.chmod(0o644)
        code, _, err = run(
            "export", str(journals), "--out", str(tmp_path / "out"), "--pseudonymise", str(path)
        )
        assert code == 2 and "group or others" in err and OFFICE_KEY.hex() not in err
        assert not list((tmp_path / "out").glob("*"))


def ingest(url: str, journals: Path, keys: dict[str, Path], *extra: str) -> tuple[int, str]:
    """``validator office ingest`` of both journals with the journal key: exit code, stderr."""
    code, _, err = run(
        "office", "ingest", "--db", url, str(journals),
        "--journal-key-file", str(keys["journal"]), *extra,
    )  # fmt: skip
    return code, err


class TestPseudonymisedDatabase:
    """``init-db --pseudonymise``: the office database stores pseudonyms only."""

    def test_no_serial_stored(self, office_db: str, journals: Path, keys: dict[str, Path]) -> None:
        """Taps, unknown taps and records hold pseudonyms; no serial is anywhere, nor a trace."""
        code, out, err = run(
            "office", "init-db", "--db", office_db, "--pseudonymise", str(keys["office"])
        )
        assert code == 0 and "now stores pseudonyms only" in out, err
        assert ingest(office_db, journals, keys, "--office-key-file", str(keys["office"]))[0] == 0
        text = dump(office_db)
        assert not any(serial in text for serial in serials(journals))
        assert query(office_db, "SELECT count(*) FROM taps WHERE entry ? 'trace'") == [(0,)]
        pseudonyms = Pseudonymiser(OFFICE_KEY)
        expected = {pseudonyms.card(s) for s in serials(journals)}
        cards = {c for (c,) in query(office_db, "SELECT card FROM taps")}
        assert cards - {None} == expected  # a tap that ended before the serial was read has none
        unknown = query(office_db, "SELECT card FROM unknown_taps WHERE card IS NOT NULL")
        assert unknown and {c for (c,) in unknown} <= expected

    def test_ingestion_without_the_key_is_refused(
        self, office_db: str, journals: Path, keys: dict[str, Path]
    ) -> None:
        """No office key, or another one: exit 2, nothing stored; the right key then works."""
        run("office", "init-db", "--db", office_db, "--pseudonymise", str(keys["office"]))
        code, err = ingest(office_db, journals, keys)
        assert code == 2 and "pseudonyms only" in err
        code, err = ingest(office_db, journals, keys, "--office-key-file", str(keys["other"]))
        assert code == 2 and "not the database's" in err
        assert query(office_db, "SELECT count(*) FROM taps") == [(0,)]
        assert query(office_db, "SELECT count(*) FROM ingested_files") == [(0,)]
        assert ingest(office_db, journals, keys, "--office-key-file", str(keys["office"]))[0] == 0

    def test_clear_database_refuses_the_switch(
        self, office_db: str, journals: Path, keys: dict[str, Path]
    ) -> None:
        """Once clear serials are stored, pseudonymisation cannot be turned on (exit 2)."""
        assert ingest(office_db, journals, keys)[0] == 0
        assert all(serial in dump(office_db) for serial in serials(journals))  # the check bites
        code, _, err = run(
            "office", "init-db", "--db", office_db, "--pseudonymise", str(keys["office"])
        )
        assert code == 2 and "card data in clear" in err
        code, err = ingest(office_db, journals, keys, "--office-key-file", str(keys["office"]))
        assert code == 2 and "clear card serials" in err

    def test_replay_checks_the_chain_as_received(
        self, office_db: str, journals: Path, keys: dict[str, Path]
    ) -> None:
        """replay --db holds the chain on the received hashes; a deleted row is still found."""
        run("office", "init-db", "--db", office_db, "--pseudonymise", str(keys["office"]))
        assert ingest(office_db, journals, keys, "--office-key-file", str(keys["office"]))[0] == 0
        args = ("replay", "--db", office_db, "--config", str(CONFIG), "--json")
        code, out, err = run(*args)
        doc = json.loads(out)
        assert doc["integrity"]["ok"] and doc["entries"] == 100, err
        assert not doc["integrity"]["authenticated"]
        query(office_db, "DELETE FROM taps WHERE validator = 'validator-1' AND seq = 30")
        code, out, _ = run(*args)
        doc = json.loads(out)
        assert code == 1 and doc["integrity"]["counts"].get("missing") == 1


def test_init_db_migrates_version_1(empty_db: str) -> None:
    """A version-1 database is brought to version 2 (the privacy tables) by init-db."""
    import psycopg

    from validator.office.database.schema import MIGRATIONS

    with psycopg.connect(empty_db) as conn:
        conn.execute(MIGRATIONS[0].encode())
        conn.execute("INSERT INTO office_schema (version) VALUES (1)")
    code, out, _ = run("office", "init-db", "--db", empty_db)
    assert (code, out) == (0, "office schema version 2 (was 1)\n")
    assert query(empty_db, "SELECT pseudonymise FROM office_settings") == [(False,)]
