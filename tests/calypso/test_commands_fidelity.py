# SPDX-License-Identifier: Apache-2.0
"""Parsers checked against the protocol facts of issue 16 (Keyple's vectors, calypso-protocol)."""

from __future__ import annotations

import pytest

from calypso.commands.files import (
    parse_get_data_ef_list,
    parse_get_data_fcp,
    parse_select_file,
)
from calypso.errors import CardResponseError
from readers.apdu import ResponseApdu


def rsp(hex_text: str) -> ResponseApdu:
    """A response from its hex form (data then SW), spaces allowed."""
    return ResponseApdu.from_bytes(bytes.fromhex(hex_text.replace(" ", "")))


class TestEfList:
    """Get Data EF list: C0 L then C1 06 LID SFI type recsize nrec (section 1.11)."""

    @pytest.mark.parametrize("ef_type", ["01", "02", "04", "08", "09"])
    def test_known_ef_types_are_accepted(self, ef_type: str) -> None:
        """Binary, linear, cyclic, simulated counters and counters files are listed."""
        entries = parse_get_data_ef_list(rsp(f"C008 C106 2010 08 {ef_type} 1D 03 9000"))
        assert entries[0].ef_type == int(ef_type, 16)

    @pytest.mark.parametrize("ef_type", ["00", "03", "05", "FF"])
    def test_unknown_ef_type_is_refused(self, ef_type: str) -> None:
        """An entry with an EF type no Calypso file has (e.g. 03h) is a typed parse error."""
        with pytest.raises(CardResponseError, match=f"unknown EF type {ef_type}h"):
            parse_get_data_ef_list(
                rsp(f"C010 C106 2010 08 04 1D 03 C106 2020 09 {ef_type} 1D 04 9000")
            )


# Tag 85 of a master file (file type 01h): KVCs F0 F1 F2 at 14..16, KIFs 21 27 30 at 17..19.
MF_HEADER = "8517 00 01 00 00 00 00000000 00000000 00 F0F1F2 212730 00 3F00"


class TestMasterFileHeader:
    """The MF header (file type 01h) carries KVC and KIF triplets as a DF does (section 1.10)."""

    def test_select_file_on_the_mf_reads_kvcs_and_kifs(self) -> None:
        """Select File on the MF: three KVCs (14..16) and three KIFs (17..19), LID 3F00."""
        header = parse_select_file(rsp(MF_HEADER + "9000"))
        assert header.file_type == 0x01
        assert header.data_reference == bytes.fromhex("F0F1F2")
        assert header.kifs == bytes.fromhex("212730")
        assert header.lid == 0x3F00

    def test_get_data_fcp_on_the_mf_reads_kvcs_and_kifs(self) -> None:
        """Get Data FCP (0062) answers the same header: parsed the same way."""
        header = parse_get_data_fcp(rsp("6219" + MF_HEADER + "9000"))
        assert (header.data_reference, header.kifs) == (
            bytes.fromhex("F0F1F2"),
            bytes.fromhex("212730"),
        )

    def test_an_ef_header_still_has_no_kif(self) -> None:
        """An EF (file type 04h) keeps its 2-byte shared data reference and no KIF."""
        body = "0B 04 08 1D 01 1F101010 00020302 00 1902 0000000000 202B 00"
        header = parse_select_file(rsp("8517" + body + "9000"))
        assert header.data_reference == bytes.fromhex("1902") and header.kifs == b""
