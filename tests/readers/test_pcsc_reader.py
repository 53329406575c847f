# SPDX-License-Identifier: Apache-2.0
"""PcscReader against a real pcscd: presence, tearing, mute cards, pcscd going away and back."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from pathlib import Path

import pytest

from calypso.emulator.dispatch import CardEmulator
from lab.pcscd import CARD_READER, SAM_READER, InsertCard, PrivatePcscd
from readers.base import CardRemovedError, ReaderError, ReaderTimeoutError
from readers.channel import ApduChannel
from readers.pcsc import PcscReader, list_readers
from readers.spec import open_reader
from readers.vpcd import VpcdCard
from sam.base import SamError
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO_AID = bytes.fromhex("315449432E49434131")
SELECT = bytes.fromhex("00A4040009315449432E4943413100")


def multi_trip() -> CardEmulator:
    """A fresh multi-trip card."""
    return CardEmulator.from_profile(CONFIG / "cards" / "multi_trip.yaml")


def software_sam() -> SoftwareSam:
    """A fresh software SAM with the simulation keys."""
    return SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)


class TestPresence:
    """Insertion and removal are seen through SCardGetStatusChange."""

    def test_lists_the_private_readers(self, pcscd: PrivatePcscd):
        """list_readers() sees the four vpcd slots of the private pcscd."""
        assert set(pcscd.readers) <= set(list_readers())

    def test_no_card_times_out(self, pcscd: PrivatePcscd):
        """An empty reader gives None after the timeout, and removal is immediate."""
        with PcscReader(re.escape(CARD_READER)) as reader:
            assert reader.wait_for_card(0.2) is None
            assert reader.wait_for_removal(0.2)

    def test_insertion_and_removal_are_detected(self, pcscd: PrivatePcscd):
        """A card appearing is connected with its ATR; its removal ends wait_for_removal."""
        slot = VpcdCard(pcscd.ports[CARD_READER])
        emulator = multi_trip()
        with open_reader(f"pcsc:{re.escape(CARD_READER)}") as reader:
            slot.insert(emulator)
            connection = reader.wait_for_card(5.0)
            assert connection is not None
            assert connection.atr == emulator.power_on()
            assert connection.transmit(SELECT).ok
            assert not reader.wait_for_removal(0.1)
            slot.remove()
            started = time.monotonic()
            assert reader.wait_for_removal(5.0)
            assert time.monotonic() - started < 2.0  # pcscd polls every ~400 ms
            with pytest.raises(CardRemovedError):
                connection.transmit(SELECT)
            connection.close()

    def test_torn_card_is_card_removed(self, insert_card: InsertCard):
        """The empty "success" a torn card produces is reported as CardRemovedError."""
        slot = insert_card(multi_trip())
        with PcscReader(re.escape(CARD_READER)) as reader:
            connection = reader.wait_for_card(5.0)
            assert connection is not None
            slot.tear_on_next_apdu()
            with pytest.raises(CardRemovedError):
                connection.transmit(SELECT)
            assert reader.wait_for_removal(5.0)

    def test_mute_card_trips_the_watchdog(self, insert_card: InsertCard):
        """A card that never answers gives ReaderTimeoutError after the configured timeout."""
        slot = insert_card(multi_trip())
        with PcscReader(re.escape(CARD_READER), timeout=0.3) as reader:
            connection = reader.wait_for_card(5.0)
            assert connection is not None
            slot.mute_on_next_apdu(1.0)
            started = time.monotonic()
            with pytest.raises(ReaderTimeoutError):
                connection.transmit(SELECT)
            assert time.monotonic() - started < 0.9
            connection.close()
            slot.wait_removed(5.0)
            # The reader left the blocked context behind and works again on a new one.
            assert reader.wait_for_removal(5.0)


class TestPcscdRestart:
    """pcscd stopped and started again: errors meanwhile, no gate, service resumes."""

    def test_outage_is_reported_and_the_next_card_served(
        self, pcscd: PrivatePcscd, rules: FareRules, morning: dt.datetime
    ):
        """While pcscd is down every call is a ReaderError; once back, the next card is granted."""
        card_slot = VpcdCard(pcscd.ports[CARD_READER])
        sam_slot = VpcdCard(pcscd.ports[SAM_READER])
        card_reader = PcscReader(re.escape(CARD_READER), retry_interval=0.1)
        sam_reader = PcscReader(re.escape(SAM_READER), retry_interval=0.1)
        try:
            sam_slot.insert(software_sam())
            card_slot.insert(multi_trip())
            sam = sam_reader.wait_for_card(5.0)
            connection = card_reader.wait_for_card(5.0)
            assert sam is not None and connection is not None
            pcscd.stop()
            assert card_slot.wait_removed(5.0) and sam_slot.wait_removed(5.0)
            channel = ApduChannel(sam, label="sam")
            with pytest.raises(SamError):  # a SAM lost with pcscd: never taken for a lost card
                LegacySam(channel).prefetch()
            outage = validate(
                connection, LegacySam(channel), rules, TapContext(morning, 101), aids=[DEMO_AID]
            )
            assert not outage.outcome.opens_gate
            for reader in (card_reader, sam_reader):
                with pytest.raises(ReaderError):
                    reader.wait_for_card(0.5)
                with pytest.raises(ReaderError):
                    reader.wait_for_card(0.5)  # still down: reported again, not hung
            pcscd.start()
            sam_slot.insert(software_sam())
            card_slot.insert(multi_trip())
            sam = sam_reader.wait_for_card(5.0)
            connection = card_reader.wait_for_card(5.0)
            assert sam is not None and connection is not None
            channel = ApduChannel(sam, label="sam")
            served = validate(
                connection, LegacySam(channel), rules, TapContext(morning, 101), aids=[DEMO_AID]
            )
            assert served.outcome is Outcome.GRANTED, served.explanation
            connection.close()
            sam.close()
        finally:
            card_slot.remove()
            sam_slot.remove()
            card_reader.close()
            sam_reader.close()
            if not pcscd.running:
                pcscd.start()


class TestFigures:
    """Round trip and tap time through the real stack (printed; no timed assertion)."""

    def test_measures_round_trip_and_tap(
        self, insert_card: InsertCard, rules: FareRules, morning: dt.datetime, capsys
    ):
        """Median SELECT round trip over 200 APDUs and median tap time over 5 taps."""
        insert_card(software_sam(), SAM_READER)
        with (
            PcscReader(re.escape(CARD_READER)) as card_reader,
            PcscReader(re.escape(SAM_READER)) as sam_reader,
        ):
            sam = sam_reader.wait_for_card(5.0)
            assert sam is not None
            channel = ApduChannel(sam, label="sam")
            legacy = LegacySam(channel)
            card_slot = insert_card(multi_trip())
            connection = card_reader.wait_for_card(5.0)
            assert connection is not None
            trips = []
            for _ in range(200):
                started = time.perf_counter()
                connection.transmit(SELECT)
                trips.append(time.perf_counter() - started)
            taps = []
            for n in range(5):
                result = validate(
                    connection,
                    legacy,
                    rules,
                    TapContext(morning + dt.timedelta(hours=n), 101),
                    aids=[DEMO_AID],
                )
                assert result.outcome is Outcome.GRANTED
                taps.append(result.elapsed)
            connection.close()
            card_slot.remove()
        with capsys.disabled():
            print(
                f"\n[pcscd] APDU round trip median {statistics.median(trips) * 1e3:.3f} ms "
                f"(p95 {sorted(trips)[189] * 1e3:.3f} ms); tap median "
                f"{statistics.median(taps) * 1e3:.1f} ms (9 card + SAM APDUs)"
            )
