# SPDX-License-Identifier: Apache-2.0
"""Multiple-session mode: the intermediate Close is sent unratified, on purpose (issue 16.8).

Keyple closes an intermediate session ratified (P1=80h, calypso-protocol 2.2 and 2.6). The
engine sends P1=00h: the next Open ratifies it, and a card lost between the two is seen at its
next tap as an unratified session, so the recovery rule (DESIGN 5) completes the tap without a
second debit. docs/protocol-differences.md gives the reasoning.
"""

from __future__ import annotations

from conftest import CARDS, Station

from calypso.card_image import CalypsoCard
from calypso.commands.select import parse_select_application, select_application
from calypso.constants import WriteAccessLevel
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import load_profile
from readers.base import ReaderError
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault, FaultKind
from validator.engine.session import Ratification, SecureSession

SFI_EVENTS = 0x08
SMALL_BUFFER = bytes.fromhex("063C2005141001")  # indicator 06: 215 bytes, six 29-byte appends
INS_OPEN, INS_CLOSE = 0x8A, 0x8E
P1_RATIFIED, P1_NOT_RATIFIED = 0x80, 0x00


def multi_session(station: Station) -> tuple[CardEmulator, EmulatedReader, SecureSession]:
    """A small-buffer card and an engine in multiple-session mode, session not yet opened."""
    profile = load_profile(CARDS / "multi_trip.yaml")
    card = CardEmulator(profile.model_copy(update={"startup_info": SMALL_BUFFER}))
    reader = EmulatedReader("card")
    reader.insert(card)
    channel = ApduChannel(reader.connect())
    command = select_application(profile.aid)
    app = parse_select_application(channel.transmit(command), command)
    session = SecureSession(
        channel,
        station.sam.session_crypto(app.serial),
        CalypsoCard(app),
        new_crypto=lambda: station.sam.session_crypto(app.serial),
    )
    return card, reader, session


class TestIntermediateClose:
    """What the intermediate Close sends, and what it buys."""

    def test_intermediate_close_is_p1_00_then_the_open_ratifies(self, station: Station) -> None:
        """Intermediate Close P1=00h directly followed by Open; the final Close as asked (80h)."""
        card, _, session = multi_session(station)
        with session:
            session.open(WriteAccessLevel.DEBIT)
            for n in range(7):
                session.append_record(SFI_EVENTS, bytes([n + 1]) * 29)
            session.close(Ratification.IMMEDIATE)
        sent = [ex.command for ex in session.card.exchanges]
        closes = [i for i, c in enumerate(sent) if c[1] == INS_CLOSE]
        assert [sent[i][2] for i in closes] == [P1_NOT_RATIFIED, P1_RATIFIED]
        assert sent[closes[0] + 1][1] == INS_OPEN  # the next command, which ratifies it
        assert session.sessions == 2 and session.mac_verified and card.ratified

    def test_card_lost_after_the_intermediate_close_is_unratified(self, station: Station) -> None:
        """Lost before the second Open: the first session is kept, marked not ratified."""
        card, reader, session = multi_session(station)
        with session:
            session.open(WriteAccessLevel.DEBIT)
            for n in range(6):
                session.append_record(SFI_EVENTS, bytes([n + 1]) * 29)
            # APDUs since insertion: Select 1, Open 2, six appends 3..8, intermediate Close 9;
            # the 10th (the second Open) never reaches the card.
            reader.inject(Fault(FaultKind.REMOVED_BEFORE, 10))
            try:
                session.append_record(SFI_EVENTS, bytes([7]) * 29)
            except ReaderError:
                pass
        assert session.committed_writes  # the first session, MAC verified, holds the writes
        assert card.read_record(SFI_EVENTS, 1) == bytes([6]) * 29
        assert not card.ratified  # what makes the next tap a recovery, not a second debit
