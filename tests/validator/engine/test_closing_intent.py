# SPDX-License-Identifier: Apache-2.0
"""The closing intent in a tap: durable before Close, fsynced while the card works (issue 20)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import CONFIG, Station, make_card
from test_intermediate_close import SFI_EVENTS, multi_session

from calypso.commands import CardIns
from calypso.constants import WriteAccessLevel
from calypso.emulator.dispatch import CardEmulator
from readers.base import ApduHandler, PassThroughHandler
from readers.emulated import EmulatedReader
from sam.software.dispatch import SoftwareSam
from sam.software.link import in_process_sam
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import TapContext
from validator.engine.outcome import Outcome
from validator.engine.recording import TapNotServedError
from validator.engine.session import Ratification
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.intent import ClosingIntent, read_record
from validator.journal.writer import Journal, journal_files

NOON = dt.datetime(2026, 3, 2, 12, 0)
EVENT = (0x08, 1)  # the card's last event record: written only by a committed validation


def _processor(journal: Journal) -> TapProcessor:
    """The processor ``run`` builds, over the software SAM and ``journal``."""
    sam = SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
    station = build_station(
        CONFIG,
        load_settings(CONFIG),
        reader=EmulatedReader("card"),
        sam=in_process_sam(sam),
        journal=journal,
    )
    return station.processor


def _tap(processor: TapProcessor, card: ApduHandler, when: dt.datetime) -> TapRecord:
    reader = EmulatedReader("card")
    reader.insert(card)
    try:
        return processor.process(reader.connect(), TapContext(when, 101))
    finally:
        reader.remove()


class _Clocked(PassThroughHandler[CardEmulator]):
    """A card that notes when each command reaches it (INS, monotonic time)."""

    def __init__(self, card: CardEmulator, log: list[tuple[str, float]]) -> None:
        super().__init__(card)
        self.log = log
        self.debited = threading.Event()

    def process(self, apdu: bytes) -> bytes:
        """Note the command, then answer as the card does."""
        if apdu[1] == CardIns.DECREASE:
            self.debited.set()
        self.log.append(
            (f"card {apdu[1]:02X}" + (" mac" if len(apdu) > 5 else ""), time.monotonic())
        )
        return super().process(apdu)


def records(directory: Path) -> list[object]:
    """The journal's records, typed."""
    import json

    return [
        read_record(json.loads(line))
        for path in journal_files(directory)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def test_intent_is_durable_before_close_and_synced_while_the_card_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intent's fsync starts before the card gets the session's writes and ends before Close."""
    log: list[tuple[str, float]] = []
    card = _Clocked(make_card("multi_trip"), log)
    real = os.fsync
    overlapped: list[bool] = []

    def timed(fd: int) -> None:
        log.append(("fsync start", time.monotonic()))
        overlapped.append(card.debited.wait(5))  # a slow disk: the card's writes go on meanwhile
        real(fd)
        log.append(("fsync end", time.monotonic()))

    with Journal(tmp_path) as journal:
        processor = _processor(journal)
        journal.append({"card": None, "outcome": "denied"})  # the file exists: no directory fsync
        monkeypatch.setattr(os, "fsync", timed)
        record = _tap(processor, card, NOON)
        monkeypatch.setattr(os, "fsync", real)
    assert record.result.outcome is Outcome.GRANTED
    order = [name for name, _ in sorted(log, key=lambda item: item[1])]
    start = order.index("fsync start")
    decrease = order.index(f"card {CardIns.DECREASE:02X} mac")
    close = order.index(f"card {CardIns.CLOSE_SECURE_SESSION:02X} mac")
    assert overlapped[0] and start < decrease < order.index("fsync end") < close
    intent, tap = records(tmp_path)[1:]
    assert isinstance(intent, ClosingIntent) and intent.card == tap.card  # type: ignore[attr-defined]
    assert intent.seq + 1 == tap.seq == record.seq  # type: ignore[attr-defined]
    assert intent.debit == record.result.debit > 0
    assert intent.transaction_counter == record.result.transaction_counter
    assert list(intent.writes) == [w.hex().upper() for w in record.result.writes]


def test_an_intent_that_cannot_be_made_durable_aborts_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intent's fsync fails: no Close is sent, the card is unchanged, the tap not charged."""
    card = make_card("multi_trip")
    before = card.read_record(*EVENT)
    real = os.fsync
    with Journal(tmp_path) as journal:
        processor = _processor(journal)
        journal.append({"card": None, "outcome": "denied"})

        def failing(fd: int) -> None:
            monkeypatch.setattr(os, "fsync", real)  # the intent's only: the entry is written
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fsync", failing)
        with pytest.raises(TapNotServedError, match="closing intent") as raised:
            _tap(processor, card, NOON)
    assert raised.value.journaled and raised.value.debit == 0
    assert card.read_record(*EVENT) == before
    (_, entry) = records(tmp_path)
    assert entry.outcome == "error" and entry.reason == "journal_unavailable"  # type: ignore[attr-defined]
    commands = [x["c"] for x in entry.trace.card]  # type: ignore[attr-defined]
    assert not any(c[2:4] == "8E" and len(c) > 10 for c in commands)  # only the abort


def test_a_denied_tap_writes_no_intent(tmp_path: Path) -> None:
    """A refusal commits nothing: no closing intent, one entry."""
    with Journal(tmp_path) as journal:
        record = _tap(_processor(journal), make_card("expired"), NOON)
    assert record.result.outcome is Outcome.DENIED
    assert [type(r).__name__ for r in records(tmp_path)] == ["JournalEntry"]


def test_the_session_asks_for_an_intent_before_each_close(station: Station) -> None:
    """Multiple-session mode: the intermediate Close and the last one each get their intent,
    with every write so far, and each is waited for before its Close is sent."""
    _, _, session = multi_session(station)
    calls: list[str] = []

    def on_close(writes: list[bytes]) -> object:
        calls.append(f"intent {len(writes)}")
        sent = len(session.card.exchanges)

        def wait() -> None:
            assert len(session.card.exchanges) >= sent  # the prepared writes may go first
            calls.append(f"durable {len(writes)}")

        return wait

    session.on_close = on_close  # type: ignore[assignment]
    with session:
        session.open(WriteAccessLevel.DEBIT)
        for n in range(7):
            session.append_record(SFI_EVENTS, bytes([n + 1]) * 29)
        session.close(Ratification.IMMEDIATE)
    assert calls == ["intent 6", "durable 6", "intent 7", "durable 7"]
    closes = [
        i
        for i, x in enumerate(session.card.exchanges)
        if x.command[1] == CardIns.CLOSE_SECURE_SESSION
    ]
    assert len(closes) == 2
