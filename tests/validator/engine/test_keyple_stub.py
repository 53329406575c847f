# SPDX-License-Identifier: Apache-2.0
"""Keyple's public stub card and SAM C1 (reference/keyple-stub-trace.md), replayed exactly."""

from __future__ import annotations

from calypso.card_image import CalypsoCard
from calypso.commands.select import parse_select_application, select_application
from calypso.constants import WriteAccessLevel
from readers.apdu import ResponseApdu
from readers.channel import ApduChannel
from readers.replay import ReplayConnection
from sam.client import LegacySam
from validator.engine.session import Ratification, SecureSession

AID = bytes.fromhex("315449432E49434131")
SERIAL = bytes.fromhex("00000000AABBCCDD")
ENV_RECORD = bytes.fromhex("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCC")

CARD_TABLE = [
    (  # Select Application "1TIC.ICA1"
        "00A4040009315449432E4943413100",
        "6F238409315449432E49434131A516BF0C13C70800000000AABBCCDD53070A3C23051410019000",
    ),
    (  # Open Secure Session, DEBIT, read SFI 07 record 1, SAM challenge 00112233
        "008A0B39040011223300",
        "0308D1810030791D" + ENV_RECORD.hex().upper() + "9000",
    ),
    ("008E8000041234567800", "876543219000"),  # Close, P1=80, terminal MAC 12345678
]
SAM_ATR = bytes.fromhex("3B3F9600805A0080C120000012345678829000")
SAM_TABLE = [
    ("801400000800000000AABBCCDD", "9000"),  # Select Diversifier
    ("8084000004", "001122339000"),  # Get Challenge
    (  # Digest Init, KIF 30, KVC 79, then the Open Secure Session data-out
        "808A00FF273079" + "0308D1810030791D" + ENV_RECORD.hex().upper(),
        "9000",
    ),
    ("808E000004", "123456789000"),  # Digest Close
    ("808200000487654321", "9000"),  # Digest Authenticate
]


def _pairs(table: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in table]


class TestKeypleStub:
    """The engine sends exactly the APDUs a Keyple-compatible terminal sends to the stubs."""

    def test_keyple_stub_authenticated_read(self) -> None:
        """Select, Open DEBIT + read SFI 07 rec 1, Close P1=80; SAM div, chal, init, close, auth."""
        card_link = ReplayConnection(_pairs(CARD_TABLE))
        sam_link = ReplayConnection(_pairs(SAM_TABLE), atr=SAM_ATR)
        card = ApduChannel(card_link, label="card")
        sam = LegacySam(ApduChannel(sam_link, label="sam"))

        select = select_application(AID)
        app = parse_select_application(card.transmit(select), select)
        assert app.serial == SERIAL
        image = CalypsoCard(app)
        with SecureSession(card, sam.session_crypto(app.serial), image) as session:
            opened = session.open(WriteAccessLevel.DEBIT, read=(0x07, 1))
            session.close(Ratification.IMMEDIATE)

        assert session.mac_verified
        assert opened.transaction_counter == 0x0308D1
        assert opened.ratified
        assert (opened.kif, opened.kvc) == (0x30, 0x79)
        assert image.record(0x07, 1) == ENV_RECORD
        assert card_link.sent == [c for c, _ in _pairs(CARD_TABLE)]
        assert sam_link.sent == [c for c, _ in _pairs(SAM_TABLE)]
        assert card_link.exhausted and sam_link.exhausted

    def test_keyple_stub_fci_reading(self) -> None:
        """The stub FCI decodes as the reference says: Rev3 with PIN and SV, subtype 05."""
        _, fci = _pairs(CARD_TABLE)[0]
        app = parse_select_application(ResponseApdu.from_bytes(fci))
        assert app.df_name == AID
        assert app.startup.raw == bytes.fromhex("0A3C2305141001")
        assert app.startup.session_buffer_bytes == 430
        assert app.startup.has_pin and app.startup.has_stored_value
        assert app.startup.application_subtype == 0x05
        assert not app.invalidated
