# SPDX-License-Identifier: Apache-2.0
"""Command and response APDU encoding, status-word names, ApduError text."""

from __future__ import annotations

import pytest

from readers.apdu import SW, ApduError, CommandApdu, ResponseApdu, sw_name


class TestCommandApdu:
    """The four ISO 7816-4 cases, short form."""

    def test_case1_is_sent_with_p3_zero(self) -> None:
        """Case 1 encodes as 5 bytes with P3=00, as Keyple's abort 008E000000."""
        assert bytes(CommandApdu(0x00, 0x8E, 0x00, 0x00)) == bytes.fromhex("008E000000")

    def test_case2(self) -> None:
        """Case 2: header then Le."""
        assert CommandApdu(0x80, 0x84, 0, 0, le=4).hex() == "8084000004"

    def test_case3(self) -> None:
        """Case 3: header, Lc, data, no Le."""
        apdu = CommandApdu(0x00, 0xDC, 0x01, 0x0C, b"\xaa")
        assert apdu.hex() == "00DC010C01AA"

    def test_case4(self) -> None:
        """Case 4: header, Lc, data, Le."""
        apdu = CommandApdu(0x00, 0x30, 0x01, 0x08, bytes.fromhex("000064"), le=0)
        assert apdu.hex() == "003001080300006400"

    @pytest.mark.parametrize(
        "raw", ["008E000000", "00DC010C01AA", "003001080300006400", "8084000004"]
    )
    def test_round_trip(self, raw: str) -> None:
        """Decoding then encoding gives the same bytes."""
        assert CommandApdu.from_bytes(bytes.fromhex(raw)).hex() == raw

    def test_inconsistent_lc_is_refused(self) -> None:
        """A length that matches neither case 3 nor case 4 is a ValueError."""
        with pytest.raises(ValueError, match="inconsistent"):
            CommandApdu.from_bytes(bytes.fromhex("00DC010C05AA"))

    def test_fields_are_range_checked(self) -> None:
        """A header byte above FF is refused at construction."""
        with pytest.raises(ValueError, match="p1"):
            CommandApdu(0x00, 0xB2, 0x100, 0x00)


class TestResponseApdu:
    """Data and status word."""

    def test_split(self) -> None:
        """The last two bytes are the status word."""
        response = ResponseApdu.from_bytes(bytes.fromhex("0000639000"))
        assert response.data == bytes.fromhex("000063")
        assert response.sw == SW.OK
        assert response.ok

    def test_too_short(self) -> None:
        """Fewer than two bytes is not a response."""
        with pytest.raises(ValueError, match="shorter than a status word"):
            ResponseApdu.from_bytes(b"\x90")


class TestApduError:
    """Errors name the status word and the command."""

    def test_message(self) -> None:
        """The message carries the SW, its name and the command in hex."""
        error = ApduError(ResponseApdu(b"", 0x6A82), CommandApdu(0x00, 0xB2, 0x01, 0x3C, le=0))
        assert str(error) == "SW=6A82 (FILE_NOT_FOUND) for 00B2013C00"
        assert error.sw == 0x6A82

    def test_families(self) -> None:
        """61xx and 6Cxx get family names; anything unlisted is UNKNOWN."""
        assert sw_name(0x6110) == "MORE_DATA_AVAILABLE"
        assert sw_name(0x6C1D) == "WRONG_LE"
        assert sw_name(0x6F01) == "UNKNOWN"
