# SPDX-License-Identifier: Apache-2.0
"""Whole validations through pyscard -> pcscd -> vpcd, for the card and for the SAM."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from calypso.emulator.dispatch import CardEmulator
from calypso.layouts.demo import SFI_COUNTERS, SFI_EVENTS, Event
from lab.pcscd import CARD_READER, SAM_READER, InsertCard, PrivatePcscd
from readers.channel import ApduChannel
from readers.emulated import Fault, FaultKind
from readers.pcsc import PcscConnection, PcscReader
from readers.vpcd import VpcdCard
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome, TapResult

pytest_plugins = ["pcsc_fixtures"]

CARDS = Path(__file__).resolve().parents[2] / "config" / "cards"
DEMO_AID = bytes.fromhex("315449432E49434131")
MULTI_TRIP_APDUS = 9  # select, open, event, contracts, counters, decrease, append, close, ratify
CLOSE_INDEX = 8


def card(profile: str, seed: int = 7) -> CardEmulator:
    """A card emulator from a shipped profile with reproducible challenges."""
    return CardEmulator.from_profile(CARDS / f"{profile}.yaml", rng=random.Random(seed).randbytes)


@dataclass
class PcscStation:
    """A validator whose card and SAM both sit behind the real PC/SC stack."""

    rules: FareRules
    card_reader: PcscReader
    card_slot: VpcdCard
    sam: LegacySam

    def tap(
        self, emulator: CardEmulator, now: dt.datetime, *, tear_at: int | None = None
    ) -> TapResult:
        """Insert the card, validate through pcscd, remove the card and wait until pcscd sees it."""
        self.card_slot.insert(emulator)
        if tear_at is not None:
            self.card_slot.tear_on_next_apdu(after=tear_at - 1)
        connection = self.card_reader.wait_for_card(5.0)
        assert connection is not None, "pcscd never reported the card"
        try:
            return validate(
                connection,
                self.sam,
                self.rules,
                TapContext(now, 101),
                aids=[DEMO_AID],
            )
        finally:
            connection.close()
            self.card_slot.remove()
            assert self.card_reader.wait_for_removal(5.0)


@pytest.fixture
def pcsc_station(
    pcscd: PrivatePcscd, insert_card: InsertCard, rules: FareRules
) -> Iterator[PcscStation]:
    """The software SAM in the SAM reader, an empty card reader, both reached through pyscard."""
    # A SAM of its own: the in-process twin station must not reset this one under our feet.
    keys = CARDS.parent / "keys.sim.yaml"
    software_sam = SoftwareSam.from_keys(keys, random.Random(99).randbytes, allow_simulation=True)
    insert_card(software_sam, SAM_READER)
    sam_reader = PcscReader(re.escape(SAM_READER), timeout=3.0)
    sam_connection = sam_reader.wait_for_card(5.0)
    assert isinstance(sam_connection, PcscConnection)
    assert sam_connection.protocol == "T=0"
    channel = ApduChannel(sam_connection, label="sam")
    card_reader = PcscReader(re.escape(CARD_READER), timeout=3.0)
    slot = VpcdCard(pcscd.ports[CARD_READER])
    yield PcscStation(rules, card_reader, slot, LegacySam(channel))
    slot.remove()
    sam_connection.close()
    sam_reader.close()
    card_reader.close()


class TestValidationThroughPcscd:
    """The validation procedure gives the same results through pcscd as in process."""

    def test_multi_trip_is_granted_and_debited_once(
        self, pcsc_station: PcscStation, morning: dt.datetime
    ):
        """A multi-trip card is granted, its counter decremented once, the event appended."""
        emulator = card("multi_trip")
        start = emulator.counter(SFI_COUNTERS, 1)
        result = pcsc_station.tap(emulator, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.mac_verified
        assert result.card_apdus == MULTI_TRIP_APDUS
        assert result.sam_apdus > 0
        assert emulator.counter(SFI_COUNTERS, 1) == start - 1
        assert Event.decode(emulator.read_record(SFI_EVENTS, 1)).stamp == morning
        assert emulator.ratified

    def test_season_pass_is_granted_without_debit(
        self, pcsc_station: PcscStation, morning: dt.datetime
    ):
        """A season pass opens the gate and leaves its counters alone."""
        emulator = card("season_pass")
        counters = emulator.read_record(SFI_COUNTERS, 1)
        result = pcsc_station.tap(emulator, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.debit == 0 and result.mac_verified
        assert emulator.read_record(SFI_COUNTERS, 1) == counters

    def test_rev2_purse_is_granted_through_pcscd(
        self, pcsc_station: PcscStation, morning: dt.datetime
    ):
        """A Prime Rev2 SV purse pays through pcscd: SV Get and SV Debit in class FAh (16.1)."""
        emulator = card("other/sv_purse_rev2")
        before = emulator.sv_balance
        assert before is not None
        result = pcsc_station.tap(emulator, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.reason == "sv_debited" and result.mac_verified
        assert emulator.sv_balance == before - result.debit and result.debit > 0
        sv_commands = [ex.command[:2] for ex in result.card_trace if ex.command[1] in (0x7C, 0xBA)]
        assert sv_commands == [bytes.fromhex("FA7C"), bytes.fromhex("FABA")]
        assert emulator.ratified

    def test_expired_card_is_denied_and_unchanged(
        self, pcsc_station: PcscStation, morning: dt.datetime
    ):
        """An expired card is refused and not a byte of it changes."""
        emulator = card("expired")
        before = emulator.snapshot()
        result = pcsc_station.tap(emulator, morning)
        assert result.outcome is Outcome.DENIED
        assert result.reason == "expired_title"
        assert not result.outcome.opens_gate
        assert emulator.snapshot().files == before.files


class TestTearingThroughPcscd:
    """A card torn at each APDU of the session, through the real stack."""

    def test_torn_at_every_apdu(
        self,
        pcsc_station: PcscStation,
        station: Any,
        morning: dt.datetime,
    ):
        """Each tear leaves the card as in process: unchanged before Close, paid once after."""
        # ``station`` is the in-process twin (emulated reader, REMOVED_DURING = our tear).
        for index in range(1, MULTI_TRIP_APDUS + 1):
            real, twin = card("multi_trip"), card("multi_trip")
            before = real.snapshot()
            start = real.counter(SFI_COUNTERS, 1)
            result = pcsc_station.tap(real, morning, tear_at=index)
            expected = station.tap(twin, morning, [Fault(FaultKind.REMOVED_DURING, index)])
            assert result.outcome is expected.outcome, (index, result.explanation)
            assert real.snapshot() == twin.snapshot(), index
            if index < CLOSE_INDEX:
                assert result.outcome is Outcome.CARD_LOST, index
                assert real.snapshot().files == before.files, index
            else:
                assert real.counter(SFI_COUNTERS, 1) == start - 1, index
            if index == CLOSE_INDEX:
                assert result.outcome is Outcome.UNKNOWN and not result.outcome.opens_gate
            assert not real.session_open
