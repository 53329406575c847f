# SPDX-License-Identifier: Apache-2.0
"""Issue 15.1: the journal is known writable, with a reserve, before Close is sent."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from conftest import CONFIG, make_card
from structlog.testing import capture_logs

from calypso.emulator.dispatch import CardEmulator
from lab.reliability.faults.infra_disk import Disk, DiskJournal
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.recording import TapNotServedError
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.verify import verify_journal
from yamlconfig import load_model

NOON = dt.datetime(2026, 3, 2, 12, 0)
AID = bytes.fromhex("315449432E49434131")
EVENT = (0x08, 1)  # the card's last event record: written only by a committed validation


def _processor(journal: DiskJournal) -> TapProcessor:
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    sam = SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
    reader = EmulatedReader("sam")
    reader.insert(sam)
    channel = ApduChannel(reader.connect(), label="sam")
    return TapProcessor(LegacySam(channel), rules, [AID], "reserve-test", journal)


def _tap(processor: TapProcessor, card: CardEmulator) -> TapRecord:
    reader = EmulatedReader("card")
    reader.insert(card)
    try:
        return processor.process(reader.connect(), TapContext(NOON, 101))
    finally:
        reader.remove()


class _FillsAfterCheck(DiskJournal):
    """The disk fills after the closing intent was written, before the tap's entry."""

    writes = 0
    fill_before = 2  # the tap's entry: the intent, written before Close, is the first write

    def _writable(self, now: dt.datetime, size: int) -> IO[bytes]:
        self.writes += 1
        if self.writes == self.fill_before:
            self.disk.free = 0
        return super()._writable(now, size)


class _FillsBeforeIntent(_FillsAfterCheck):
    """The disk fills between the pre-Close check and the closing intent's write."""

    fill_before = 1


class _NoReserve(_FillsAfterCheck):
    """As above, and releasing the reserve frees nothing (another process took the room)."""

    def _release_reserve(self) -> bool:
        super()._release_reserve()
        self.disk.free = 0
        return True


def test_no_room_before_close_charges_nothing(tmp_path: Path) -> None:
    """Free space below the reserve: the session is aborted, the card keeps its state."""
    disk = Disk()
    card = make_card("multi_trip")
    before = card.read_record(*EVENT)
    with DiskJournal(tmp_path, disk) as journal:
        processor = _processor(journal)
        disk.free = 100  # not even the aborted tap's entry fits
        with pytest.raises(TapNotServedError, match="no room") as caught:
            _tap(processor, card)
    assert card.read_record(*EVENT) == before
    assert caught.value.card == card.serial.hex().upper()
    assert caught.value.outcome == "error" and caught.value.debit == 0
    assert not caught.value.journaled
    assert verify_journal(tmp_path).entries == 0


def test_aborted_tap_is_journaled_when_it_fits(tmp_path: Path) -> None:
    """Below the reserve but room for one entry: the aborted tap is journaled, gate still out."""
    disk = Disk()
    card = make_card("multi_trip")
    with DiskJournal(tmp_path, disk) as journal:
        processor = _processor(journal)
        disk.free = journal.min_free - 1
        with pytest.raises(TapNotServedError) as caught:
            _tap(processor, card)
    assert caught.value.journaled
    report = verify_journal(tmp_path)
    assert report.ok and report.entries == 1
    line = next(tmp_path.glob("journal-*.jsonl")).read_text()
    assert '"reason":"journal_unavailable"' in line and '"debit":0' in line


def test_disk_full_after_close_writes_into_the_reserve(tmp_path: Path) -> None:
    """The disk fills between the check and the write: the reserve makes room, the tap is kept."""
    disk = Disk()
    card = make_card("multi_trip")
    with DiskJournal(tmp_path, disk) as journal:
        journal.__class__ = _FillsAfterCheck
        record = _tap(_processor(journal), card)
        assert record.result.debit > 0
        with pytest.raises(Exception, match="no room"):
            journal.ensure_room()  # the reserve is spent: no further tap until room returns
    report = verify_journal(tmp_path)
    assert report.ok and report.entries == 1 and report.intents == 1


def test_disk_full_before_the_intent_charges_nothing(tmp_path: Path) -> None:
    """The disk fills before the closing intent is written: no Close, card unchanged, reserve
    kept for a tap the card may have committed."""
    disk = Disk()
    card = make_card("multi_trip")
    before = card.read_record(*EVENT)
    with DiskJournal(tmp_path, disk) as journal:
        journal.__class__ = _FillsBeforeIntent
        with pytest.raises(TapNotServedError, match="closing intent") as caught:
            _tap(_processor(journal), card)
        assert journal.last_seq == 0  # the intent's partial line was cut away
    assert card.read_record(*EVENT) == before
    assert caught.value.outcome == "error" and caught.value.debit == 0
    assert (tmp_path / ".reserve").exists()
    report = verify_journal(tmp_path)
    assert report.ok and report.entries == report.intents == 0


def test_committed_tap_not_written_logs_card_amount_outcome(tmp_path: Path) -> None:
    """A committed tap whose entry cannot be written: journal_failure names card and debit."""
    disk = Disk()
    gate = NullGate()
    reader = EmulatedReader("card")
    stop = threading.Event()
    card = make_card("multi_trip")
    with DiskJournal(tmp_path, disk) as journal, capture_logs() as logs:
        journal.__class__ = _NoReserve
        processor = _processor(journal)

        def passenger() -> None:
            reader.insert(card)
            while not gate.outages:
                stop.wait(0.01)
            stop.set()

        threading.Thread(target=passenger, daemon=True).start()
        run_loop(reader, processor, gate, station=101, stop=stop, poll_s=0.05, backoff_s=0.05)
    failures = [e for e in logs if e["event"] == "journal_failure"]
    assert failures, logs
    failure = failures[0]
    assert failure["card"] == card.serial.hex().upper()
    assert failure["outcome"] == "granted" and failure["debit"] > 0
    assert failure["journaled"] is False
    assert gate.records == []  # no feedback: the gate stays shut


def test_gate_starts_out_of_service_when_the_disk_is_already_full(tmp_path: Path) -> None:
    """No room at start-up: out of service before any card, no card touched; then it serves."""
    disk = Disk()
    gate = NullGate()
    reader = EmulatedReader("card")
    stop = threading.Event()
    card = make_card("multi_trip")
    before = card.read_record(*EVENT)
    touched: list[bool] = []
    journal = DiskJournal(tmp_path, disk)
    with journal:
        disk.free = 10
        processor = _processor(journal)

        def operator() -> None:
            deadline = time.monotonic() + 3
            while not gate.outages and time.monotonic() < deadline:
                stop.wait(0.01)
            reader.insert(card)  # a passenger taps while the gate shows out of service
            stop.wait(0.3)
            touched.append(card.read_record(*EVENT) != before)
            disk.free = None  # the operator makes room
            while not gate.records and time.monotonic() < deadline + 3:
                stop.wait(0.01)
            stop.set()

        threading.Thread(target=operator, daemon=True).start()
        run_loop(reader, processor, gate, station=101, stop=stop, poll_s=0.05, backoff_s=0.05)
    assert touched == [False]
    assert gate.outages[0].startswith("journal: the journal has no room")
    assert [r.result.outcome.value for r in gate.records] == ["granted"]
    assert verify_journal(tmp_path).entries == 1  # no aborted tap: the card waited for room
