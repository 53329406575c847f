# SPDX-License-Identifier: Apache-2.0
"""Parsers checked against the protocol facts of issue 16 (Keyple's vectors, calypso-protocol)."""

from __future__ import annotations

import pytest

from calypso.commands.files import (
    parse_get_data_ef_list,
    parse_get_data_fcp,
    parse_select_file,
)
from calypso.commands.select import StartupInfo, parse_bprime_atr, parse_select_application
from calypso.commands.sv import sv_debit_partial, sv_operation, sv_reload_partial
from calypso.constants import CardClass, ProductType
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


def fci(startup: str, *, inner: str = "") -> ResponseApdu:
    """A test-kit FCI (section 4) with this startup information, C7/53 optionally wrapped."""
    body = "C708 0000000011223344 5307" + startup
    if inner:
        body = f"{inner}{len(bytes.fromhex(body)):02X}" + body
    bf0c = f"BF0C{len(bytes.fromhex(body)):02X}" + body
    a5 = f"A5{len(bytes.fromhex(bf0c)):02X}" + bf0c
    content = "8409 315449432E49434131" + a5
    return rsp(f"6F{len(bytes.fromhex(content)):02X}" + content + "9000")


class TestStartupInfoSmallerPoints:
    """Payload patch per product, Basic buffer range, FCI nesting (issue 16.9)."""

    def test_keyple_test_kit_fci_vector(self) -> None:
        """`6F23 8409 1TIC.ICA1 A516 BF0C13 C708 ... 5307 0A3C2005141001 9000` parses."""
        vector = rsp(
            "6F23 8409 315449432E49434131 A516 BF0C13 C708 0000000011223344"
            " 5307 0A3C2005141001 9000"
        )
        app = parse_select_application(vector)
        assert app.serial == bytes.fromhex("0000000011223344")
        assert app.startup.raw == bytes.fromhex("0A3C2005141001")

    @pytest.mark.parametrize(
        ("startup", "product", "capacity"),
        [
            ("0A3C2005141001", ProductType.PRIME_REVISION_3, 235),
            ("0A3C9105141001", ProductType.LIGHT, 250),
            ("0A3C9905141001", ProductType.BASIC, 250),
            ("0A3C0805141001", ProductType.PRIME_REVISION_2, 128),
            ("0A3B2005141001", ProductType.PRIME_REVISION_3, 250),
        ],
    )
    def test_payload_patch_3c_10_is_for_prime_rev3_only(
        self, startup: str, product: ProductType, capacity: int
    ) -> None:
        """Platform 3Ch + software version 10h gives 235 on Prime Rev3 only, not Light/Basic."""
        info = StartupInfo(bytes.fromhex(startup))
        assert info.product_type is product
        assert info.payload_capacity == capacity

    @pytest.mark.parametrize("indicator", ["04", "0A", "37"])
    def test_basic_session_modification_in_range_is_accepted(self, indicator: str) -> None:
        """A Basic card's session-modification byte from 04h to 37h is accepted."""
        app = parse_select_application(fci(f"{indicator}3C9905141001"))
        assert app.product_type is ProductType.BASIC

    @pytest.mark.parametrize("indicator", ["00", "03", "38", "FF"])
    def test_basic_session_modification_out_of_range_is_refused(self, indicator: str) -> None:
        """Below 04h or above 37h, a Basic card's FCI is refused (Keyple: CL-SI-SMBASIC.1)."""
        with pytest.raises(CardResponseError, match="04h..37h"):
            parse_select_application(fci(f"{indicator}3C9905141001"))

    @pytest.mark.parametrize("wrapper", ["73", "E0", "BF0D"])
    def test_fci_parser_descends_into_any_constructed_tag(self, wrapper: str) -> None:
        """C7 and 53 nested in another constructed object (73, E0, BF0D) are still found."""
        app = parse_select_application(fci("0A3C2005141001", inner=wrapper))
        assert app.serial == bytes.fromhex("0000000011223344")
        assert app.startup.raw == bytes.fromhex("0A3C2005141001")

    def test_primitive_tags_are_not_descended_into(self) -> None:
        """A primitive object whose value looks like TLV (tag 85) is not searched for C7/53."""
        with pytest.raises(CardResponseError, match="serial number"):
            parse_select_application(
                rsp("6F1A 8409 315449432E49434131 A50D 850B C708 0000000011223344 01 9000")
            )


# A Rev1 (B-prime) ATR: startup information bytes 1..6 at 6..11 (application type 0Bh: PIN, SV
# and 08h bits), serial at 12..15.
REV1_ATR = bytes.fromhex("3B6F0000805A 080B03040200 C0FFEE10 82900000".replace(" ", ""))


class TestFeaturesPerProduct:
    """PIN and SV features read from the application type per product (issue 16.5)."""

    @pytest.mark.parametrize(
        ("startup", "pin", "sv"),
        [
            ("0A3C2305141001", True, True),  # Prime Rev3, type 23h
            ("0A3C2005141001", False, False),  # Prime Rev3, type 20h
            ("0A0813060A0200", True, True),  # Prime Rev2, type 13h
            ("06439331 2B0100", False, False),  # Light, type 93h: bits mean no PIN, no SV
            ("04439B33 2B0100", False, False),  # Basic, type 9Bh
        ],
    )
    def test_features_follow_the_product(self, startup: str, pin: bool, sv: bool) -> None:
        """Rev2/Rev3 read bits 01h/02h; Light and Basic never have PIN nor stored value."""
        info = StartupInfo(bytes.fromhex(startup.replace(" ", "")))
        assert (info.has_pin, info.has_stored_value) == (pin, sv)

    def test_rev1_from_its_atr_has_no_pin(self) -> None:
        """A Prime Rev1 card known from its ATR has no PIN, whatever bit 01h says."""
        app = parse_bprime_atr(REV1_ATR)
        assert app.startup.product_type is ProductType.PRIME_REVISION_1
        assert app.product_type is ProductType.PRIME_REVISION_1
        assert not app.startup.has_pin

    def test_rev1_stored_value_follows_its_atr_bit(self) -> None:
        """A Rev1 card's SV feature follows bit 02h of the application type in its ATR."""
        assert parse_bprime_atr(REV1_ATR).startup.has_stored_value
        without = REV1_ATR[:7] + b"\x08" + REV1_ATR[8:]
        assert not parse_bprime_atr(without).startup.has_stored_value

    def test_rev1_startup_info_knows_its_product(self) -> None:
        """Payload capacity, buffer and class of a Rev1 come from the product, not type 0Bh."""
        startup = parse_bprime_atr(REV1_ATR).startup
        assert startup.payload_capacity == 128
        assert startup.card_class is CardClass.LEGACY


class TestSvOperationForms:
    """SV Reload/Debit lengths per mode, and the FAh class on legacy cards (section 1.20)."""

    @pytest.mark.parametrize(
        ("ins", "mac_size", "lc"),
        [(0xB8, 5, 0x17), (0xB8, 10, 0x1C), (0xBA, 5, 0x14), (0xBA, 10, 0x19)],
    )
    def test_lc_per_mode(self, ins: int, mac_size: int, lc: int) -> None:
        """Reload 17h/1Ch, Debit 14h/19h (regular/extended); no Le inside a session."""
        if ins == 0xB8:
            partial = sv_reload_partial(100, date=bytes(2), time=bytes(2), kvc=0xF0)
        else:
            partial = sv_debit_partial(100, date=bytes(2), time=bytes(2), kvc=0xF0)
        command = sv_operation(
            ins,
            partial,
            sam_challenge=bytes(3),
            sam_serial=bytes(4),
            sam_tnum=bytes(3),
            mac=bytes(mac_size),
            in_session=True,
            cla=CardClass.LEGACY_SV,
        )
        raw = bytes(command)
        assert (raw[0], raw[1], raw[4], len(raw)) == (0xFA, ins, lc, 5 + lc)
