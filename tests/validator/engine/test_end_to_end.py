# SPDX-License-Identifier: Apache-2.0
"""End to end in process: emulated card, emulated readers, software SAM over its APDUs."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import CONFIG, Station, make_card

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from calypso.layouts.demo import SFI_COUNTERS, SFI_EVENTS, Event
from readers.base import PassThroughHandler
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.engine.outcome import Outcome

LATER = dt.timedelta(minutes=30)

# APDU numbers of a multi-trip tap: 1 select, 2 open+env, 3 event, 4 contracts, 5 counters,
# 6 decrease, 7 append event, 8 close, 9 ratification.
CLOSE_INDEX = 8


class TestMultiTrip:
    """A multi-trip card pays one unit per granted tap and nothing more."""

    def test_debited_exactly_once_per_granted_tap(self, station: Station, morning: dt.datetime):
        """Three taps half an hour apart take three trips and append three events."""
        card = make_card("multi_trip")
        start = card.counter(SFI_COUNTERS, 1)
        for n in range(1, 4):
            result = station.tap(card, morning + n * LATER)
            assert result.outcome is Outcome.GRANTED
            assert result.mac_verified
            assert result.debit == 1
            assert result.remaining == start - n
            assert card.counter(SFI_COUNTERS, 1) == start - n
        newest = Event.decode(card.read_record(SFI_EVENTS, 1))
        assert newest.location == 101
        assert newest.contract_used == 1
        assert newest.stamp == morning + 3 * LATER
        assert card.ratified

    def test_counts_its_apdus(self, station: Station, morning: dt.datetime):
        """A multi-trip tap costs 9 card APDUs, ratification included."""
        result = station.tap(make_card("multi_trip"), morning)
        assert result.card_apdus == 9
        assert [bytes(ex.command)[1] for ex in result.card_trace] == [
            0xA4,
            0x8A,
            0xB2,
            0xB2,
            0xB2,
            0x30,
            0xE2,
            0x8E,
            0xB2,
        ]

    def test_second_tap_inside_anti_passback_is_denied(
        self, station: Station, morning: dt.datetime
    ):
        """A ratified validation a few seconds old at the same station is refused, unpaid."""
        card = make_card("multi_trip")
        assert station.tap(card, morning).outcome is Outcome.GRANTED
        before = card.snapshot().files
        again = station.tap(card, morning + dt.timedelta(seconds=20))
        assert again.outcome is Outcome.DENIED
        assert again.reason == "anti_passback"
        assert card.snapshot().files == before


class TestSeasonPass:
    """A season pass opens the gate without touching any counter."""

    def test_granted_without_debit(self, station: Station, morning: dt.datetime):
        """The season pass is granted, counters unchanged, one event appended."""
        card = make_card("season_pass")
        counters_before = card.read_record(SFI_COUNTERS, 1)
        result = station.tap(card, morning)
        assert result.outcome is Outcome.GRANTED
        assert result.debit == 0
        assert result.remaining is None
        assert result.mac_verified
        assert card.read_record(SFI_COUNTERS, 1) == counters_before
        assert Event.decode(card.read_record(SFI_EVENTS, 1)).stamp == morning


class TestRefusals:
    """Refused cards leave the gate shut and the card as it was."""

    def test_expired_card_is_denied_and_unchanged(self, station: Station, morning: dt.datetime):
        """An expired season pass is denied and no record changes."""
        card = make_card("expired")
        before = card.snapshot().files
        result = station.tap(card, morning)
        assert result.outcome is Outcome.DENIED
        assert result.reason == "expired_title"
        assert not result.mac_verified
        assert not result.outcome.opens_gate
        assert card.snapshot().files == before
        assert not card.session_open

    def test_wrong_card_keys_are_denied_and_unchanged(self, station: Station, morning: dt.datetime):
        """A card personalised with keys the SAM does not hold is denied, unchanged, unverified."""
        card = make_card("wrong_keys")
        before = card.snapshot().files
        result = station.tap(card, morning)
        assert result.outcome is Outcome.DENIED
        assert result.reason == "card_not_authentic"
        assert result.mac_verified is False
        assert card.snapshot().files == before

    def test_empty_card_is_denied(self, station: Station, morning: dt.datetime):
        """A clean card (event version 0) is denied as empty."""
        result = station.tap(make_card("empty"), morning)
        assert result.outcome is Outcome.DENIED
        assert result.reason == "empty_card"


class TestTearing:
    """A card pulled from the field at any point: never a double debit, never a free pass."""

    @pytest.mark.parametrize("index", range(2, CLOSE_INDEX))
    @pytest.mark.parametrize(
        "kind", [FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING, FaultKind.REMOVED_AFTER]
    )
    def test_card_removed_before_close_is_unchanged(
        self, station: Station, morning: dt.datetime, index: int, kind: FaultKind
    ):
        """Removed anywhere before Close: card data unchanged; card_lost, or unknown at Close."""
        card = make_card("multi_trip")
        before = card.snapshot().files
        result = station.tap(card, morning, [Fault(kind, index)])
        # Removed right after the last write: the failure shows on Close, which the validator
        # cannot tell from a Close lost on its way back, so it journals it as unknown.
        at_close = kind is FaultKind.REMOVED_AFTER and index == CLOSE_INDEX - 1
        assert result.outcome is (Outcome.UNKNOWN if at_close else Outcome.CARD_LOST)
        assert not result.outcome.opens_gate
        assert card.snapshot().files == before

    def test_lost_as_close_is_sent_is_unknown_and_unpaid(
        self, station: Station, morning: dt.datetime
    ):
        """Close never reached the card: the validator cannot tell, so unknown; card unpaid."""
        card = make_card("multi_trip")
        start = card.counter(SFI_COUNTERS, 1)
        before = card.snapshot().files
        lost = station.tap(card, morning, [Fault(FaultKind.REMOVED_BEFORE, CLOSE_INDEX)])
        assert lost.outcome is Outcome.UNKNOWN
        assert card.snapshot().files == before
        again = station.tap(card, morning + dt.timedelta(seconds=15))
        assert again.outcome is Outcome.GRANTED
        assert card.counter(SFI_COUNTERS, 1) == start - 1

    def test_lost_during_close_is_unknown_then_recovered(
        self, station: Station, morning: dt.datetime
    ):
        """Close executed but unanswered: outcome unknown; the next tap recovers without a debit."""
        card = make_card("multi_trip")
        start = card.counter(SFI_COUNTERS, 1)
        lost = station.tap(card, morning, [Fault(FaultKind.REMOVED_DURING, CLOSE_INDEX)])
        assert lost.outcome is Outcome.UNKNOWN
        assert not lost.outcome.opens_gate
        assert card.counter(SFI_COUNTERS, 1) == start - 1
        assert not card.ratified
        again = station.tap(card, morning + dt.timedelta(seconds=15))
        assert again.outcome is Outcome.RECOVERED
        assert again.mac_verified
        assert again.debit == 0
        assert card.counter(SFI_COUNTERS, 1) == start - 1
        assert card.ratified

    def test_lost_before_ratification_keeps_the_paid_trip(
        self, station: Station, morning: dt.datetime
    ):
        """Close answered, ratification lost: the gate opens and the next tap pays nothing."""
        card = make_card("multi_trip")
        start = card.counter(SFI_COUNTERS, 1)
        paid = station.tap(card, morning, [Fault(FaultKind.REMOVED_BEFORE, CLOSE_INDEX + 1)])
        assert paid.outcome is Outcome.GRANTED
        assert paid.mac_verified
        assert not card.ratified
        again = station.tap(card, morning + dt.timedelta(seconds=30))
        assert again.outcome is Outcome.RECOVERED
        assert card.counter(SFI_COUNTERS, 1) == start - 1

    def test_unratified_outside_the_window_pays_again(self, station: Station, morning: dt.datetime):
        """An unratified validation older than the recovery window is a new trip."""
        card = make_card("multi_trip")
        start = card.counter(SFI_COUNTERS, 1)
        station.tap(card, morning, [Fault(FaultKind.REMOVED_BEFORE, CLOSE_INDEX + 1)])
        later = station.tap(card, morning + LATER)
        assert later.outcome is Outcome.GRANTED
        assert card.counter(SFI_COUNTERS, 1) == start - 2

    def test_mute_card_is_an_error_that_pays_nothing(self, station: Station, morning: dt.datetime):
        """A card that stops answering mid-session is treated as lost; nothing is committed."""
        card = make_card("multi_trip")
        before = card.snapshot().files
        result = station.tap(card, morning, [Fault(FaultKind.MUTE, 6)])
        assert result.outcome is Outcome.CARD_LOST
        assert card.snapshot().files == before


class TestSamFailures:
    """A SAM that fails never opens the gate and never costs the passenger."""

    @pytest.mark.parametrize("sam_apdu", [1, 2, 3, 4, 5])  # up to Digest Close
    def test_sam_lost_mid_tap(self, station: Station, morning: dt.datetime, sam_apdu: int):
        """The SAM leaves at its Nth APDU of the tap: error, gate shut, card unchanged."""
        sam_reader = EmulatedReader("sam")
        software = SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
        sam_reader.insert(software)
        channel = ApduChannel(sam_reader.connect(), label="sam")
        broken = Station(station.rules, LegacySam(channel))
        sam_reader.inject(Fault(FaultKind.REMOVED_BEFORE, sam_apdu))
        card = make_card("multi_trip")
        before = card.snapshot().files
        result = broken.tap(card, morning)
        assert result.outcome is Outcome.ERROR
        assert result.reason == "sam_error"
        assert not result.outcome.opens_gate and not result.mac_verified
        assert card.snapshot().files == before
        assert not card.session_open


class ForgedMacCard(PassThroughHandler[CardEmulator]):
    """A clone that skips the terminal-MAC check and answers Close with a MAC of its own."""

    def process(self, apdu: bytes) -> bytes:
        """Answer everything like the card, but forge the Close answer."""
        if apdu[1] == CardIns.CLOSE_SECURE_SESSION and len(apdu) > 5:
            return bytes.fromhex("DEADBEEF9000")
        return super().process(apdu)


class TestMixedPair:
    """A card MAC the SAM rejects (6988 at Digest Authenticate) keeps the gate shut."""

    def test_forged_card_mac(self, station: Station, morning: dt.datetime):
        """Close 'succeeds' with a forged MAC: the SAM says 6988, denied, gate shut."""
        card = make_card("multi_trip")
        result = station.tap(ForgedMacCard(card), morning)
        assert result.outcome is Outcome.DENIED
        assert result.reason == "card_mac_invalid"
        assert not result.mac_verified and not result.outcome.opens_gate
        authenticate = [ex for ex in result.sam_trace if ex.command[1] == 0x82]
        assert authenticate and authenticate[-1].response[-2:] == bytes.fromhex("6988")


class TestSvPurse:
    """The Calypso SV purse pays when no contract does, inside the secure session."""

    def test_sv_debit_in_session(self, station: Station, morning: dt.datetime):
        """SV Get and SV Debit in session; the postponed SV signature passes SV Check."""
        card = make_card("sv_purse")
        before = card.sv_balance
        result = station.tap(card, morning)
        assert result.outcome is Outcome.GRANTED and result.reason == "sv_debited"
        assert result.mac_verified
        assert result.debit == 150 and result.remaining == before - 150
        assert card.sv_balance == before - 150
        sv_check = [ex for ex in result.sam_trace if ex.command[1] == 0x58]
        assert sv_check and sv_check[-1].response == bytes.fromhex("9000")
        assert [ex.command[1] for ex in result.card_trace] == [
            0xA4,
            0x8A,
            0xB2,
            0x7C,
            0xBA,
            0xE2,
            0x8E,
            0xB2,
        ]

    def test_purse_too_low(self, station: Station, morning: dt.datetime):
        """A purse below the fare is refused and left as it was."""
        card = make_card("sv_purse")
        for n in range(13):  # 2000 -> 50
            assert station.tap(card, morning + n * LATER).outcome is Outcome.GRANTED
        before = card.sv_balance
        refused = station.tap(card, morning + 14 * LATER)
        assert refused.outcome is Outcome.DENIED and refused.reason == "insufficient_value"
        assert card.sv_balance == before == 50
