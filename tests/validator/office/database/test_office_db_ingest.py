# SPDX-License-Identifier: Apache-2.0
"""Ingestion into a private PostgreSQL: every tap stored once, anchors, unknown taps, rollback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from office_journals import (
    JOURNAL_KEY,
    START,
    count,
    data,
    is_intent,
    lines_of,
    query,
    tap_lines,
    write_journal,
)

from validator.journal.entry import JournalEntry
from validator.journal.head import journal_head
from validator.journal.writer import Journal, canonical, entry_mac, journal_files
from validator.office.export import COLUMNS, row

pytest_plugins = ["postgres_fixtures"]
psycopg = pytest.importorskip("psycopg")

from validator.office.database.chain import Break  # noqa: E402
from validator.office.database.ingest import (  # noqa: E402 - after the psycopg skip
    IngestError,
    IngestResult,
    ingest_file,
    ingest_paths,
)
from validator.office.database.schema import (  # noqa: E402
    SCHEMA_VERSION,
    OfficeDatabaseError,
    init_db,
    schema_version,
)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 60-tap journal with HMACs, in four files, with two unknown taps and one resolution."""
    return write_journal(tmp_path_factory.mktemp("office") / "validator-1")


def ingest(url: str, name: str, raw: bytes, key: bytes | None = JOURNAL_KEY):  # type: ignore[no-untyped-def]
    """ingest_file on a connection of its own."""
    with psycopg.connect(url) as conn:
        return ingest_file(conn, name, raw, key=key)


class TestSchema:
    """``init-db`` creates a versioned schema, and refuses one it does not know."""

    def test_init_db_creates_then_finds_it_up_to_date(self, empty_db: str) -> None:
        """The first run creates every table; the second changes nothing."""
        assert init_db(empty_db) == (0, SCHEMA_VERSION)
        assert init_db(empty_db) == (SCHEMA_VERSION, SCHEMA_VERSION)
        tables = {r[0] for r in query(empty_db, "SELECT tablename FROM pg_tables")}
        assert {
            "taps",
            "records",
            "validators",
            "unknown_taps",
            "integrity_breaks",
            "held_entries",
            "ingested_files",
            "office_schema",
        } <= tables
        with psycopg.connect(empty_db) as conn:
            assert schema_version(conn) == SCHEMA_VERSION

    def test_newer_schema_refused(self, office_db: str, journal: list[Path]) -> None:
        """A database migrated by a newer release is neither migrated nor written."""
        query(office_db, "INSERT INTO office_schema (version) VALUES (99)")
        with pytest.raises(OfficeDatabaseError, match="newer than this release"):
            init_db(office_db)
        with pytest.raises(OfficeDatabaseError, match="newer than this release"):
            ingest_paths(office_db, [journal[0].parent], key=JOURNAL_KEY)

    def test_ingest_without_schema_says_init_db(self, empty_db: str, journal: list[Path]) -> None:
        """An empty database is not written: the error names init-db."""
        with pytest.raises(OfficeDatabaseError, match="init-db"):
            ingest_paths(empty_db, [journal[0].parent])

    def test_unreachable_database_is_a_typed_error(self, tmp_path: Path) -> None:
        """No server at the socket: OfficeDatabaseError, not a psycopg traceback."""
        url = f"postgresql://office@/x?host={tmp_path}"
        with pytest.raises(OfficeDatabaseError, match="cannot connect"):
            init_db(url)


class TestIngest:
    """A whole journal goes in once, with the export's columns, the hash and the raw entry."""

    def test_every_tap_once_with_export_columns_and_anchor(
        self, office_db: str, journal: list[Path]
    ) -> None:
        """Each entry is one row: the export's row, its hash and its raw entry; anchor = head."""
        results = ingest_paths(office_db, [journal[0].parent], key=JOURNAL_KEY)
        assert len(results) == len(journal) >= 4
        assert all(not isinstance(r, IngestError) and r.ok for r in results)
        lines = tap_lines(lines_of(journal))
        assert count(office_db, "taps") == len(lines) == 60
        # Closing intents are records, with their kind: one per Close that committed writes.
        intents = [line for line in lines_of(journal) if is_intent(line)]
        assert query(office_db, "SELECT DISTINCT kind FROM records") == [("intent",)]
        assert count(office_db, "records") == len(intents) > 0
        assert count(office_db, "integrity_breaks") == count(office_db, "held_entries") == 0
        columns = ", ".join(COLUMNS)  # the export's column names, not input
        stored = query(office_db, f"SELECT {columns}, hash, prev, entry FROM taps ORDER BY seq")  # noqa: S608
        for line, got in zip(lines, stored, strict=True):
            entry = json.loads(line)
            assert dict(zip(COLUMNS, got[: len(COLUMNS)], strict=True)) == row(
                JournalEntry.from_json(entry)
            )
            assert got[-3] == hashlib.sha256(line.encode()).hexdigest()
            assert got[-2] == entry["prev"] and got[-1] == entry
        head = journal_head(journal[0].parent, JOURNAL_KEY)
        assert query(office_db, "SELECT id, last_seq, last_hash FROM validators") == [
            (head["validator"], head["seq"], head["hash"])
        ]
        files = query(office_db, "SELECT name, digest FROM ingested_files ORDER BY id")
        assert files == [(str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in journal]

    def test_unknown_taps_and_their_resolution(self, office_db: str, journal: list[Path]) -> None:
        """An unknown tap is a row, open until the tap that settled it arrives, in a later file."""
        lines = lines_of(journal)
        entries = [json.loads(line) for line in tap_lines(lines)]
        unknown = [e for e in entries if e["outcome"] == "unknown"]
        settled = {e["resolves"]["seq"]: e for e in entries if "resolves" in e}
        assert len(unknown) >= 2 and set(settled) == {e["seq"] for e in unknown}
        last = unknown[-1]["seq"]
        ingest(office_db, "up-to-the-last-unknown", data(lines[:last]))
        sql = (
            "SELECT seq, card, transaction_counter, debit_sent, resolved_by_seq, committed, debit"
            " FROM unknown_taps ORDER BY seq"
        )
        before = query(office_db, sql)
        assert [r[0] for r in before] == [e["seq"] for e in unknown]
        resolved_by = [settled[e["seq"]]["seq"] for e in unknown]
        assert [r[4] for r in before] == [by if by <= last else None for by in resolved_by]
        assert resolved_by[0] <= last and before[-1][4:] == (None, None, None)
        ingest(office_db, "all", data(lines))
        expected = []
        for e in unknown:
            by = settled[e["seq"]]
            resolution = (by["seq"], by["resolves"]["committed"], by["resolves"]["debit"])
            expected.append(
                (e["seq"], e["card"], e["transaction_counter"], e["debit"], *resolution)
            )
        assert query(office_db, sql) == expected

    def test_same_file_twice_adds_nothing(self, office_db: str, journal: list[Path]) -> None:
        """The same bytes again: already ingested, not one row more."""
        first = ingest(office_db, "a", journal[0].read_bytes())
        again = ingest(office_db, "a-again", journal[0].read_bytes())
        assert first.status == "ingested" and first.new_taps > 0
        assert again.status == "already_ingested" and again.new_taps == 0
        assert count(office_db, "taps") == first.new_taps
        assert count(office_db, "ingested_files") == 1

    def test_overlapping_file_adds_only_what_is_new(
        self, office_db: str, journal: list[Path]
    ) -> None:
        """Part of a journal, then all of it in one file: the overlap counts as duplicates."""
        lines = lines_of(journal)
        part = len(tap_lines(lines[:25]))  # the first 25 lines: taps and closing intents
        first = ingest(office_db, "part", data(lines[:25]))
        whole = ingest(office_db, "whole", data(lines))
        assert (first.new_taps, first.duplicates) == (part, 0)
        assert (whole.new_taps, whole.duplicates, whole.ok) == (60 - part, 25, True)
        assert count(office_db, "taps") == 60

    def test_finished_part_then_the_rest(self, office_db: str, journal: list[Path]) -> None:
        """A file shipped while written (torn last line), then whole: no break, nothing lost."""
        raw = journal[0].read_bytes()
        cut = raw.rfind(b"\n", 0, len(raw) - 1) + 1 + 100  # 100 bytes into the last line
        early = ingest(office_db, "early", raw[:cut])
        assert early.ok and early.torn == 100
        late = ingest(office_db, "late", raw)
        last = 0 if is_intent(raw.splitlines()[-1].decode()) else 1  # a tap, or an intent
        assert late.ok and late.new_taps == last
        taps = len(tap_lines(raw.decode().splitlines()))
        assert count(office_db, "taps") == early.new_taps + last == taps

    def test_two_validators_keep_their_own_anchor(
        self, office_db: str, journal: list[Path], tmp_path: Path
    ) -> None:
        """Two validators' journals in one run: each chain checked and anchored on its own."""
        other = write_journal(tmp_path / "validator-2", validator="validator-2", taps=20, seed=8)
        results = ingest_paths(office_db, [journal[0].parent, other[0].parent], key=JOURNAL_KEY)
        assert all(not isinstance(r, IngestError) and r.ok for r in results)
        heads = [journal_head(files[0].parent, JOURNAL_KEY) for files in (journal, other)]
        assert query(office_db, "SELECT id, last_seq FROM validators ORDER BY id") == [
            ("validator-1", heads[0]["seq"]),
            ("validator-2", heads[1]["seq"]),
        ]

    def test_record_of_another_kind_is_stored_raw_and_chained(
        self, office_db: str, tmp_path: Path
    ) -> None:
        """An entry of a kind that is no tap is kept raw with its kind; the chain runs on."""
        directory = tmp_path / "validator-1"
        write_journal(directory, taps=5)
        with Journal(directory, key=JOURNAL_KEY, validator_id="validator-1") as writer:
            # A newer release's record: this writer appends only what it reads, so it is
            # chained and MACed here by hand, as that release's writer would.
            record = {"kind": "closing", "validator": "validator-1", "card": "AB12"}
            record |= {"seq": writer.last_seq + 1, "time": START.isoformat()}
            record |= {"prev": writer.report.last_hash, "schema": 3}
            record["hmac"] = entry_mac(JOURNAL_KEY, record)
            with journal_files(directory)[-1].open("a", encoding="utf-8") as handle:
                handle.write(canonical(record) + "\n")
        files = write_journal(directory, taps=5, seed=6)  # taps after the record
        results = ingest_paths(office_db, [directory], key=JOURNAL_KEY)
        assert all(not isinstance(r, IngestError) and r.ok for r in results)
        lines = lines_of(files)
        seq = 1 + next(i for i, line in enumerate(lines) if '"kind":"closing"' in line)
        sql = "SELECT seq, kind, entry->>'card' FROM records WHERE kind <> 'intent'"
        assert query(office_db, sql) == [(seq, "closing", "AB12")]
        assert count(office_db, "taps") == 10 == len(tap_lines(lines)) - 1
        assert query(office_db, "SELECT last_seq FROM validators") == [(len(lines),)]

    def test_database_failure_rolls_the_file_back(
        self, office_db: str, journal: list[Path]
    ) -> None:
        """The database refuses one row: nothing of the file is stored; once fixed, all is."""
        raw = journal[0].read_bytes()
        seq = json.loads(tap_lines(raw.decode().splitlines())[6])["seq"]  # a tap, not an intent
        query(office_db, f"ALTER TABLE taps ADD CONSTRAINT no_seq_7 CHECK (seq <> {seq})")
        try:
            with pytest.raises(OfficeDatabaseError, match="nothing stored"):
                ingest(office_db, "first", raw)
            assert count(office_db, "taps") == count(office_db, "ingested_files") == 0
            assert query(office_db, "SELECT last_seq FROM validators") == []
        finally:
            query(office_db, "ALTER TABLE taps DROP CONSTRAINT no_seq_7")
        assert ingest(office_db, "first", raw).new_taps == len(tap_lines(raw.decode().splitlines()))

    def test_file_naming_no_validator_is_refused(self, office_db: str) -> None:
        """Lines none of which names a validator: IngestError, nothing stored."""
        with pytest.raises(IngestError, match="names its validator"):
            ingest(office_db, "junk", b"not json\n")
        assert count(office_db, "ingested_files") == 0


def test_the_same_file_twice_at_once(office_db: str, journal: list[Path]) -> None:
    """Two sessions ingest the same bytes at once: one stores them, the other adds nothing."""
    import threading

    raw = journal[0].read_bytes()
    start = threading.Barrier(2)
    statuses: list[str] = []

    def send(name: str) -> None:
        with psycopg.connect(office_db) as conn:
            start.wait()
            statuses.append(ingest_file(conn, name, raw, key=JOURNAL_KEY).status)

    threads = [threading.Thread(target=send, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["already_ingested", "ingested"]
    assert count(office_db, "taps") == len(tap_lines(raw.decode().splitlines()))
    assert count(office_db, "ingested_files") == 1


def test_a_file_with_no_entry_yet(office_db: str) -> None:
    """An empty file, or one holding only an unfinished line: nothing stored, nothing refused."""
    assert ingest(office_db, "empty", b"").status == "empty"
    assert ingest(office_db, "torn", b'{"seq":1,').status == "empty"
    assert count(office_db, "ingested_files") == 0


def test_ingest_result_as_json_names_its_anchor_and_breaks() -> None:
    """The one JSON shape of an ingest result (CLI and collector): anchor and breaks spelled out."""
    result = IngestResult(
        "a.jsonl",
        "ab" * 32,
        "V1",
        entries=3,
        new_taps=2,
        breaks=[Break("seq_gap", 4, 2, "seq 4 after 2")],
        anchor=(4, "cd" * 32),
    )
    document = json.loads(json.dumps(result.as_dict()))
    assert document["anchor"] == {"validator": "V1", "seq": 4, "hash": "cd" * 32}
    assert document["breaks"] == [
        {"kind": "seq_gap", "seq": 4, "line": 2, "detail": "seq 4 after 2"}
    ]
    assert (document["file"], document["new_taps"], document["status"]) == (
        "a.jsonl",
        2,
        "ingested",
    )
    assert IngestResult("b", "00", None).as_dict()["anchor"] is None
