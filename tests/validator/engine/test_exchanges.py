# SPDX-License-Identifier: Apache-2.0
"""The fewest exchanges: early decisions, the event history on demand, writes sent with Close."""

from __future__ import annotations

import datetime as dt

from conftest import DEMO_AID, Station, make_card

from calypso.layouts.demo import SFI_COUNTERS
from readers.emulated import EmulatedReader, Fault, FaultKind
from readers.trace import Exchange
from validator.engine.attempt import validate
from validator.engine.fares.decide import TapContext
from validator.engine.outcome import Outcome

START = dt.datetime(2026, 3, 2, 8, 0)
READ_RECORDS, DECREASE, APPEND, CLOSE = 0xB2, 0x30, 0xE2, 0x8E


def _instructions(trace: list[Exchange]) -> list[int]:
    return [ex.command[1] for ex in trace]


def test_recovery_reads_no_title(station: Station) -> None:
    """A recovery is decided on the environment and the event: 5 card APDUs, Keyple's count."""
    card = make_card("multi_trip")
    first = station.tap(card, START, [Fault(FaultKind.REMOVED_BEFORE, 9)])  # no ratification
    assert first.outcome is Outcome.GRANTED
    again = station.tap(card, START + dt.timedelta(seconds=20))
    assert again.outcome is Outcome.RECOVERED
    assert _instructions(again.card_trace) == [0xA4, 0x8A, READ_RECORDS, CLOSE, READ_RECORDS]
    assert set(again.state_read) == {"07:1", "08:1", "08:2", "08:3"}


def test_anti_passback_reads_no_title(station: Station) -> None:
    """A second tap within the anti-passback window is denied before any contract is read."""
    card = make_card("multi_trip")
    assert station.tap(card, START).outcome is Outcome.GRANTED
    again = station.tap(card, START + dt.timedelta(seconds=30))
    assert again.reason == "anti_passback"
    assert [k for k in again.state_read if not k.startswith(("07:", "08:"))] == []
    assert len(again.card_trace) == 4  # select, open, event log, abort


def test_history_is_read_only_when_asked(station: Station) -> None:
    """The older events are read only for a card the caller has an unknown tap of."""
    card = make_card("multi_trip")
    reader = EmulatedReader("card")
    reader.insert(card)
    result = validate(
        reader.connect(),
        station.sam,
        station.rules,
        TapContext(START, 101),
        aids=[DEMO_AID],
        history=lambda serial: False,
    )
    assert result.outcome is Outcome.GRANTED
    assert sorted(k for k in result.state_read if k.startswith("08:")) == ["08:1"]


def test_writes_travel_with_the_close(station: Station) -> None:
    """Both writes are digested in one SAM exchange that is sent before the card runs them."""
    card = make_card("multi_trip")
    units = card.counter(SFI_COUNTERS, 1)
    result = station.tap(card, START)
    assert result.outcome is Outcome.GRANTED and result.mac_verified
    assert card.counter(SFI_COUNTERS, 1) == units - 1
    card_ins = _instructions(result.card_trace)
    assert card_ins[-4:] == [DECREASE, APPEND, CLOSE, READ_RECORDS]
    sam_ins = _instructions(result.sam_trace)
    # Digest Update Multiple (8C) once with reads and both writes, then Digest Close (8E).
    assert sam_ins.count(0x8C) == 1 and sam_ins.index(0x8C) + 1 == sam_ins.index(0x8E)


def test_a_card_lost_during_a_prepared_write_keeps_its_data(station: Station) -> None:
    """A card that leaves while it runs a prepared write (its answer lost) is charged nothing."""
    card = make_card("multi_trip")
    before = card.snapshot().files
    result = station.tap(card, START, [Fault(FaultKind.REMOVED_DURING, 6)])  # the Decrease
    assert result.outcome is Outcome.CARD_LOST
    assert card.snapshot().files == before


def test_counters_read_stops_at_the_last_contract_read(station: Station) -> None:
    """The counters record is read up to the counter of the last contract read (Le = 3 x n)."""
    card = make_card("multi_trip")
    result = station.tap(card, START)
    reads = [ex for ex in result.card_trace if ex.command[1] == READ_RECORDS]
    counters = next(ex for ex in reads if ex.command[3] >> 3 == SFI_COUNTERS)
    assert counters.command[4] == 3 and len(counters.response) == 3 + 2


def test_card_answers_a_short_counters_read_with_the_first_counters() -> None:
    """Le = 3 x n on a counters file gives its first n counters; another short Le gives 6Cxx."""
    card = make_card("multi_trip")
    reader = EmulatedReader("card")
    reader.insert(card)
    connection = reader.connect()
    connection.transmit(bytes.fromhex("00A4040009") + DEMO_AID + b"\x00")
    p2 = (SFI_COUNTERS << 3) | 4
    six = connection.transmit(bytes([0x00, 0xB2, 0x01, p2, 0x06]))
    assert six.sw == 0x9000 and len(six.data) == 6
    assert int.from_bytes(six.data[:3], "big") == card.counter(SFI_COUNTERS, 1)
    assert connection.transmit(bytes([0x00, 0xB2, 0x01, p2, 0x04])).sw & 0xFF00 == 0x6C00
