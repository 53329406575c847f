# SPDX-License-Identifier: Apache-2.0
"""SAM command builders, parsers and status-word tables against the reference vectors."""

from __future__ import annotations

import pytest
from sam_vectors import (
    CARD_MAC,
    ITEMS,
    KIF_DEBIT,
    KVC_SIM,
    MULTIPLE_PAYLOAD,
    OSS_DATA_OUT,
    SAM_DIGEST_AUTHENTICATE,
    SAM_DIGEST_CLOSE,
    SAM_DIGEST_INIT,
    SAM_DIGEST_UPDATE_MULTIPLE,
    SAM_GET_CHALLENGE,
    SAM_SELECT_DIVERSIFIER,
    SN8,
    STUB_CARD_SERIAL,
    STUB_KIF,
    STUB_KVC,
    STUB_OSS_DATA_OUT,
    STUB_SAM_TABLE,
    TC,
    TC8,
    h,
)

from readers.apdu import ApduError, CommandApdu, ResponseApdu
from sam import commands as cmd
from sam.base import SamError
from sam.commands import SamCommandRef


class TestBuilders:
    """Every builder, byte for byte."""

    def test_select_diversifier_vector(self) -> None:
        """Select Diversifier of the csim1 vector card serial."""
        assert bytes(cmd.select_diversifier(SN8)) == SAM_SELECT_DIVERSIFIER

    def test_select_diversifier_stub(self) -> None:
        """Select Diversifier of the Keyple stub card serial."""
        assert bytes(cmd.select_diversifier(STUB_CARD_SERIAL)) == STUB_SAM_TABLE[0][0]

    def test_select_diversifier_padding(self) -> None:
        """Shorter than 4 is padded to 4, 4 and 8 are kept, 5 to 7 are padded to 8 (as Keyple)."""
        assert cmd.select_diversifier(h("AABB")).hex() == "80140000040000AABB"
        assert cmd.select_diversifier(h("11223344")).hex() == "801400000411223344"
        assert cmd.select_diversifier(h("1122334455")).hex() == "80140000080000001122334455"

    def test_select_diversifier_bad_length(self) -> None:
        """Empty and over-long diversifiers are refused."""
        for bad in (b"", bytes(9)):
            with pytest.raises(ValueError, match="diversifier"):
                cmd.select_diversifier(bad)

    def test_select_diversifier_s1dx_class(self) -> None:
        """The class byte is a parameter (94 for S1Dx)."""
        assert cmd.select_diversifier(SN8, cla=0x94).hex() == "94140000080000000011223344"

    def test_get_challenge(self) -> None:
        """Get Challenge asks 4 bytes (regular) or 8 (extended)."""
        assert bytes(cmd.get_challenge()) == SAM_GET_CHALLENGE
        assert cmd.get_challenge(8).hex() == "8084000008"
        with pytest.raises(ValueError):
            cmd.get_challenge(6)

    def test_digest_init_vector(self) -> None:
        """Digest Init of the regular-mode vector session."""
        assert bytes(cmd.digest_init(KIF_DEBIT, KVC_SIM, OSS_DATA_OUT)) == SAM_DIGEST_INIT

    def test_digest_init_stub(self) -> None:
        """Digest Init of the Keyple stub table."""
        built = cmd.digest_init(STUB_KIF, STUB_KVC, STUB_OSS_DATA_OUT)
        assert bytes(built) == STUB_SAM_TABLE[2][0]

    def test_digest_init_extended_and_verification(self) -> None:
        """Extended sets P1 bit1, verification mode P1 bit0."""
        data_out = h("0304907A1B2C3D4E0227F000")
        assert cmd.digest_init(0x27, 0xF0, data_out, extended=True).hex().upper() == (
            "808A02FF0E27F00304907A1B2C3D4E0227F000"
        )
        verify = cmd.digest_init(0x27, 0xF0, data_out, verification=True, terminal_challenge=TC)
        assert verify.p1 == 0x01 and verify.data == h("27F0") + TC + data_out
        extended = cmd.digest_init(
            0x27, 0xF0, data_out, extended=True, verification=True, terminal_challenge=TC8
        )
        assert (
            extended.hex().upper() == "808A03FF1627F0" + TC8.hex().upper() + data_out.hex().upper()
        )

    def test_digest_init_verification_needs_challenge(self) -> None:
        """Verification mode needs a terminal challenge of the mode's size, and only it does."""
        data_out = h("0304907A1B2C3D4E0227F000")
        with pytest.raises(ValueError, match="terminal challenge"):
            cmd.digest_init(0x27, 0xF0, data_out, verification=True)
        with pytest.raises(ValueError, match="terminal challenge"):
            cmd.digest_init(0x27, 0xF0, data_out, verification=True, terminal_challenge=TC8)
        with pytest.raises(ValueError, match="only sent in verification"):
            cmd.digest_init(0x27, 0xF0, data_out, terminal_challenge=TC)

    def test_digest_update(self) -> None:
        """Digest Update, plain and encrypted (csim1 extended vector)."""
        assert cmd.digest_update(h("00B2014400")).hex().upper() == "808C00000500B2014400"
        encrypted = cmd.digest_update(h("00DC010C01AA"), encrypted=True)
        assert encrypted.hex().upper() == "808C00800600DC010C01AA"

    def test_digest_update_multiple(self) -> None:
        """Digest Update Multiple carries the vector's framed payload."""
        assert bytes(cmd.digest_update_multiple(ITEMS)) == SAM_DIGEST_UPDATE_MULTIPLE

    def test_digest_update_multiple_too_long(self) -> None:
        """A payload over 255 bytes is refused."""
        with pytest.raises(ValueError, match="too long"):
            cmd.digest_update_multiple([bytes(200), bytes(60)])

    def test_digest_close(self) -> None:
        """Digest Close asks 4 bytes (regular) or 8 (extended)."""
        assert bytes(cmd.digest_close()) == SAM_DIGEST_CLOSE
        assert cmd.digest_close(extended=True).hex() == "808E000008"

    def test_digest_authenticate(self) -> None:
        """Digest Authenticate carries the card MAC."""
        assert bytes(cmd.digest_authenticate(CARD_MAC)) == SAM_DIGEST_AUTHENTICATE
        assert bytes(cmd.digest_authenticate(h("87654321"))) == STUB_SAM_TABLE[4][0]
        with pytest.raises(ValueError):
            cmd.digest_authenticate(h("0102"))


class TestPacking:
    """Grouping digest items into Digest Update Multiple payloads."""

    def test_vector_items_fit_one_apdu(self) -> None:
        """The vector's six items make one group."""
        assert cmd.pack_digest_items(ITEMS) == [ITEMS]

    def test_groups_respect_limit(self) -> None:
        """Each group's framed size stays within the limit, order kept."""
        items = [bytes([i]) * 60 for i in range(1, 9)]
        groups = cmd.pack_digest_items(items, 255)
        assert [item for group in groups for item in group] == items
        assert all(sum(len(i) + 1 for i in group) <= 255 for group in groups)
        assert [len(group) for group in groups] == [4, 4]

    def test_oversized_item_alone(self) -> None:
        """An item that cannot be framed within the limit is a group of its own."""
        groups = cmd.pack_digest_items([h("01"), bytes(70), h("02")], 70)
        assert groups == [[h("01")], [bytes(70)], [h("02")]]


class TestParsers:
    """Pure response parsers."""

    def test_parse_get_challenge(self) -> None:
        """The challenge is returned when its length matches Le."""
        response = ResponseApdu.from_bytes(STUB_SAM_TABLE[1][1])
        assert cmd.parse_get_challenge(response, 4) == h("00112233")

    def test_parse_get_challenge_wrong_length(self) -> None:
        """A challenge of the wrong length raises."""
        with pytest.raises(cmd.SamResponseLengthError):
            cmd.parse_get_challenge(ResponseApdu(h("001122"), 0x9000), 4)

    def test_parse_digest_close(self) -> None:
        """Digest Close gives the terminal MAC, 4 or 8 bytes."""
        assert cmd.parse_digest_close(ResponseApdu(h("9F1DEC7B"), 0x9000)) == h("9F1DEC7B")
        with pytest.raises(cmd.SamResponseLengthError):
            cmd.parse_digest_close(ResponseApdu(h("9F1DEC7B"), 0x9000), extended=True)

    def test_parse_digest_authenticate(self) -> None:
        """9000 is authentic, 6988 is not, anything else raises."""
        assert cmd.parse_digest_authenticate(ResponseApdu(b"", 0x9000)) is True
        assert cmd.parse_digest_authenticate(ResponseApdu(b"", 0x6988)) is False
        with pytest.raises(cmd.SamAccessForbiddenError):
            cmd.parse_digest_authenticate(ResponseApdu(b"", 0x6985))

    def test_parse_digest_update_encrypted(self) -> None:
        """An encrypted-mode Digest Update returns the processed item."""
        response = ResponseApdu(h("00DC010C0110"), 0x9000)
        assert cmd.parse_digest_update(response) == h("00DC010C0110")

    def test_parse_digest_items(self) -> None:
        """A Digest Update Multiple payload splits back into its items."""
        assert cmd.parse_digest_items(MULTIPLE_PAYLOAD) == ITEMS

    def test_parse_digest_items_bad_structure(self) -> None:
        """Truncated, zero-length and empty payloads are refused."""
        for bad in (h("0500B201"), h("00"), b"", h("0190") + h("00")):
            with pytest.raises(ValueError):
                cmd.parse_digest_items(bad)


class TestStatus:
    """Status-word tables and typed errors."""

    def test_mapping_per_command(self) -> None:
        """The same SW maps by command, and the error carries command, SW and ApduError."""
        command = CommandApdu.from_bytes(SAM_DIGEST_INIT)
        with pytest.raises(cmd.SamKeyNotFoundError) as caught:
            cmd.check_status(SamCommandRef.DIGEST_INIT, ResponseApdu(b"", 0x6A83), command)
        error = caught.value
        assert isinstance(error, SamError)
        assert error.ref is SamCommandRef.DIGEST_INIT
        assert error.sw == 0x6A83
        assert "Digest Init" in str(error) and "6A83" in str(error)

    def test_sam_command_error_is_an_apdu_error(self) -> None:
        """A SAM refusal is an ApduError, as a card one is: response, command and one message."""
        command = CommandApdu.from_bytes(SAM_DIGEST_INIT)
        response = ResponseApdu(b"", 0x6A83)
        with pytest.raises(ApduError) as caught:
            cmd.check_status(SamCommandRef.DIGEST_INIT, response, command)
        error = caught.value
        assert isinstance(error, cmd.SamKeyNotFoundError)
        assert error.response == response and error.command == command
        assert (
            str(error) == f"SAM Digest Init: signing key not found: {ApduError(response, command)}"
        )

    def test_common_status_words(self) -> None:
        """6D00 and 6E00 are known to every command."""
        for sw in (0x6D00, 0x6E00):
            with pytest.raises(cmd.SamIllegalParameterError):
                cmd.check_status(SamCommandRef.DIGEST_CLOSE, ResponseApdu(b"", sw))

    def test_unknown_status_is_kept(self) -> None:
        """A SW absent from the table raises SamUnknownStatusError with that SW."""
        with pytest.raises(cmd.SamUnknownStatusError) as caught:
            cmd.check_status(SamCommandRef.GET_CHALLENGE, ResponseApdu(b"", 0x6F00))
        assert caught.value.sw == 0x6F00

    def test_every_table_entry_is_a_sam_error(self) -> None:
        """Each command has a table and each entry is a SamCommandError subclass."""
        for ref in SamCommandRef:
            for sw, (kind, reason) in cmd.STATUS_TABLES[ref].items():
                assert issubclass(kind, cmd.SamCommandError) and reason, (ref, sw)

    def test_accept_list(self) -> None:
        """An SW in the accept list returns the response."""
        response = ResponseApdu(b"", 0x6988)
        ref = SamCommandRef.DIGEST_AUTHENTICATE
        assert cmd.check_status(ref, response, accept=(0x9000, 0x6988)) is response
