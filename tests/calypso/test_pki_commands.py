# SPDX-License-Identifier: Apache-2.0
"""PKI card commands: exact APDUs, answers parsed, status words as typed errors."""

from __future__ import annotations

import pytest
from calypso_terminal import h

from calypso.commands import CommandRef, command_name
from calypso.commands.pki import (
    Certificate,
    CertificatePart,
    close_pki_secure_session,
    get_data_certificate,
    join_certificate,
    open_pki_secure_session,
    parse_close_pki_secure_session,
    parse_get_data_certificate,
    parse_open_pki_secure_session,
)
from calypso.errors import (
    AccessForbiddenError,
    CardResponseError,
    CardTerminatedError,
    DataAccessError,
    IllegalParameterError,
    UnexpectedResponseLengthError,
)
from readers.apdu import ResponseApdu

VECTOR_OPEN_ANSWER = h("08 A000000291FF9101 0000000011223344 00 0304907A1B2C3D4E 00 0000 00")


class TestGetDataCertificate:
    """Get Data DF4C/DF4D and DF4A/DF4B (calypso-pki.md "Session")."""

    def test_apdus(self) -> None:
        """``00 CA DF 4C 00`` then ``DF 4D``; ``DF 4A`` then ``DF 4B``."""
        assert bytes(get_data_certificate(Certificate.CARD)) == h("00CADF4C00")
        assert bytes(get_data_certificate(Certificate.CARD, second_part=True)) == h("00CADF4D00")
        assert bytes(get_data_certificate(Certificate.CA)) == h("00CADF4A00")
        assert bytes(get_data_certificate(Certificate.CA, second_part=True)) == h("00CADF4B00")

    def test_headers(self) -> None:
        """The first answer's headers: DF 4C 82 01 3C (316) and DF 4A 82 01 80 (384)."""
        assert Certificate.CARD.header == h("DF4C82013C")
        assert Certificate.CA.header == h("DF4A820180")

    def test_two_parts_join(self) -> None:
        """Header + first bytes, then the rest: the whole certificate, header taken off."""
        cert = bytes(range(256)) + bytes(60)
        first_cmd = get_data_certificate(Certificate.CARD)
        second_cmd = get_data_certificate(Certificate.CARD, second_part=True)
        first = parse_get_data_certificate(
            ResponseApdu(h("DF4C82013C") + cert[:245], 0x9000), first_cmd
        )
        second = parse_get_data_certificate(ResponseApdu(cert[245:], 0x9000), second_cmd)
        assert first == CertificatePart(Certificate.CARD, True, cert[:245])
        assert not second.first and join_certificate(first, second) == cert

    def test_without_command(self) -> None:
        """Without the command, the part is told by ``second_part`` and the header's tag."""
        part = parse_get_data_certificate(ResponseApdu(h("DF4A820180") + bytes(10), 0x9000))
        assert part.certificate is Certificate.CA and part.first

    def test_wrong_header(self) -> None:
        """A first part with the CA header to a card certificate request: CardResponseError."""
        with pytest.raises(CardResponseError, match="header DF4C82013C"):
            parse_get_data_certificate(
                ResponseApdu(h("DF4A820180") + bytes(10), 0x9000),
                get_data_certificate(Certificate.CARD),
            )

    def test_truncated_certificate(self) -> None:
        """Parts that add up to less than 316 bytes: UnexpectedResponseLengthError."""
        first = CertificatePart(Certificate.CARD, True, bytes(245))
        second = CertificatePart(Certificate.CARD, False, bytes(70))
        with pytest.raises(UnexpectedResponseLengthError, match="315 bytes, expected 316"):
            join_certificate(first, second)

    @pytest.mark.parametrize(
        ("sw", "error"),
        [
            (0x6A88, DataAccessError),
            (0x6985, AccessForbiddenError),
            (0x6B00, IllegalParameterError),
        ],
    )
    def test_status_words(self, sw: int, error: type[Exception]) -> None:
        """6A88 (no certificate), 6985 (in a session), 6B00: each its typed error."""
        command = get_data_certificate(Certificate.CA)
        with pytest.raises(error, match="Get Data"):
            parse_get_data_certificate(ResponseApdu(b"", sw), command)


class TestOpenPki:
    """Open Secure Session in PKI mode."""

    def test_apdu(self) -> None:
        """The vector's Open: ``00 8A 00 03 09 00 <challenge> 00``; with a read, rec*8 sfi*8+3."""
        challenge = h("0011223344556677")
        assert bytes(open_pki_secure_session(challenge)) == h("008A000309000011223344556677 00")
        with_read = open_pki_secure_session(challenge, sfi=0x07, record=1)
        assert with_read.p1 == 0x08 and with_read.p2 == 0x3B
        assert command_name(bytes(with_read)) == "Open Secure Session"

    def test_bad_arguments(self) -> None:
        """A 4-byte challenge, or a record without an SFI: ValueError before any APDU."""
        with pytest.raises(ValueError, match="8-byte"):
            open_pki_secure_session(h("01020304"))
        with pytest.raises(ValueError, match="read in open"):
            open_pki_secure_session(bytes(8), record=1)

    def test_vector_answer(self) -> None:
        """The vector's answer: AID, serial, counter 030490, challenge, ratified, no record."""
        data = parse_open_pki_secure_session(ResponseApdu(VECTOR_OPEN_ANSWER, 0x9000))
        assert data.aid == h("A000000291FF9101") and data.serial == h("0000000011223344")
        assert data.transaction_counter == 0x030490
        assert data.card_challenge == h("0304907A1B2C3D4E")
        assert data.ratified and data.record_data == b"" and data.data_out == VECTOR_OPEN_ANSWER

    def test_not_ratified_with_record(self) -> None:
        """Flags b0 = 1: previous session not ratified; Ld and the record read."""
        answer = VECTOR_OPEN_ANSWER[:-4] + h("01 0000 03 AABBCC")
        data = parse_open_pki_secure_session(ResponseApdu(answer, 0x9000))
        assert not data.ratified and data.record_data == h("AABBCC")

    @pytest.mark.parametrize("cut", [1, 4, 30])
    def test_wrong_lengths(self, cut: int) -> None:
        """An answer whose lengths do not add up: UnexpectedResponseLengthError."""
        with pytest.raises(UnexpectedResponseLengthError, match="PKI layout"):
            parse_open_pki_secure_session(ResponseApdu(VECTOR_OPEN_ANSWER[:-cut], 0x9000))

    def test_status(self) -> None:
        """6900: the transaction counter is exhausted."""
        with pytest.raises(CardTerminatedError, match="Open Secure Session"):
            parse_open_pki_secure_session(ResponseApdu(b"", 0x6900))


class TestClosePki:
    """Close in PKI mode: the 64-byte signature."""

    def test_apdu(self) -> None:
        """``00 8E 00 00 00`` (reference); ``00 8E 80 00 00`` ratified at once (emulator)."""
        assert bytes(close_pki_secure_session()) == h("008E000000")
        assert bytes(close_pki_secure_session(ratify_now=True)) == h("008E800000")

    def test_signature(self) -> None:
        """64 bytes are the signature; 63 or 8 are not."""
        assert parse_close_pki_secure_session(ResponseApdu(bytes(64), 0x9000)) == bytes(64)
        for size in (63, 8):
            with pytest.raises(UnexpectedResponseLengthError, match="expected 64"):
                parse_close_pki_secure_session(ResponseApdu(bytes(size), 0x9000))

    def test_no_session(self) -> None:
        """6985: no session open."""
        with pytest.raises(AccessForbiddenError, match=CommandRef.CLOSE_SECURE_SESSION.label):
            parse_close_pki_secure_session(ResponseApdu(b"", 0x6985))
