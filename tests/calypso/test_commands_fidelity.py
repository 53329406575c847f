# SPDX-License-Identifier: Apache-2.0
"""Parsers checked against the protocol facts of issue 16 (Keyple's vectors, calypso-protocol)."""

from __future__ import annotations

import pytest

from calypso.commands.files import parse_get_data_ef_list
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
