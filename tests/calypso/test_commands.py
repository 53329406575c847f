# SPDX-License-Identifier: Apache-2.0
"""Card command builders and pure parsers against calypso-protocol.md's vectors."""

from __future__ import annotations

import pytest

from calypso.commands.counters import decrease, increase, parse_counter_result
from calypso.commands.records import (
    ReadMode,
    append_record,
    parse_read_records,
    parse_update_record,
    read_records,
    update_record,
)
from calypso.commands.select import (
    aid_matches,
    parse_select_application,
    select_application,
)
from calypso.commands.session import (
    abort_secure_session,
    close_secure_session,
    open_secure_session,
    parse_close_secure_session,
    parse_open_secure_session,
    ratification,
)
from calypso.constants import ProductType, WriteAccessLevel
from calypso.errors import (
    AccessForbiddenError,
    CardResponseError,
    CardTerminatedError,
    DataAccessError,
    DataOutOfBoundsError,
    SecurityDataError,
    UnexpectedResponseLengthError,
    UnknownStatusError,
)
from readers.apdu import ResponseApdu

CHALLENGE = bytes.fromhex("C1C2C3C4")
AID = bytes.fromhex("315449432E49434131")
# FCI of the test-kit card (calypso-protocol section 4), built from named parts.
DF_NAME = "8409" + AID.hex()
SERIAL = "C708" + "0000000011223344"
STARTUP = "5307" + "0A3C2005141001"
FCI = "6F23" + DF_NAME + "A516" + "BF0C13" + SERIAL + STARTUP


def rsp(hex_text: str) -> ResponseApdu:
    """A response from its hex form (data then SW)."""
    return ResponseApdu.from_bytes(bytes.fromhex(hex_text))


class TestSelectApplication:
    """Select Application and the FCI."""

    def test_builder(self) -> None:
        """00 A4 04 00 Lc AID 00 (Keyple stub trace)."""
        assert select_application(AID).hex() == "00A4040009315449432E4943413100"

    def test_fci_fields(self) -> None:
        """DF name, serial and startup information are read from tags 84, C7, 53."""
        app = parse_select_application(rsp(FCI + "9000"))
        assert app.df_name == AID
        assert app.serial == bytes.fromhex("0000000011223344")
        assert app.startup.buffer_indicator == 0x0A
        assert app.startup.session_buffer_bytes == 430
        assert app.startup.product_type is ProductType.PRIME_REVISION_3
        assert app.startup.payload_capacity == 235  # platform 3C, version 10
        assert not app.invalidated

    def test_invalidated_df(self) -> None:
        """SW 6283 is accepted and marks the application invalidated."""
        assert parse_select_application(rsp(FCI + "6283")).invalidated

    def test_not_found(self) -> None:
        """6A82 is a DataAccessError."""
        with pytest.raises(DataAccessError):
            parse_select_application(rsp("6A82"))

    @pytest.mark.parametrize(
        "fci",
        [
            "6F0B" + DF_NAME + "A500",  # no serial, no startup information
            "6F23" + DF_NAME + "A516BF0C13" + "C704" + "11223344" + STARTUP,  # short serial
            "6F23" + DF_NAME + "A516BF0C13" + SERIAL + "5307",  # runs past the end
            "6F23" + DF_NAME + "A516BF0C13" + SERIAL + "5307" + "0A3C0005141001",  # type 00
        ],
    )
    def test_malformed_fci(self, fci: str) -> None:
        """A lying or truncated FCI is a CardResponseError, never an IndexError."""
        with pytest.raises(CardResponseError):
            parse_select_application(rsp(fci + "9000"))

    @pytest.mark.parametrize(
        ("app_type", "product"),
        [
            (0x02, ProductType.PRIME_REVISION_2),
            (0x20, ProductType.PRIME_REVISION_3),
            (0x28, ProductType.PRIME_REVISION_3),
            (0x93, ProductType.LIGHT),
            (0x98, ProductType.BASIC),
            (0xFF, ProductType.UNKNOWN),
        ],
    )
    def test_product_type(self, app_type: int, product: ProductType) -> None:
        """Application type ranges map to product types as section 4 says."""
        fci = FCI.replace("0A3C2005", f"0A3C{app_type:02X}05")
        assert parse_select_application(rsp(fci + "9000")).startup.product_type is product

    def test_option_bits(self) -> None:
        """Type 2F: PIN, SV, ratification command, extended mode."""
        startup = parse_select_application(rsp(FCI.replace("3C20", "3C2F") + "9000")).startup
        assert startup.has_pin and startup.has_stored_value
        assert startup.ratification_command_required and startup.extended_mode
        assert not startup.pki_mode

    def test_aid_match_rule(self) -> None:
        """The DF name must start with the AID and continue with 00 bytes only."""
        assert aid_matches(AID, AID)
        assert aid_matches(AID[:8], AID[:8] + b"\x00")
        assert not aid_matches(AID[:8], AID)


class TestRecords:
    """Read Records, Update Record, Append Record."""

    def test_read_one(self) -> None:
        """00B2013C1D reads SFI 07 record 1, 29 bytes."""
        assert read_records(0x07, 1, le=29).hex() == "00B2013C1D"

    def test_read_multiple(self) -> None:
        """00B2010D06 reads SFI 01 from record 1; the answer is [rec][len][data]..."""
        command = read_records(0x01, 1, mode=ReadMode.MULTIPLE, le=6)
        assert command.hex() == "00B2010D06"
        records = parse_read_records(rsp("0101110201229000"), record=1, mode=ReadMode.MULTIPLE)
        assert records == {1: b"\x11", 2: b"\x22"}

    def test_read_multiple_truncated(self) -> None:
        """A record announced longer than what follows is a CardResponseError."""
        with pytest.raises(CardResponseError):
            parse_read_records(rsp("0105119000"), record=1, mode=ReadMode.MULTIPLE)

    def test_update(self) -> None:
        """00DC010C01AA updates SFI 01 record 1."""
        assert update_record(0x01, 1, b"\xaa").hex() == "00DC010C01AA"

    def test_append(self) -> None:
        """Append Record: P1 00, P2 sfi*8 (csim1 vector 00E20040...)."""
        assert append_record(0x08, bytes(1)).hex() == "00E200400100"

    def test_write_status_table(self) -> None:
        """6985 on a write is AccessForbiddenError."""
        with pytest.raises(AccessForbiddenError):
            parse_update_record(rsp("6985"))

    def test_record_range(self) -> None:
        """Record 0 is the ratification command, not a read: the builder refuses it."""
        with pytest.raises(ValueError):
            read_records(0x07, 0)


class TestCounters:
    """Increase and Decrease, case 4."""

    def test_decrease(self) -> None:
        """0030010803 000064 00 answers 0010BE."""
        assert decrease(0x01, 1, 0x64).hex() == "003001080300006400"
        assert parse_counter_result(rsp("0010BE9000")) == 0x10BE

    def test_increase(self) -> None:
        """Increase uses INS 32."""
        assert increase(0x19, 2, 5).hex() == "003202C80300000500"

    def test_overflow(self) -> None:
        """6A80 is DataOutOfBoundsError."""
        with pytest.raises(DataOutOfBoundsError):
            parse_counter_result(rsp("6A80"))

    def test_wrong_length(self) -> None:
        """A 2-byte new value is an UnexpectedResponseLengthError."""
        with pytest.raises(UnexpectedResponseLengthError):
            parse_counter_result(rsp("10BE9000"))


class TestSession:
    """Open, Close, abort, ratification."""

    def test_open_without_read(self) -> None:
        """008A030104 C1C2C3C4 00: DEBIT, no read, compatibility mode."""
        command = open_secure_session(WriteAccessLevel.DEBIT, CHALLENGE)
        assert command.hex() == "008A030104C1C2C3C400"

    def test_open_with_read(self) -> None:
        """008A0B3904 C1C2C3C4 00: DEBIT, read SFI 07 record 1."""
        command = open_secure_session(WriteAccessLevel.DEBIT, CHALLENGE, sfi=0x07, record=1)
        assert command.hex() == "008A0B3904C1C2C3C400"

    def test_open_answer(self) -> None:
        """030490 98 00 30 79 00: counter, random, ratified, KIF 30, KVC 79, no data."""
        opened = parse_open_secure_session(rsp("03049098003079009000"))
        assert opened.transaction_counter == 0x030490
        assert opened.card_challenge == bytes.fromhex("03049098")
        assert opened.ratified
        assert (opened.kif, opened.kvc, opened.record_data) == (0x30, 0x79, b"")

    def test_open_answer_not_ratified(self) -> None:
        """A non-zero ratification byte means the previous session was not ratified."""
        assert not parse_open_secure_session(rsp("03049098013079009000")).ratified

    def test_open_answer_length_checked(self) -> None:
        """Ld must match the data that follows."""
        with pytest.raises(UnexpectedResponseLengthError):
            parse_open_secure_session(rsp("0304909800307905AABB9000"))

    def test_open_terminated_card(self) -> None:
        """6900: the transaction counter is exhausted."""
        with pytest.raises(CardTerminatedError):
            parse_open_secure_session(rsp("6900"))

    def test_close(self) -> None:
        """008E800004 12345678 00 ratifies now; P1 00 leaves it to the ratification command."""
        mac = bytes.fromhex("12345678")
        assert close_secure_session(mac, ratify_now=True).hex() == "008E8000041234567800"
        assert close_secure_session(mac, ratify_now=False).hex() == "008E0000041234567800"

    def test_close_answer_with_postponed_data(self) -> None:
        """04 345678 FEDCBA98: postponed item 345678, card MAC FEDCBA98 (Keyple 1.x test)."""
        closed = parse_close_secure_session(rsp("04345678FEDCBA989000"))
        assert closed.postponed == (bytes.fromhex("345678"),)
        assert closed.card_mac == bytes.fromhex("FEDCBA98")

    def test_close_refused_mac(self) -> None:
        """6988 at Close: the card rejected the terminal MAC."""
        with pytest.raises(SecurityDataError):
            parse_close_secure_session(rsp("6988"))

    def test_close_unknown_status(self) -> None:
        """A status word the table does not list stays visible as UnknownStatusError."""
        with pytest.raises(UnknownStatusError, match="6F00"):
            parse_close_secure_session(rsp("6F00"))

    def test_abort_and_ratification(self) -> None:
        """Abort is 008E000000; the ratification command is 00B2000000."""
        assert abort_secure_session().hex() == "008E000000"
        assert ratification().hex() == "00B2000000"
