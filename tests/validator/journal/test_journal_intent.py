# SPDX-License-Identifier: Apache-2.0
"""The closing intent as a journal record: its type, its schema, its durability (issue 20)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from validator.engine.recording import JournalError
from validator.journal import entry as entry_module
from validator.journal.entry import EntryFormatError, JournalEntry
from validator.journal.intent import (
    INTENT_SCHEMA,
    ClosingIntent,
    open_intents,
    read_record,
    unsettled,
)
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, entry_mac, journal_files

KEY = bytes(range(32))
CARD_A, CARD_B = "00000000C0FFEE01", "00000000C0FFEE02"


def an_intent(card: str = CARD_A) -> dict[str, Any]:
    """What the engine hands the journal before a Close (validator.engine.tap.intent_entry)."""
    return {
        "tap_time": "2026-03-02T08:00:00",
        "validator": "gate-7",
        "station": 101,
        "card": card,
        "product_type": "PRIME_REVISION_3",
        "df_name": "315449432E49434131",
        "layout": "demo",
        "transaction_counter": 197776,
        "writes": ["0030", "00E2000840" + "AB" * 29],
        "debit": 1,
        "decision": {
            "verdict": "grant",
            "contract": 1,
            "product": "10-trip carnet",
            "debit": 1,
            "remaining": 9,
            "valid_until": None,
        },
        "sam_serial": "00000001",
    }


def a_tap(card: str = CARD_A) -> dict[str, Any]:
    """A minimal tap entry of ``card``."""
    return {"card": card, "outcome": "granted", "debit": 1, "tap_time": "2026-03-02T08:00:00"}


def lines(directory: Path) -> list[dict[str, Any]]:
    """Every record of a journal, parsed."""
    return [
        json.loads(line)
        for path in journal_files(directory)
        for line in path.read_text().splitlines()
    ]


class TestRecord:
    """The intent reads as its own kind, exactly, and only as that."""

    def test_written_intent_reads_back_exactly_chained_and_macd(self, tmp_path: Path) -> None:
        """An intent is a chained, HMACed line of kind "intent", schema 2, that round-trips."""
        with Journal(tmp_path, key=KEY) as journal:
            journal.append(a_tap())
            written = journal.write_intent(an_intent()).wait()
        first, line = lines(tmp_path)
        assert line == written and (line["seq"], line["kind"], line["schema"]) == (
            2,
            "intent",
            INTENT_SCHEMA,
        )
        assert line["hmac"] == entry_mac(KEY, line)
        record = read_record(line)
        assert isinstance(record, ClosingIntent) and record.to_json() == line
        assert record.card == CARD_A and record.debit == 1 and record.writes[0] == "0030"
        assert record.decision is not None and record.decision.product == "10-trip carnet"
        assert isinstance(read_record(first), JournalEntry)
        report = verify_journal(tmp_path, key=KEY)
        assert report.ok and (report.entries, report.intents) == (1, 1)

    def test_a_tap_reader_refuses_an_intent(self, tmp_path: Path) -> None:
        """JournalEntry.from_json never takes an intent for a tap: it names the kind."""
        with Journal(tmp_path) as journal:
            written = journal.write_intent(an_intent()).wait()
        with pytest.raises(EntryFormatError, match="^kind: 'intent' is a record, not a tap"):
            JournalEntry.from_json(written)

    def test_a_release_1_reader_refuses_the_intent_by_its_schema(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reader that knows version 1 only refuses the intent by its schema, and still reads
        the tap entries written now (they stay version 1)."""
        with Journal(tmp_path) as journal:
            tap = journal.append(a_tap())
            intent = journal.write_intent(an_intent()).wait()
        monkeypatch.setattr(entry_module, "SCHEMA_VERSION", 1)
        assert JournalEntry.from_json(tap).schema == 1
        with pytest.raises(EntryFormatError, match=r"^schema: version 2 is newer than .* \(1\)$"):
            JournalEntry.from_json(intent)

    def test_an_unknown_kind_or_a_newer_schema_is_refused(self) -> None:
        """A kind this release does not know is refused; a newer schema says so first."""
        later = {"seq": 1, "time": "t", "prev": "0" * 64, "kind": "later", "schema": 2}
        with pytest.raises(EntryFormatError, match="^kind: 'later' is not a record this release"):
            read_record(later)
        with pytest.raises(EntryFormatError, match="^schema: version 3 is newer"):
            read_record({**later, "schema": 3})
        with pytest.raises(EntryFormatError, match="^schema: version 3 is newer"):
            read_record({**later, "kind": "intent", "schema": 3})

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("writes", ["00", 1], "writes[1]: expected a string, got an integer"),
            ("card", None, "card: expected a string, got null"),
            ("debit", "1", "debit: expected an integer, got a string"),
            ("schema", 1, "schema: expected a version number >= 2, got 1"),
        ],
    )
    def test_a_malformed_intent_names_the_field(
        self, tmp_path: Path, field: str, value: object, message: str
    ) -> None:
        """A field of the wrong type is an EntryFormatError naming it."""
        with Journal(tmp_path) as journal:
            data = journal.write_intent(an_intent()).wait()
        data[field] = value
        with pytest.raises(EntryFormatError) as raised:
            ClosingIntent.from_json(data)
        assert str(raised.value) == message

    def test_a_missing_required_field_is_named(self, tmp_path: Path) -> None:
        """An intent without its card is an EntryFormatError "card: missing"."""
        with Journal(tmp_path) as journal:
            data = journal.write_intent(an_intent()).wait()
        del data["card"]
        with pytest.raises(EntryFormatError, match="^card: missing$"):
            ClosingIntent.from_json(data)

    def test_write_intent_refuses_a_malformed_intent_and_writes_nothing(
        self, tmp_path: Path
    ) -> None:
        """An intent that would not read back is a JournalError; nothing is written."""
        bad = {**an_intent(), "station": "101"}
        with Journal(tmp_path) as journal:
            with pytest.raises(JournalError, match="not a closing intent: station"):
                journal.write_intent(bad)
            assert journal.last_seq == 0
        assert lines(tmp_path) == []


class TestDurability:
    """The intent is fsynced off the caller's thread, and a failed one leaves no trace."""

    def test_the_fsync_runs_on_the_journal_thread_while_the_caller_goes_on(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """write_intent returns before the fsync ends; wait() returns once it has."""
        release = threading.Event()
        threads: list[str] = []
        real = os.fsync

        def slow(fd: int) -> None:
            threads.append(threading.current_thread().name)
            release.wait(5)
            real(fd)

        with Journal(tmp_path) as journal:
            journal.append(a_tap())  # the file exists: the intent's is the only fsync now
            monkeypatch.setattr(os, "fsync", slow)
            writing = journal.write_intent(an_intent())
            assert not release.is_set()  # the caller is back while the fsync waits
            release.set()
            written = writing.wait()
            monkeypatch.setattr(os, "fsync", real)
        assert written["seq"] == 2 and len(threads) == 1 and threads[0].startswith("journal")

    def test_a_failed_fsync_cuts_the_intent_away(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """wait() raises JournalError, the line is cut away, and the chain goes on from before."""
        real = os.fsync
        with Journal(tmp_path) as journal:
            journal.append(a_tap())
            size = journal_files(tmp_path)[-1].stat().st_size

            def failing(fd: int) -> None:
                monkeypatch.setattr(os, "fsync", real)  # once: cutting the line away works
                raise OSError(5, "Input/output error")

            monkeypatch.setattr(os, "fsync", failing)
            writing = journal.write_intent(an_intent())
            with pytest.raises(JournalError, match="cannot make the closing intent durable"):
                writing.wait()
            assert journal.last_seq == 1
            assert journal_files(tmp_path)[-1].stat().st_size == size
            assert journal.append(a_tap(CARD_B))["seq"] == 2
        report = verify_journal(tmp_path)
        assert report.ok and (report.entries, report.intents) == (2, 0)

    def test_an_append_waits_for_an_intent_nobody_waited_for(self, tmp_path: Path) -> None:
        """A tap entry written after an intent never waited on (Close not sent) follows it."""
        with Journal(tmp_path) as journal:
            journal.write_intent(an_intent())
            assert journal.append(a_tap())["seq"] == 2
        assert [line.get("kind") for line in lines(tmp_path)] == ["intent", None]
        assert verify_journal(tmp_path).ok


class TestOpenIntents:
    """The intents no tap entry followed: what start-up journals as unknown taps."""

    def test_only_the_intents_after_the_last_tap_entry_are_open(self, tmp_path: Path) -> None:
        """Intents followed by a tap entry are settled; the trailing ones are open."""
        with Journal(tmp_path) as journal:
            journal.write_intent(an_intent(CARD_B)).wait()
            journal.append(a_tap(CARD_B))
            assert open_intents(tmp_path) == []
            journal.write_intent(an_intent()).wait()
            journal.write_intent(an_intent()).wait()  # a rerun of the same tap
        found = open_intents(tmp_path)
        assert [intent.seq for intent in found] == [3, 4]
        assert [intent.seq for intent in unsettled(found)] == [4]

    def test_open_intents_across_files(self, tmp_path: Path) -> None:
        """Trailing intents are found in the newest files, past a file holding only intents."""
        with Journal(tmp_path, max_bytes=600) as journal:
            journal.append(a_tap(CARD_B))
            journal.write_intent(an_intent()).wait()
            journal.write_intent(an_intent(CARD_B)).wait()
        assert len(journal_files(tmp_path)) >= 2
        found = unsettled(open_intents(tmp_path))
        assert [(intent.seq, intent.card) for intent in found] == [(2, CARD_A), (3, CARD_B)]
