# SPDX-License-Identifier: Apache-2.0
"""Builders and parsers of every card command against calypso-protocol.md section 1 examples."""

from __future__ import annotations

import pytest

from calypso.commands.binary import read_binary, update_binary, write_binary
from calypso.commands.counters import (
    decrease,
    increase_multiple,
    parse_counters_multiple,
    parse_increase_decrease,
)
from calypso.commands.files import (
    GetDataTag,
    SelectFileControl,
    get_data,
    invalidate,
    parse_get_data_ef_list,
    parse_select_file,
    rehabilitate,
    select_file,
    select_file_navigate,
)
from calypso.commands.keys import change_key, get_challenge, parse_get_challenge
from calypso.commands.pin import (
    check_pin_status,
    parse_verify_pin,
    verify_pin,
    verify_pin_ciphered,
)
from calypso.commands.records import read_records, update_record, write_record
from calypso.commands.search import (
    parse_read_record_multiple,
    parse_search_record_multiple,
    read_record_multiple,
    search_record_multiple,
)
from calypso.commands.select import parse_bprime_atr
from calypso.commands.session import (
    abort_secure_session,
    close_secure_session,
    manage_secure_session,
    open_secure_session,
    parse_close_secure_session,
    parse_manage_secure_session,
    parse_open_secure_session,
    pre_open_secure_session,
    ratification,
)
from calypso.commands.sv import (
    SvOperation,
    parse_sv_get,
    parse_sv_operation,
    sv_debit_partial,
    sv_get,
    sv_operation,
    sv_sam_part,
)
from calypso.constants import CardClass, ProductType, WriteAccessLevel
from calypso.errors import FunctionAbsentError, PinError, UnexpectedResponseLengthError
from readers.apdu import ResponseApdu

CHALLENGE = bytes.fromhex("C1C2C3C4")
REV1, REV2, REV3 = (
    ProductType.PRIME_REVISION_1,
    ProductType.PRIME_REVISION_2,
    ProductType.PRIME_REVISION_3,
)
DEBIT, LOAD = WriteAccessLevel.DEBIT, WriteAccessLevel.LOAD


def rsp(hex_text: str) -> ResponseApdu:
    """A response from its hex form (data then SW), spaces allowed."""
    return ResponseApdu.from_bytes(bytes.fromhex(hex_text.replace(" ", "")))


class TestOpenPerProduct:
    """Open Secure Session encodings and answers per product type (section 1.1)."""

    @pytest.mark.parametrize(
        ("product", "read", "expected"),
        [
            (REV3, (0, 0), "008A030104C1C2C3C400"),
            (REV3, (7, 1), "008A0B3904C1C2C3C400"),
            (ProductType.LIGHT, (7, 1), "008A0B3904C1C2C3C400"),
            (REV2, (7, 1), "948A8B3804C1C2C3C400"),
            (REV1, (7, 1), "948A0B3804C1C2C3C400"),
        ],
    )
    def test_regular_encoding(
        self, product: ProductType, read: tuple[int, int], expected: str
    ) -> None:
        """CLA, P1 and P2 follow the product type's row of the table."""
        sfi, record = read
        command = open_secure_session(DEBIT, CHALLENGE, sfi=sfi, record=record, product=product)
        assert command.hex() == expected

    def test_extended_and_pre_open(self) -> None:
        """Extended: P2 sfi*8+2, data 00 + 8-byte challenge; pre-open LOAD 008A0202010000."""
        challenge = bytes.fromhex("C1C2C3C4C5C6C7C8")
        assert open_secure_session(DEBIT, challenge, extended=True).hex() == (
            "008A03020900C1C2C3C4C5C6C7C800"
        )
        assert pre_open_secure_session(LOAD).hex() == "008A0202010000"

    def test_rev3_answer(self) -> None:
        """030490 98 00 30 79 00: counter, random, ratified, KIF, KVC, no data."""
        data = parse_open_secure_session(rsp("030490 98 00 30 79 00 9000"))
        assert (data.transaction_counter, data.ratified, data.kif, data.kvc) == (
            0x030490,
            True,
            0x30,
            0x79,
        )

    def test_extended_answer(self) -> None:
        """C8C7C6C5C4C3C2C1 02 30 79 00: 8-byte challenge, MSS allowed, ratified."""
        command = open_secure_session(DEBIT, bytes(8), extended=True)
        data = parse_open_secure_session(
            rsp("C8C7C6C5C4C3C2C1 02 30 79 00 9000"), command, extended=True
        )
        assert data.card_challenge == bytes.fromhex("C8C7C6C5C4C3C2C1")
        assert data.manage_session_allowed and data.ratified and data.extended

    def test_pre_open_answer(self) -> None:
        """The pre-open answer comes with SW 6200 and the extended layout."""
        data = parse_open_secure_session(
            rsp("030490 7A1B2C3D4E 02 27 F0 00 6200"), pre_open_secure_session(LOAD)
        )
        assert data.pre_open and data.kif == 0x27

    @pytest.mark.parametrize(
        ("answer", "ratified", "record"),
        [
            ("F0 030490 98", True, ""),
            ("F0 030490 98 0000", False, ""),
            ("F0 030490 98" + "11" * 29, True, "11" * 29),
            ("F0 030490 98 0000" + "11" * 29, False, "11" * 29),
        ],
    )
    def test_rev2_answer(self, answer: str, ratified: bool, record: str) -> None:
        """Rev2.4: KVC, challenge (counter = bytes 1..3), 2 bytes when not ratified, record."""
        data = parse_open_secure_session(rsp(answer + "9000"), product=REV2)
        assert data.kvc == 0xF0 and data.kif == 0xFF
        assert data.transaction_counter == 0x030490
        assert data.ratified is ratified and data.record_data.hex().upper() == record

    @pytest.mark.parametrize("answer", ["030490 98", "030490 98 0000", "030490 98" + "11" * 29])
    def test_rev1_answer(self, answer: str) -> None:
        """Rev1: challenge first, no KIF, no KVC; legal lengths 4, 6, 33, 35."""
        data = parse_open_secure_session(rsp(answer + "9000"), product=REV1)
        assert data.transaction_counter == 0x030490 and data.kvc == 0xFF

    def test_rev2_bad_length(self) -> None:
        """Any other length is refused."""
        with pytest.raises(UnexpectedResponseLengthError):
            parse_open_secure_session(rsp("F0 030490 9000"), product=REV2)


class TestCloseAndManage:
    """Close (1.2), ratification (1.3), Manage Secure Session (1.21)."""

    def test_close_encodings(self) -> None:
        """Regular, extended, legacy CLA; abort and ratification per class."""
        assert close_secure_session(bytes.fromhex("12345678"), ratify_now=True).hex() == (
            "008E8000041234567800"
        )
        mac8 = bytes.fromhex("1122334455667788")
        assert close_secure_session(mac8, ratify_now=True).hex() == "008E800008112233445566778800"
        legacy = close_secure_session(bytes(4), ratify_now=False, cla=CardClass.LEGACY)
        assert legacy.hex().startswith("948E0000")
        assert abort_secure_session().hex() == "008E000000"
        assert ratification(cla=CardClass.LEGACY).hex() == "94B2000000"

    def test_close_postponed(self) -> None:
        """04 345678 FEDCBA98: postponed 345678, MAC FEDCBA98."""
        closed = parse_close_secure_session(rsp("04345678FEDCBA98 9000"))
        assert closed.postponed == (bytes.fromhex("345678"),)

    def test_manage_secure_session(self) -> None:
        """0082000308 MAC 00 with authentication; 0082000200 encryption only."""
        mac = bytes.fromhex("1122334455667788")
        command = manage_secure_session(encryption=True, terminal_mac=mac)
        assert command.hex() == "0082000308112233445566778800"
        assert manage_secure_session(encryption=True).hex() == "0082000200"
        assert parse_manage_secure_session(rsp("8D6235A8D2E8035E 9000"), command) == bytes.fromhex(
            "8D6235A8D2E8035E"
        )
        with pytest.raises(FunctionAbsentError):
            parse_manage_secure_session(rsp("6D00"), command)


class TestRecordsAndCounters:
    """Records (1.4-1.6), counters (1.7-1.8)."""

    def test_examples(self) -> None:
        """00B2013C1D, 00DC010C01AA, Write Record D2, Decrease 0030010803000064 00."""
        assert read_records(7, 1, le=29).hex() == "00B2013C1D"
        assert update_record(1, 1, b"\xaa").hex() == "00DC010C01AA"
        assert write_record(1, 1, b"\xaa").hex() == "00D2010C01AA"
        assert decrease(1, 1, 100).hex() == "0030010803000064" + "00"

    def test_legacy_postponed(self) -> None:
        """Rev1/Rev2 form is case 3; 6200 is a postponed result, 9000 + 3 bytes a value."""
        command = decrease(1, 1, 100, cla=CardClass.LEGACY, postponable=True)
        assert command.hex() == "9430010803000064"
        assert parse_increase_decrease(rsp("6200"), command=command).postponed
        assert parse_increase_decrease(rsp("0010BE 9000"), command=command).value == 0x10BE

    def test_increase_multiple(self) -> None:
        """003A00080C 01000001 02000002 03000003 00 -> 01000011 02000022 03000033."""
        command = increase_multiple(1, {3: 3, 1: 1, 2: 2})
        assert command.hex() == "003A00080C01000001020000020300000300"
        values = parse_counters_multiple(
            rsp("01000011 02000022 03000033 9000"), decreasing=False, command=command
        )
        assert values == {1: 0x11, 2: 0x22, 3: 0x33}

    def test_read_record_multiple(self) -> None:
        """00B3010D04 54020301 00 -> 1122 6200: partial, continue from record 3."""
        command = read_record_multiple(1, 1, 3, 1)
        assert command.hex() == "00B3010D045402030100"
        parts = parse_read_record_multiple(rsp("1122 6200"), record=1, length=1, command=command)
        assert not parts.complete and parts.next_record == 3

    def test_search_record_multiple(self) -> None:
        """00A2010F07 00 00 02 1234 FFFF 00 -> 02 04 06."""
        command = search_record_multiple(1, 1, 0, bytes.fromhex("1234"))
        assert command.hex() == "00A2010F0700000212 34FFFF00".replace(" ", "")
        assert parse_search_record_multiple(rsp("020406 9000")).records == (4, 6)


class TestFilesBinaryAndDf:
    """Select File, Get Data (1.10, 1.11), binary (1.12), Invalidate/Rehabilitate (1.9)."""

    def test_select_file(self) -> None:
        """00A4090002 1234 00 (ISO), 94A4020002 1234 00 (Rev2), navigation."""
        assert select_file(0x1234).hex() == "00A40900021234" + "00"
        assert select_file(0x1234, product=REV2).hex() == "94A40200021234" + "00"
        assert select_file(0x1234, product=REV1).hex() == "94A40800021234" + "00"
        assert select_file_navigate(SelectFileControl.NEXT_EF).hex() == "00A40202020000" + "00"

    def test_parse_select_file(self) -> None:
        """Tag 85: SFI, EF type, record size and count, LID at 21..22 on Rev3."""
        body = "0B 04 08 1D 01 1F101010 00020302 00 1902 0000000000 202B 00"
        header = parse_select_file(rsp("8517" + body + "9000"))
        assert (header.sfi, header.ef_type, header.record_size, header.lid) == (
            0x0B,
            0x08,
            29,
            0x202B,
        )
        assert header.data_reference == bytes.fromhex("1902")

    def test_get_data(self) -> None:
        """CLA CA P1P2=tag 00; the EF list is C0 L then C1 06 entries."""
        assert get_data(GetDataTag.EF_LIST).hex() == "00CA00C000"
        entries = parse_get_data_ef_list(rsp("C008 C106 2010 08 04 1D 03 9000"))
        assert entries[0].lid == 0x2010 and entries[0].records == 3

    def test_binary(self) -> None:
        """00B0810001, 00D6810002 1122, 00D0010001 66 (offset 256 on the current EF)."""
        assert read_binary(1, 0, 1).hex() == "00B0810001"
        assert update_binary(1, 0, bytes.fromhex("1122")).hex() == "00D68100021122"
        assert write_binary(0, 256, b"\x66").hex() == "00D001000166"

    def test_invalidate(self) -> None:
        """0004000000 and 0044000000 (case 1)."""
        assert invalidate().hex() == "0004000000"
        assert rehabilitate(cla=CardClass.LEGACY).hex() == "9444000000"


class TestPinAndKeys:
    """Get Challenge (1.15), Verify PIN (1.16), Change Key (1.18)."""

    def test_encodings(self) -> None:
        """Plain 0020000004 30303030, ciphered Lc 08, status only 0020000000, challenge."""
        assert verify_pin(b"0000").hex() == "002000000430303030"
        assert verify_pin_ciphered(bytes(8)).hex() == "0020000008" + "00" * 8
        assert check_pin_status().hex() == "0020000000"
        assert get_challenge().hex() == "0084000008"
        assert change_key(2, bytes(32)).hex() == "00D8000220" + "00" * 32

    @pytest.mark.parametrize(("sw", "left"), [("63C2", 2), ("63C1", 1), ("6983", 0)])
    def test_pin_refusals(self, sw: str, left: int) -> None:
        """63C2/63C1/6983 raise PinError with the attempts left; status-only returns them."""
        with pytest.raises(PinError) as caught:
            parse_verify_pin(rsp(sw))
        assert caught.value.attempts_remaining == left
        assert parse_verify_pin(rsp(sw), status_only=True) == left
        assert parse_verify_pin(rsp("9000")) == 3

    def test_challenge_length(self) -> None:
        """A challenge of the wrong length is refused."""
        with pytest.raises(UnexpectedResponseLengthError):
            parse_get_challenge(rsp("0102 9000"))


class TestStoredValue:
    """SV Get (1.19), SV Debit (1.20) against the CSIM1 vector bytes."""

    def test_sv_get_encodings(self) -> None:
        """007C000721, 007C00091E, 007C01073D, FA7C000721."""
        assert sv_get(SvOperation.RELOAD).hex() == "007C000721"
        assert sv_get(SvOperation.DEBIT).hex() == "007C00091E"
        assert sv_get(SvOperation.RELOAD, extended=True).hex() == "007C01073D"
        assert sv_get(SvOperation.RELOAD, cla=CardClass.LEGACY_SV).hex() == "FA7C000721"

    def test_sv_debit_vector(self) -> None:
        """The vector's SV Get parses and the debit command is rebuilt byte for byte."""
        get = sv_get(SvOperation.DEBIT)
        answer = rsp("F00005A54BC97DFA0003E8FFF612340800F01234567800000F0003F20004 9000")
        data = parse_sv_get(answer, get)
        assert (data.kvc, data.transaction_number, data.balance) == (0xF0, 5, 1000)
        assert data.header == bytes.fromhex("7C00091E")
        partial = sv_debit_partial(
            10, date=bytes.fromhex("1234"), time=bytes.fromhex("0900"), kvc=0xF0
        )
        assert sv_sam_part(0xBA, partial, extended=False) == bytes.fromhex(
            "BA00001400FFF612340900F0"
        )
        command = sv_operation(
            0xBA,
            partial,
            sam_challenge=bytes.fromhex("A1B2C3"),
            sam_serial=bytes.fromhex("12345678"),
            sam_tnum=bytes.fromhex("000010"),
            mac=bytes.fromhex("6F851A6BA1"),
            in_session=False,
        )
        assert command.hex() == "00BAA1B214C3FFF612340900F0123456780000106F851A6BA103"
        assert parse_sv_operation(rsp("6C6852 9000"), command) == bytes.fromhex("6C6852")


class TestRev1Atr:
    """A Rev1 card is known from its 20-byte ATR (section 4)."""

    def test_bprime_atr(self) -> None:
        """Serial = ATR 12..15 in the last 4 bytes; startup = 03 + ATR 6..11; CLA 94."""
        atr = bytes.fromhex("3B6F0000805A 080803040200 C0FFEE10 82900000".replace(" ", ""))
        app = parse_bprime_atr(atr)
        assert app.serial == bytes.fromhex("00000000C0FFEE10")
        assert app.startup.raw == bytes.fromhex("03080803040200")
        assert app.product_type is REV1 and app.card_class is CardClass.LEGACY
