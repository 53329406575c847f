# SPDX-License-Identifier: Apache-2.0
"""The emulated Rev3.2 card takes only the extended SV forms inside an extended session (16.7)."""

from __future__ import annotations

from conftest import CARDS, Station

from calypso.card_image import CalypsoCard
from calypso.commands.select import parse_select_application, select_application
from calypso.commands.sv import SvOperation, sv_get
from calypso.constants import WriteAccessLevel
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import load_profile
from readers.apdu import SW
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from validator.engine.session import SecureSession

PROFILE = CARDS / "other" / "sv_purse_extended.yaml"


def open_session(station: Station, *, extended: bool) -> tuple[SecureSession, ApduChannel]:
    """Select the Rev3.2 purse and open a DEBIT session, extended or regular."""
    profile = load_profile(PROFILE)
    reader = EmulatedReader("card")
    reader.insert(CardEmulator(profile))
    channel = ApduChannel(reader.connect())
    command = select_application(profile.aid)
    app = parse_select_application(channel.transmit(command), command)
    crypto = station.sam.session_crypto(app.serial, extended=extended)
    session = SecureSession(channel, crypto, CalypsoCard(app), extended=extended)
    session.open(WriteAccessLevel.DEBIT)
    return session, channel


class TestSvFormsInSession:
    """Which SV Get a Rev3.2 card accepts, per session mode."""

    def test_compatibility_sv_get_refused_in_an_extended_session(self, station: Station) -> None:
        """`00 7C 00 09 1E` inside an extended session: 6A81 (incorrect P1), nothing digested."""
        session, channel = open_session(station, extended=True)
        with session:
            response = channel.transmit(sv_get(SvOperation.DEBIT))
            assert response.sw == SW.FUNCTION_NOT_SUPPORTED and not response.data

    def test_extended_sv_get_accepted_in_an_extended_session(self, station: Station) -> None:
        """`00 7C 01 09 3D` inside an extended session: 61 bytes, 8-byte challenge first."""
        session, channel = open_session(station, extended=True)
        with session:
            response = channel.transmit(sv_get(SvOperation.DEBIT, extended=True))
            assert response.sw == SW.OK and len(response.data) == 0x3D

    def test_compatibility_sv_get_accepted_in_a_regular_session(self, station: Station) -> None:
        """A regular (compatibility) session on the same card keeps the compatibility SV Get."""
        session, channel = open_session(station, extended=False)
        with session:
            response = channel.transmit(sv_get(SvOperation.DEBIT))
            assert response.sw == SW.OK and len(response.data) == 0x1E
