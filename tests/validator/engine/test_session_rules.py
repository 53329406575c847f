# SPDX-License-Identifier: Apache-2.0
"""Session rules in the engine: buffer accounting, multiple sessions, authorised keys, reads."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import CARDS, DEMO_AID, Station, make_card

from calypso.card_image import CalypsoCard
from calypso.commands.select import parse_select_application, select_application
from calypso.constants import WriteAccessLevel
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import load_profile
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.policy import AuthorizedKeys
from validator.engine.attempt import validate
from validator.engine.fares.decide import TapContext
from validator.engine.outcome import Outcome
from validator.engine.session import ModificationBufferOverflowError, Ratification, SecureSession

SFI_EVENTS = 0x08
SMALL_BUFFER = bytes.fromhex("063C2005141001")  # indicator 06: 215 bytes


def small_buffer_card() -> CardEmulator:
    """The multi-trip card with the smallest Rev3 buffer (215 bytes)."""
    profile = load_profile(CARDS / "multi_trip.yaml")
    return CardEmulator(profile.model_copy(update={"startup_info": SMALL_BUFFER}))


def open_session(station: Station, card: CardEmulator, **kwargs: object) -> SecureSession:
    """Select the card and build a SecureSession on it (not yet opened)."""
    reader = EmulatedReader("card")
    reader.insert(card)
    channel = ApduChannel(reader.connect())
    command = select_application(DEMO_AID)
    app = parse_select_application(channel.transmit(command), command)
    crypto = station.sam.session_crypto(app.serial)
    return SecureSession(channel, crypto, CalypsoCard(app), **kwargs)  # type: ignore[arg-type]


class TestModificationBuffer:
    """The engine counts the card's buffer and never lets the card refuse with 6400."""

    def test_overflow_raised_before_sending(self, station: Station) -> None:
        """Six 35-byte appends fit in 215 bytes; the seventh is refused by the terminal."""
        card = small_buffer_card()
        before = card.snapshot().files
        session = open_session(station, card)
        with session, pytest.raises(ModificationBufferOverflowError, match="215 bytes"):
            session.open(WriteAccessLevel.DEBIT)
            for n in range(7):
                session.append_record(SFI_EVENTS, bytes([n + 1]) * 29)
        sent = [ex.command for ex in session.card.exchanges if ex.command[1] == 0xE2]
        assert len(sent) == 6  # the seventh never left the terminal
        assert card.snapshot().files == before  # aborted: nothing committed

    def test_multiple_session_mode_splits_and_commits(self, station: Station) -> None:
        """With multiple sessions on, seven appends land in two MAC-verified sessions."""
        card = small_buffer_card()
        serial = card.serial
        session = open_session(station, card, new_crypto=lambda: station.sam.session_crypto(serial))
        with session:
            session.open(WriteAccessLevel.DEBIT)
            for n in range(7):
                session.append_record(SFI_EVENTS, bytes([n + 1]) * 29)
            session.close(Ratification.IMMEDIATE)
        assert session.sessions == 2 and session.mac_verified
        assert card.read_record(SFI_EVENTS, 1) == bytes([7]) * 29


class TestAuthorisedKeys:
    """Keys outside the policy are refused before any digest."""

    def test_simulation_key_refused_in_production(self, station: Station, morning) -> None:
        """A KVC F0h card under a production policy: denied, nothing written."""
        card = make_card("multi_trip")
        before = card.snapshot().files
        reader = EmulatedReader("card")
        reader.insert(card)
        result = validate(
            reader.connect(),
            station.sam,
            station.rules,
            _context(morning),
            aids=[DEMO_AID],
            authorized=AuthorizedKeys(allow_simulation=False),
        )
        assert result.outcome is Outcome.DENIED
        assert result.reason == "key_not_authorized"
        assert "simulation" in result.explanation
        assert card.snapshot().files == before

    def test_key_not_in_list(self, station: Station, morning) -> None:
        """Only 30/79 authorised: the card's 30/F0 is refused."""
        reader = EmulatedReader("card")
        reader.insert(make_card("season_pass"))
        policy = AuthorizedKeys.parse(["30/79"], allow_simulation=True)
        result = validate(
            reader.connect(),
            station.sam,
            station.rules,
            _context(morning),
            aids=[DEMO_AID],
            authorized=policy,
        )
        assert result.reason == "key_not_authorized"

    def test_listed_key_accepted(self, station: Station, morning) -> None:
        """30/F0 authorised (simulation on): granted."""
        reader = EmulatedReader("card")
        reader.insert(make_card("season_pass"))
        policy = AuthorizedKeys.parse(["30/F0"], allow_simulation=True)
        result = validate(
            reader.connect(),
            station.sam,
            station.rules,
            _context(morning),
            aids=[DEMO_AID],
            authorized=policy,
        )
        assert result.outcome is Outcome.GRANTED


def _context(now: dt.datetime) -> TapContext:
    """A tap at station 101."""
    return TapContext(now, 101)


class TestReadsWithinTheSamLimit:
    """Reads in a session are split so that every answer fits what the SAM can digest."""

    def test_s1dx_capacity_splits_reads(self, station: Station) -> None:
        """With a 65-byte capacity, 4 contracts are read 2 by 2 (2 x 31 bytes per APDU)."""
        session = open_session(station, make_card("multi_trip"), payload_capacity=65)
        with session:
            session.open(WriteAccessLevel.DEBIT)
            records = session.read_records(0x09, 1, count=4)
            session.cancel()
        assert sorted(records) == [1, 2, 3, 4]
        reads = [ex.command for ex in session.card.exchanges if ex.command[1] == 0xB2]
        assert [r.hex().upper() for r in reads] == ["00B2014D3E", "00B2034D3E"]
