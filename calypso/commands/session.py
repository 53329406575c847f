# SPDX-License-Identifier: Apache-2.0
"""Open / Close / Abort Secure Session and the ratification command (sections 1.1-1.3)."""

from __future__ import annotations

from dataclasses import dataclass

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import MAX_SFI, CardClass, WriteAccessLevel
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


@dataclass(frozen=True, slots=True)
class OpenSessionData:
    """The Open Secure Session answer, Rev3 regular mode (section 1.1)."""

    data_out: bytes  # the whole answer without SW: what the SAM digests first
    transaction_counter: int
    card_challenge: bytes
    ratified: bool  # whether the previous session was ratified
    kif: int
    kvc: int
    record_data: bytes


@dataclass(frozen=True, slots=True)
class CloseSessionData:
    """The Close Secure Session answer: postponed data items, then the card's MAC half."""

    postponed: tuple[bytes, ...]
    card_mac: bytes


def open_secure_session(
    level: WriteAccessLevel,
    terminal_challenge: bytes,
    *,
    sfi: int = 0,
    record: int = 0,
) -> CommandApdu:
    """Open Secure Session, Rev3 regular: 00 8A rec*8+keyIndex sfi*8+1 04 challenge 00."""
    if len(terminal_challenge) != 4:
        raise ValueError("regular mode takes a 4-byte terminal challenge")
    if not 0 <= sfi <= MAX_SFI or not 0 <= record <= 31:
        raise ValueError(f"read in open out of range: SFI {sfi} record {record}")
    if (record == 0) != (sfi == 0):
        raise ValueError("read in open needs both an SFI and a record number")
    p1 = record * 8 + level.key_index
    p2 = sfi * 8 + 1
    return CommandApdu(
        CardClass.ISO, CommandRef.OPEN_SECURE_SESSION.ins, p1, p2, terminal_challenge, le=0
    )


def parse_open_secure_session(
    response: ResponseApdu, command: CommandApdu | None = None
) -> OpenSessionData:
    """CTR(3) RND(1) ratification(1) KIF KVC Ld record(Ld), Rev3 regular mode."""
    ref = CommandRef.OPEN_SECURE_SESSION
    check_status(ref, response, _OPEN_STATUS, command=command)
    data = response.data
    if len(data) < 8 or len(data) != 8 + data[7]:
        raise UnexpectedResponseLengthError(
            ref.label, f"{len(data)} bytes do not match the Rev3 layout", response
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


def close_secure_session(terminal_mac: bytes, *, ratify_now: bool) -> CommandApdu:
    """Close Secure Session: 00 8E 80|00 00 Lc MAC 00; P1 80 asks the card to ratify at once."""
    if len(terminal_mac) not in (4, 8):
        raise ValueError("terminal MAC must be 4 or 8 bytes")
    return CommandApdu(
        CardClass.ISO,
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


def abort_secure_session() -> CommandApdu:
    """Abort: 00 8E 00 00 00 (a Close with no MAC); the card drops the session's writes."""
    return CommandApdu(CardClass.ISO, CommandRef.ABORT_SECURE_SESSION.ins, 0x00, 0x00)


def ratification() -> CommandApdu:
    """The ratification command 00 B2 00 00 00: a Read Record of record 0, answer ignored."""
    return CommandApdu(CardClass.ISO, CommandRef.RATIFICATION.ins, 0x00, 0x00, le=0)
