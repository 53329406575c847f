# SPDX-License-Identifier: Apache-2.0
"""The SAM commands beyond the session digest: builders, parsers and status tables."""

from __future__ import annotations

import pytest
from sam_vectors import (
    KEY_BLOB,
    KEY_CARD_CHALLENGE,
    NEW_PIN,
    PIN,
    PIN_BLOCK,
    PIN_CARD_CHALLENGE,
    PIN_CHANGE_BLOCK,
    SAM_CIPHER_PIN_CHANGE,
    SAM_CIPHER_PIN_VERIFY,
    SAM_GENERATE_KEY,
    SAM_GIVE_RANDOM_KEY,
    SAM_GIVE_RANDOM_PIN,
    SAM_SV_CHECK,
    SAM_SV_PREPARE_DEBIT,
    SV_CARD_SIGNATURE,
    SV_DEBIT_PARTIAL,
    SV_GET_HEADER,
    SV_GET_RESPONSE,
    SV_PREPARE_ANSWER,
    h,
)

from readers.apdu import ResponseApdu
from sam import commands as cmd
from sam.base import SvOperation
from sam.commands import SamCommandRef

OK = h("9000")


def _rsp(hex_or_bytes: bytes) -> ResponseApdu:
    return ResponseApdu.from_bytes(hex_or_bytes)


class TestDigestInternalAuthenticate:
    """Digest Internal Authenticate (csim1 extended vector)."""

    def test_builder(self) -> None:
        """80 88 80 00 08, and CLA 94 for an S1Dx."""
        assert cmd.digest_internal_authenticate().hex().upper() == "8088800008"
        assert cmd.digest_internal_authenticate(cla=0x94).hex().upper() == "9488800008"

    def test_parser(self) -> None:
        """The 8-byte terminal MAC comes back; another length or 6985 raises."""
        mac = h("71D97DC817FD9B49")
        assert cmd.parse_digest_internal_authenticate(_rsp(mac + OK)) == mac
        with pytest.raises(cmd.SamResponseLengthError):
            cmd.parse_digest_internal_authenticate(_rsp(mac[:4] + OK))
        with pytest.raises(cmd.SamAccessForbiddenError):
            cmd.parse_digest_internal_authenticate(_rsp(h("6985")))


class TestPinAndKeyCommands:
    """Give Random, Card Cipher PIN and Card Generate Key (csim1 PIN and Change Key vectors)."""

    def test_give_random(self) -> None:
        """Give Random carries the 8-byte card challenge; other lengths are refused."""
        assert bytes(cmd.give_random(PIN_CARD_CHALLENGE)) == SAM_GIVE_RANDOM_PIN
        assert bytes(cmd.give_random(KEY_CARD_CHALLENGE)) == SAM_GIVE_RANDOM_KEY
        with pytest.raises(ValueError, match="8 bytes"):
            cmd.give_random(h("11223344"))
        cmd.parse_give_random(_rsp(OK))
        with pytest.raises(cmd.SamIllegalParameterError):
            cmd.parse_give_random(_rsp(h("6700")))

    def test_card_cipher_pin(self) -> None:
        """Presentation is P1 80 with one PIN, modification P1 40 with two."""
        assert bytes(cmd.card_cipher_pin(0x30, 0xF0, PIN)) == SAM_CIPHER_PIN_VERIFY
        assert bytes(cmd.card_cipher_pin(0x30, 0xF0, bytes(4), NEW_PIN)) == SAM_CIPHER_PIN_CHANGE
        with pytest.raises(ValueError, match="PIN"):
            cmd.card_cipher_pin(0x30, 0xF0, b"12345")

    def test_parse_card_cipher_pin(self) -> None:
        """8 bytes for a presentation, 16 for a modification; 6A83 is a missing key."""
        assert cmd.parse_card_cipher_pin(_rsp(PIN_BLOCK + OK)) == PIN_BLOCK
        assert cmd.parse_card_cipher_pin(_rsp(PIN_CHANGE_BLOCK + OK), change=True) == (
            PIN_CHANGE_BLOCK
        )
        with pytest.raises(cmd.SamResponseLengthError):
            cmd.parse_card_cipher_pin(_rsp(PIN_CHANGE_BLOCK + OK))
        with pytest.raises(cmd.SamKeyNotFoundError):
            cmd.parse_card_cipher_pin(_rsp(h("6A83")))

    def test_card_generate_key(self) -> None:
        """Ciphered variant P2 FF with five bytes, null-key variant P2 00 with three."""
        assert bytes(cmd.card_generate_key(0x27, 0xF1, 0x21, 0xF0)) == SAM_GENERATE_KEY
        assert cmd.card_generate_key(0x27, 0xF1).hex().upper() == "8012FF000327F190"
        with pytest.raises(ValueError, match="neither"):
            cmd.card_generate_key(0x27, 0xF1, 0x21)

    def test_parse_card_generate_key(self) -> None:
        """The 32-byte cryptogram; 6A80 is incorrect input data."""
        assert cmd.parse_card_generate_key(_rsp(KEY_BLOB + OK)) == KEY_BLOB
        with pytest.raises(cmd.SamIncorrectInputDataError):
            cmd.parse_card_generate_key(_rsp(h("6A80")))


class TestSvCommands:
    """SV Prepare Load / Debit / Undebit and SV Check (csim1 SV debit vector)."""

    def test_sv_prepare_debit(self) -> None:
        """SV Prepare Debit: 80 54 01 FF, header, SV Get response with SW, partial command."""
        built = cmd.sv_prepare(SvOperation.DEBIT, SV_GET_HEADER, SV_GET_RESPONSE, SV_DEBIT_PARTIAL)
        assert bytes(built) == SAM_SV_PREPARE_DEBIT

    def test_sv_prepare_undebit_and_load(self) -> None:
        """Undebit is INS 5C with a BC partial command; Load INS 56 with a 15-byte partial."""
        undebit = cmd.sv_prepare(
            SvOperation.UNDEBIT, SV_GET_HEADER, SV_GET_RESPONSE, h("BC") + SV_DEBIT_PARTIAL[1:]
        )
        assert bytes(undebit)[:4] == h("805C01FF")
        load = cmd.sv_prepare(SvOperation.RELOAD, h("7C000721"), OK, h("B8000017") + bytes(11))
        assert bytes(load)[:5] == h("805601FF15")  # 4 + 2 + 15 bytes

    def test_sv_prepare_refuses_bad_parts(self) -> None:
        """A wrong header, a response without SW or a partial of the wrong size is refused."""
        with pytest.raises(ValueError, match="header"):
            cmd.sv_prepare(SvOperation.DEBIT, h("7C0009"), SV_GET_RESPONSE, SV_DEBIT_PARTIAL)
        with pytest.raises(ValueError, match="status word"):
            cmd.sv_prepare(SvOperation.DEBIT, SV_GET_HEADER, h("F0"), SV_DEBIT_PARTIAL)
        with pytest.raises(ValueError, match="partial"):
            cmd.sv_prepare(SvOperation.RELOAD, SV_GET_HEADER, SV_GET_RESPONSE, SV_DEBIT_PARTIAL)

    def test_parse_sv_prepare(self) -> None:
        """Challenge, transaction number and 5-byte MAC (10 in extended mode)."""
        data = cmd.parse_sv_prepare(_rsp(SV_PREPARE_ANSWER + OK), SvOperation.DEBIT)
        assert data == cmd.SvPrepareData(h("A1B2C3"), h("000010"), h("6F851A6BA1"))
        with pytest.raises(cmd.SamResponseLengthError):
            cmd.parse_sv_prepare(_rsp(SV_PREPARE_ANSWER + OK), SvOperation.DEBIT, extended=True)

    def test_sv_check(self) -> None:
        """SV Check carries the card signature; None is the abort form with Lc 00."""
        assert bytes(cmd.sv_check(SV_CARD_SIGNATURE)) == SAM_SV_CHECK
        assert cmd.sv_check(None).hex().upper() == "8058000000"
        with pytest.raises(ValueError, match="3 or 6"):
            cmd.sv_check(h("01020304"))

    def test_parse_sv_check(self) -> None:
        """9000 is True, 6988 False, 6985 (no SV transaction) raises."""
        assert cmd.parse_sv_check(_rsp(OK)) is True
        assert cmd.parse_sv_check(_rsp(h("6988"))) is False
        with pytest.raises(cmd.SamAccessForbiddenError, match="no SV transaction"):
            cmd.parse_sv_check(_rsp(h("6985")))


class TestAdminCommands:
    """Unlock and the SAM's own records."""

    def test_unlock(self) -> None:
        """Unlock takes 8 or 16 bytes; 6985 is accepted only when asked (not locked)."""
        assert cmd.unlock(bytes(16)).hex().upper() == "8020000010" + "00" * 16
        assert cmd.unlock(bytes(8), cla=0x94).hex().upper() == "9420000008" + "00" * 8
        with pytest.raises(ValueError):
            cmd.unlock(bytes(10))
        assert cmd.parse_unlock(_rsp(h("6985")), accept_not_locked=True) is True
        with pytest.raises(cmd.SamAccessForbiddenError, match="not locked"):
            cmd.parse_unlock(_rsp(h("6985")))
        with pytest.raises(cmd.SamSecurityDataError, match="unlock data"):
            cmd.parse_unlock(_rsp(h("6988")))

    def test_read_key_parameters(self) -> None:
        """By KIF/KVC (P2 F0) or by record with 0000; case 3, no Le (Keyple's encoding)."""
        assert cmd.read_key_parameters(0x30, 0xF0).hex().upper() == "80BC00F00230F0"
        assert cmd.read_key_parameters(record=0x05).hex().upper() == "80BC0005020000"
        with pytest.raises(ValueError):
            cmd.read_key_parameters(record=0x7F)
        with pytest.raises(ValueError):
            cmd.read_key_parameters(0x30)

    @pytest.mark.parametrize("system_key", [0xC1, 0xC2, 0xC3, 0xC4])
    def test_read_key_parameters_system_key_vector(self, system_key: int) -> None:
        """System keys C1-C4 encode as `80 BC 00 Cx 02 00 00`, with no trailing Le (issue 16.2)."""
        command = cmd.read_key_parameters(record=system_key)
        assert command.hex().upper() == f"80BC00{system_key:02X}020000"
        assert command.le is None

    def test_parse_read_key_parameters(self) -> None:
        """KIF, KVC, ALG and PAR1-10 from offset 8; 6200 is a success."""
        record = bytes(8) + h("30F0A0") + bytes(range(1, 11)) + bytes(11)
        params = cmd.parse_read_key_parameters(_rsp(record + h("6200")))
        assert params == cmd.KeyParameters(0x30, 0xF0, 0xA0, bytes(range(1, 11)))
        with pytest.raises(cmd.SamKeyNotFoundError):
            cmd.parse_read_key_parameters(_rsp(h("6A83")))

    def test_read_records(self) -> None:
        """Event counters E1-E3, ceilings B1-B3, parameters A0, all with Le 00."""
        assert cmd.read_event_counter().hex().upper() == "80BE00E100"
        assert cmd.read_event_counter(2).hex().upper() == "80BE00E300"
        assert cmd.read_ceilings(1).hex().upper() == "80BE00B200"
        assert cmd.read_parameters().hex().upper() == "80BE00A000"
        with pytest.raises(ValueError):
            cmd.read_event_counter(3)

    def test_parse_records(self) -> None:
        """Nine 3-byte values from offset 8; parameters are 29 bytes at offset 8."""
        values = b"".join(n.to_bytes(3, "big") for n in range(1, 10))
        record = bytes(8) + values + bytes(13)
        assert cmd.parse_read_event_counter(_rsp(record + OK)) == list(range(1, 10))
        assert cmd.parse_read_ceilings(_rsp(record + h("6200"))) == list(range(1, 10))
        assert cmd.parse_read_parameters(_rsp(record + OK)) == values + bytes(2)
        with pytest.raises(cmd.SamCounterOverflowError):
            cmd.parse_read_event_counter(_rsp(h("6900")))
        with pytest.raises(cmd.SamResponseLengthError):
            cmd.parse_read_parameters(_rsp(bytes(20) + OK))


class TestStatusTables:
    """Every command has a table; unknown status words are kept."""

    def test_every_command_has_a_table(self) -> None:
        """Each SamCommandRef has a status table."""
        assert set(cmd.STATUS_TABLES) == set(SamCommandRef)

    @pytest.mark.parametrize(
        ("ref", "sw", "error"),
        [
            (SamCommandRef.CARD_GENERATE_KEY, 0x6A83, cmd.SamKeyNotFoundError),
            (SamCommandRef.SV_PREPARE_LOAD, 0x6985, cmd.SamAccessForbiddenError),
            (SamCommandRef.SV_CHECK, 0x6988, cmd.SamSecurityDataError),
            (SamCommandRef.UNLOCK, 0x6700, cmd.SamIllegalParameterError),
            (SamCommandRef.READ_PARAMETERS, 0x6900, cmd.SamCounterOverflowError),
            (SamCommandRef.GIVE_RANDOM, 0x6D00, cmd.SamIllegalParameterError),
            (SamCommandRef.CARD_CIPHER_PIN, 0x6F00, cmd.SamUnknownStatusError),
        ],
    )
    def test_mapping(self, ref: SamCommandRef, sw: int, error: type[cmd.SamCommandError]) -> None:
        """A refused SW maps to the command's typed error and keeps the SW."""
        with pytest.raises(error) as caught:
            cmd.check_status(ref, _rsp(sw.to_bytes(2, "big")))
        assert caught.value.sw == sw and ref.label in str(caught.value)
