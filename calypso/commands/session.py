# SPDX-License-Identifier: Apache-2.0
"""Open / Close / Abort / Manage Secure Session and the ratification command (sections 1.1-1.3,
1.21), for every product type: Rev1, Rev2.4, Rev3 (regular, extended, pre-open), Light, Basic.
"""

from __future__ import annotations

from dataclasses import dataclass

from calypso.commands import CommandRef, card_class, check_status, status_table
from calypso.constants import MAX_SFI, CardClass, ProductType, WriteAccessLevel
from calypso.errors import UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

_OPEN_STATUS = status_table(
    SW.WRONG_LENGTH,
    SW.TRANSACTION_COUNTER_EXHAUSTED,
    SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.NO_CURRENT_EF,
    SW.FUNCTION_NOT_SUPPORTED,
    SW.FILE_NOT_FOUND,
    SW.RECORD_NOT_FOUND,
    SW.WRONG_P1_P2,
)
_CLOSE_STATUS = status_table(
    SW.WRONG_LENGTH, SW.WRONG_P1_P2, SW.CONDITIONS_NOT_SATISFIED, SW.INCORRECT_SIGNATURE
)
_MANAGE_STATUS = status_table(
    SW.WRONG_LENGTH, SW.CONDITIONS_NOT_SATISFIED, SW.INCORRECT_SIGNATURE, SW.INS_NOT_SUPPORTED
)

NO_KIF = 0xFF  # what Keyple reads as "the card gave no KIF" (section 2.1)
LEGACY_RECORD_SIZE = 29  # the record read in a Rev1/Rev2 Open is always 29 bytes (section 2.5)


@dataclass(frozen=True, slots=True)
class OpenSessionData:
    """The Open Secure Session answer, any product type (section 1.1).

    ``kif`` is FFh when the card does not give one (Rev1, Rev2); ``kvc`` is FFh on Rev1.
    """

    data_out: bytes  # the whole answer without SW: what the SAM digests first
    transaction_counter: int
    card_challenge: bytes
    ratified: bool  # whether the previous session was ratified
    kif: int
    kvc: int
    record_data: bytes
    extended: bool = False
    manage_session_allowed: bool = False  # extended flags bit1 (section 1.1)
    pre_open: bool = False  # SW 6200: pre-open answer, no session opened (section 2.8)


@dataclass(frozen=True, slots=True)
class CloseSessionData:
    """The Close Secure Session answer: postponed data items, then the card's MAC half."""

    postponed: tuple[bytes, ...]
    card_mac: bytes


def _check_read(sfi: int, record: int) -> None:
    if not 0 <= sfi <= MAX_SFI or not 0 <= record <= 31:
        raise ValueError(f"read in open out of range: SFI {sfi} record {record}")
    if (record == 0) != (sfi == 0):
        raise ValueError("read in open needs both an SFI and a record number")


def open_secure_session(
    level: WriteAccessLevel,
    terminal_challenge: bytes,
    *,
    sfi: int = 0,
    record: int = 0,
    product: ProductType = ProductType.PRIME_REVISION_3,
    extended: bool = False,
) -> CommandApdu:
    """Open Secure Session, encoded for the product type (section 1.1 table).

    Rev1: 94 8A rec*8+key sfi*8 04 chal 00; Rev2.4: 94 8A 80+rec*8+key sfi*8 04 chal 00;
    Rev3/Light/Basic: 00 8A rec*8+key sfi*8+1 04 chal 00; Rev3 extended: 00 8A rec*8+key
    sfi*8+2 09 00 chal(8) 00.
    """
    _check_read(sfi, record)
    p1 = record * 8 + level.key_index
    ins = CommandRef.OPEN_SECURE_SESSION.ins
    if extended:
        if product is not ProductType.PRIME_REVISION_3:
            raise ValueError("extended mode is a Rev3 feature")
        if len(terminal_challenge) != 8:
            raise ValueError("extended mode takes an 8-byte terminal challenge")
        return CommandApdu(CardClass.ISO, ins, p1, sfi * 8 + 2, b"\x00" + terminal_challenge, le=0)
    if len(terminal_challenge) != 4:
        raise ValueError("regular mode takes a 4-byte terminal challenge")
    if product is ProductType.PRIME_REVISION_1:
        return CommandApdu(CardClass.LEGACY, ins, p1, sfi * 8, terminal_challenge, le=0)
    if product is ProductType.PRIME_REVISION_2:
        return CommandApdu(CardClass.LEGACY, ins, 0x80 + p1, sfi * 8, terminal_challenge, le=0)
    return CommandApdu(CardClass.ISO, ins, p1, sfi * 8 + 1, terminal_challenge, le=0)


def pre_open_secure_session(level: WriteAccessLevel) -> CommandApdu:
    """Pre-open at selection (section 2.8): 00 8A keyIndex 02 01 00 00, answered 6200."""
    return CommandApdu(
        CardClass.ISO, CommandRef.OPEN_SECURE_SESSION.ins, level.key_index, 0x02, b"\x00", le=0
    )


def parse_open_secure_session(
    response: ResponseApdu,
    command: CommandApdu | None = None,
    *,
    product: ProductType = ProductType.PRIME_REVISION_3,
    extended: bool = False,
) -> OpenSessionData:
    """Decode the Open answer for the product type (section 1.1 "Response data").

    Rev3/Light/Basic: CTR(3) RND(1) ratif KIF KVC Ld data; extended: CTR(3) RND(5) flags KIF
    KVC Ld data (also the pre-open answer, SW 6200); Rev2.4: KVC CTR(3) RND [ratif(2)] [29];
    Rev1: CTR(3) RND [ratif(2)] [29].
    """
    ref = CommandRef.OPEN_SECURE_SESSION
    pre_open = command is not None and command.p2 == 0x02 and command.data == b"\x00"
    accept = (SW.OK, SW.WARNING_NO_INFO) if pre_open else (SW.OK,)
    check_status(ref, response, _OPEN_STATUS, command=command, accept=accept)
    data = response.data
    if product is ProductType.PRIME_REVISION_1:
        return _parse_legacy(ref, response, data, offset=0, lengths=(4, 6, 33, 35))
    if product is ProductType.PRIME_REVISION_2:
        return _parse_legacy(ref, response, data, offset=1, lengths=(5, 7, 34, 36))
    head = 12 if extended or pre_open else 8
    if len(data) < head or len(data) != head + data[head - 1]:
        raise UnexpectedResponseLengthError(
            ref.label, f"{len(data)} bytes do not match the Rev3 layout", response
        )
    if head == 12:
        return OpenSessionData(
            data_out=data,
            transaction_counter=int.from_bytes(data[0:3], "big"),
            card_challenge=data[0:8],
            ratified=not data[8] & 0x01,
            kif=data[9],
            kvc=data[10],
            record_data=data[12:],
            extended=True,
            manage_session_allowed=bool(data[8] & 0x02),
            pre_open=response.sw == SW.WARNING_NO_INFO,
        )
    return OpenSessionData(
        data_out=data,
        transaction_counter=int.from_bytes(data[0:3], "big"),
        card_challenge=data[0:4],
        ratified=data[4] == 0x00,
        kif=data[5],
        kvc=data[6],
        record_data=data[8:],
    )


def _parse_legacy(
    ref: CommandRef, response: ResponseApdu, data: bytes, *, offset: int, lengths: tuple[int, ...]
) -> OpenSessionData:
    """Rev1 (offset 0) / Rev2.4 (offset 1, KVC first): the length tells ratification and data."""
    if len(data) not in lengths:
        raise UnexpectedResponseLengthError(
            ref.label, f"{len(data)} bytes: not a legal length {lengths}", response
        )
    short, not_ratified, with_data, _ = lengths
    ratified = len(data) in (short, with_data)
    body = offset + 4 + (0 if ratified else 2)
    return OpenSessionData(
        data_out=data,
        transaction_counter=int.from_bytes(data[offset : offset + 3], "big"),
        card_challenge=data[offset : offset + 4],
        ratified=ratified,
        kif=NO_KIF,
        kvc=data[0] if offset else NO_KIF,
        record_data=data[body:],
    )


def close_secure_session(
    terminal_mac: bytes, *, ratify_now: bool, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Close Secure Session: CLA 8E 80|00 00 Lc MAC 00; P1 80 asks the card to ratify at once."""
    if len(terminal_mac) not in (4, 8):
        raise ValueError("terminal MAC must be 4 or 8 bytes")
    return CommandApdu(
        cla,
        CommandRef.CLOSE_SECURE_SESSION.ins,
        0x80 if ratify_now else 0x00,
        0x00,
        terminal_mac,
        le=0,
    )


def parse_close_secure_session(
    response: ResponseApdu, *, mac_size: int = 4, command: CommandApdu | None = None
) -> CloseSessionData:
    """[postponed items: L then L-1 bytes]* then the card MAC (4 or 8 bytes)."""
    ref = CommandRef.CLOSE_SECURE_SESSION
    check_status(ref, response, _CLOSE_STATUS, command=command)
    data = response.data
    if len(data) < mac_size:
        raise UnexpectedResponseLengthError(
            ref.label, f"{len(data)} bytes, shorter than a {mac_size}-byte MAC", response
        )
    body, mac = data[: len(data) - mac_size], data[len(data) - mac_size :]
    postponed: list[bytes] = []
    i = 0
    while i < len(body):
        length = body[i]
        if length == 0 or i + length > len(body):
            raise UnexpectedResponseLengthError(ref.label, "malformed postponed data", response)
        postponed.append(body[i + 1 : i + length])
        i += length
    return CloseSessionData(tuple(postponed), mac)


def abort_secure_session(*, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Abort: CLA 8E 00 00 00 (a Close with no MAC); the card drops the session's writes."""
    return CommandApdu(cla, CommandRef.ABORT_SECURE_SESSION.ins, 0x00, 0x00)


def parse_abort_secure_session(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the abort status (6985 when no session was open)."""
    check_status(CommandRef.ABORT_SECURE_SESSION, response, _CLOSE_STATUS, command=command)


def ratification(*, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """The ratification command CLA B2 00 00 00: a Read Record of record 0, answer ignored."""
    return CommandApdu(cla, CommandRef.RATIFICATION.ins, 0x00, 0x00, le=0)


def manage_secure_session(
    *, encryption: bool, terminal_mac: bytes | None = None, product: ProductType | None = None
) -> CommandApdu:
    """Manage Secure Session (section 1.21): 00 82 00 P2 [08 MAC 00]; P2 bit0 auth, bit1 enc.

    Without a MAC: case 1 ``00 82 00 00|02 00``; with one: ``00 82 00 01|03 08 MAC 00``.
    """
    if product is not None and product is not ProductType.PRIME_REVISION_3:
        raise ValueError("Manage Secure Session is a Rev3 extended-mode command")
    p2 = 0x02 if encryption else 0x00
    ins = CommandRef.MANAGE_SECURE_SESSION.ins
    if terminal_mac is None:
        return CommandApdu(CardClass.ISO, ins, 0x00, p2)
    if len(terminal_mac) != 8:
        raise ValueError("mutual authentication takes an 8-byte terminal MAC")
    return CommandApdu(CardClass.ISO, ins, 0x00, p2 | 0x01, terminal_mac, le=0)


def parse_manage_secure_session(
    response: ResponseApdu, command: CommandApdu | None = None
) -> bytes | None:
    """The card's 8-byte MAC when mutual authentication was asked, else None."""
    ref = CommandRef.MANAGE_SECURE_SESSION
    check_status(ref, response, _MANAGE_STATUS, command=command)
    if command is not None and command.p2 & 0x01:
        if len(response.data) != 8:
            raise UnexpectedResponseLengthError(
                ref.label, f"expected an 8-byte card MAC, got {len(response.data)}", response
            )
        return response.data
    if response.data:
        raise UnexpectedResponseLengthError(ref.label, "unexpected data", response)
    return None


def session_card_class(product: ProductType) -> CardClass:
    """The CLA of session commands for a product type (94h Rev1/Rev2, else 00h)."""
    return card_class(product)
