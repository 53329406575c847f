# SPDX-License-Identifier: Apache-2.0
"""The emulated reader: insertion, removal, and each injectable fault."""

from __future__ import annotations

import threading
import time

import pytest

from readers.base import CardRemovedError, ReaderError, ReaderTimeoutError
from readers.emulated import EmulatedReader, Fault, FaultKind


class CountingCard:
    """A minimal ApduHandler that counts what it executed and echoes the command."""

    def __init__(self) -> None:
        self.executed: list[bytes] = []
        self.powered = False

    def power_on(self) -> bytes:
        """Power up."""
        self.powered = True
        return bytes.fromhex("3B00")

    def power_off(self) -> None:
        """Power down."""
        self.powered = False

    def process(self, apdu: bytes) -> bytes:
        """Echo the command with 9000."""
        self.executed.append(apdu)
        return apdu + b"\x90\x00"


APDU = bytes.fromhex("00B2013C00")


class TestEmulatedReader:
    """Faults strike exactly where they are set."""

    def test_insert_powers_and_connects(self) -> None:
        """A card inserted is powered and answers through the connection."""
        reader, card = EmulatedReader(), CountingCard()
        reader.insert(card)
        connection = reader.connect()
        assert card.powered and connection.atr == bytes.fromhex("3B00")
        assert connection.transmit(APDU).data == APDU

    def test_removed_before_does_not_execute(self) -> None:
        """REMOVED_BEFORE: the card never sees the command and loses power."""
        reader, card = EmulatedReader(), CountingCard()
        reader.insert(card)
        reader.inject(Fault(FaultKind.REMOVED_BEFORE, 2))
        connection = reader.connect()
        connection.transmit(APDU)
        with pytest.raises(CardRemovedError):
            connection.transmit(APDU)
        assert len(card.executed) == 1
        assert not card.powered and not reader.present

    def test_removed_during_executes_but_loses_the_answer(self) -> None:
        """REMOVED_DURING: the card executes the command; the terminal gets CardRemovedError."""
        reader, card = EmulatedReader(), CountingCard()
        reader.insert(card)
        reader.inject(Fault(FaultKind.REMOVED_DURING, 1))
        with pytest.raises(CardRemovedError):
            reader.connect().transmit(APDU)
        assert card.executed == [APDU]

    def test_removed_after_answers_then_leaves(self) -> None:
        """REMOVED_AFTER: the answer arrives, the next command finds no card."""
        reader, card = EmulatedReader(), CountingCard()
        reader.insert(card)
        reader.inject(Fault(FaultKind.REMOVED_AFTER, 1))
        connection = reader.connect()
        assert connection.transmit(APDU).ok
        with pytest.raises(CardRemovedError):
            connection.transmit(APDU)

    def test_mute_card_times_out(self) -> None:
        """MUTE: no answer, a ReaderTimeoutError, and the card did not execute."""
        reader, card = EmulatedReader(), CountingCard()
        reader.insert(card)
        reader.inject(Fault(FaultKind.MUTE, 1))
        with pytest.raises(ReaderTimeoutError):
            reader.connect().transmit(APDU)
        assert card.executed == []

    def test_short_response_loses_data_bytes(self) -> None:
        """SHORT_RESPONSE: data bytes are cut, the status word kept."""
        reader = EmulatedReader()
        reader.insert(CountingCard())
        reader.inject(Fault(FaultKind.SHORT_RESPONSE, 1, cut=2))
        response = reader.connect().transmit(APDU)
        assert response.data == APDU[:-2]
        assert response.ok

    def test_short_response_without_data_is_a_reader_error(self) -> None:
        """A lone byte is not a response: ReaderError, not a crash."""

        class Silent(CountingCard):
            def process(self, apdu: bytes) -> bytes:
                return b"\x90\x00"

        reader = EmulatedReader()
        reader.insert(Silent())
        reader.inject(Fault(FaultKind.SHORT_RESPONSE, 1))
        with pytest.raises(ReaderError, match="malformed"):
            reader.connect().transmit(APDU)

    def test_wait_for_card_and_removal(self) -> None:
        """wait_for_card returns when a card arrives; wait_for_removal when it goes."""
        reader = EmulatedReader()
        assert reader.wait_for_card(timeout=0.01) is None
        timer = threading.Timer(0.05, reader.insert, args=(CountingCard(),))
        timer.start()
        assert reader.wait_for_card(timeout=5) is not None
        assert not reader.wait_for_removal(timeout=0.01)
        threading.Timer(0.05, reader.remove).start()
        assert reader.wait_for_removal(timeout=5)


class _Sleepy:
    """A chip that takes ``delay`` seconds to answer anything."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def power_on(self) -> bytes:
        """A plain ATR."""
        return bytes.fromhex("3B00")

    def power_off(self) -> None:
        """Nothing to lose."""

    def process(self, apdu: bytes) -> bytes:
        """Answer 9000, late."""
        time.sleep(self.delay)
        return bytes.fromhex("9000")


def test_a_deadline_cuts_a_card_too_slow_to_answer() -> None:
    """Past the tap's deadline a transmit gives up (ReaderTimeoutError); before it, it waits."""
    reader = EmulatedReader("slow", cut_slow_cards=True)
    reader.insert(_Sleepy(0.3))
    connection = reader.connect()
    connection.set_deadline(time.monotonic() + 5)
    assert connection.transmit(bytes.fromhex("00B2000000")).sw == 0x9000
    connection.set_deadline(time.monotonic() + 0.05)
    start = time.monotonic()
    with pytest.raises(ReaderTimeoutError):
        connection.transmit(bytes.fromhex("00B2000000"))
    assert time.monotonic() - start < 0.25
    with pytest.raises(ReaderTimeoutError):  # the chip is still busy: no new command reaches it
        connection.transmit(bytes.fromhex("00B2000000"))


def test_a_plain_emulated_reader_waits_for_a_slow_card() -> None:
    """Without ``cut_slow_cards`` the deadline is only remembered: no thread, the answer waits."""
    reader = EmulatedReader("plain")
    reader.insert(_Sleepy(0.1))
    connection = reader.connect()
    connection.set_deadline(time.monotonic())
    assert connection.transmit(bytes.fromhex("00B2000000")).sw == 0x9000
