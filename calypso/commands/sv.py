# SPDX-License-Identifier: Apache-2.0
"""Stored value: SV Get (7C, section 1.19), SV Reload (B8) / Debit (BA) / Undebit (BC) (1.20).

CLA FAh on Rev1/Rev2, 00h otherwise (section 0). Regular ("compat") and extended layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import CardClass
from calypso.errors import UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

_GET_STATUS = status_table(
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.FUNCTION_NOT_SUPPORTED,
    SW.INCORRECT_P1_P2_6A86,
    SW.INS_NOT_SUPPORTED,
)
_OPERATION_STATUS = status_table(
    SW.SESSION_BUFFER_OVERFLOW,
    SW.WRONG_LENGTH,
    SW.TRANSACTION_COUNTER_EXHAUSTED,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.INCORRECT_SIGNATURE,
    SW.INS_NOT_SUPPORTED,
)
LOAD_LOG_SIZE = 22
DEBIT_LOG_SIZE = 19
SV_LOAD_LOG_SFI = 0x14
SV_DEBIT_LOG_SFI = 0x15


class SvOperation(IntEnum):
    """SV Get P2: prepare a reload (07) or a debit/undebit (09)."""

    RELOAD = 0x07
    DEBIT = 0x09


def sv_get_le(operation: SvOperation, *, extended: bool) -> int:
    """Le of SV Get: 21h reload, 1Eh debit (regular), 3Dh extended (section 1.19)."""
    if extended:
        return 0x3D
    return 0x21 if operation is SvOperation.RELOAD else 0x1E


def sv_get(
    operation: SvOperation, *, extended: bool = False, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """SV Get: CLA 7C 00|01 07|09 Le (e.g. 007C000721, 007C00091E, 007C01073D, FA7C000721)."""
    le = sv_get_le(operation, extended=extended)
    return CommandApdu(cla, CommandRef.SV_GET.ins, 0x01 if extended else 0x00, operation, le=le)


@dataclass(frozen=True, slots=True)
class SvGetData:
    """An SV Get answer and what the SAM needs of it (section 1.19)."""

    header: bytes  # 7C P1 P2 Le
    response: bytes  # the full answer, data and SW
    kvc: int
    transaction_number: int
    previous_signature: bytes
    challenge: bytes
    balance: int
    load_log: bytes | None
    debit_log: bytes | None


def parse_sv_get(response: ResponseApdu, command: CommandApdu) -> SvGetData:
    """Decode the regular reload (33), regular debit (30) or extended (61) layout."""
    ref = CommandRef.SV_GET
    check_status(ref, response, _GET_STATUS, command=command)
    data = response.data
    header = bytes((command.ins, command.p1, command.p2, command.le or 0))
    extended = command.p1 == 0x01
    reload = command.p2 == SvOperation.RELOAD
    expected = 61 if extended else (33 if reload else 30)
    if len(data) != expected:
        raise UnexpectedResponseLengthError(
            ref.label, f"expected {expected} bytes, got {len(data)}", response
        )
    if extended:
        # [0..7] challenge [8] KVC [9..10] TNum [11..16] sigLo [17..19] balance [20..41] load
        # log [42..60] debit log.
        return SvGetData(
            header,
            bytes(response),
            data[8],
            int.from_bytes(data[9:11], "big"),
            data[11:17],
            data[0:8],
            int.from_bytes(data[17:20], "big", signed=True),
            data[20:42],
            data[42:61],
        )
    # [0] KVC [1..2] TNum [3..5] sigLo [6..7] challenge [8..10] balance [11..] log.
    log = data[11:]
    return SvGetData(
        header,
        bytes(response),
        data[0],
        int.from_bytes(data[1:3], "big"),
        data[3:6],
        data[6:8],
        int.from_bytes(data[8:11], "big", signed=True),
        log if reload else None,
        None if reload else log,
    )


def sv_reload_partial(
    amount: int, *, date: bytes, time: bytes, kvc: int, free: bytes = b"\x00\x00"
) -> bytes:
    """The reload data up to the SAM's fields: chal[2](00) date free1 KVC free2 amount time."""
    if not -8388608 <= amount <= 8388607:
        raise ValueError("reload amount out of range")
    if len(date) != 2 or len(time) != 2 or len(free) != 2:
        raise ValueError("date, time and free data are 2 bytes each")
    return (
        b"\x00"
        + date
        + free[:1]
        + bytes((kvc,))
        + free[1:]
        + amount.to_bytes(3, "big", signed=True)
        + time
    )


def sv_debit_partial(
    amount: int, *, date: bytes, time: bytes, kvc: int, undebit: bool = False
) -> bytes:
    """The debit/undebit data up to the SAM's fields: chal[2](00) amount(2) date time KVC."""
    if not 0 <= amount <= 32767:
        raise ValueError("debit amount out of range 0..32767")
    if len(date) != 2 or len(time) != 2:
        raise ValueError("date and time are 2 bytes each")
    signed = amount if undebit else -amount  # debit sends -amount (section 1.20)
    return b"\x00" + signed.to_bytes(2, "big", signed=True) + date + time + bytes((kvc,))


def sv_sam_part(ins: int, partial: bytes, *, extended: bool) -> bytes:
    """What SV Prepare gets: INS 00 00 Lc partial (15 bytes reload, 12 debit/undebit)."""
    lc = len(partial) + 7 + (10 if extended else 5)
    return bytes((ins, 0x00, 0x00, lc)) + partial


def sv_operation(
    ins: int,
    partial: bytes,
    *,
    sam_challenge: bytes,
    sam_serial: bytes,
    sam_tnum: bytes,
    mac: bytes,
    in_session: bool,
    cla: CardClass = CardClass.ISO,
) -> CommandApdu:
    """SV Reload/Debit/Undebit: CLA INS chal0 chal1 Lc chal2 fields SAM-SN TNum MAC [Le].

    Le 03/06 outside a session (the card signature comes back at once), none inside (it comes
    with Close as postponed data).
    """
    if ins not in (CommandRef.SV_RELOAD.ins, CommandRef.SV_DEBIT.ins, CommandRef.SV_UNDEBIT.ins):
        raise ValueError(f"not an SV operation: {ins:02X}")
    if len(sam_challenge) != 3 or len(sam_serial) != 4 or len(sam_tnum) != 3:
        raise ValueError("SAM challenge 3, serial 4 and transaction number 3 bytes")
    if len(mac) not in (5, 10):
        raise ValueError("SV MAC is 5 (regular) or 10 (extended) bytes")
    data = sam_challenge[2:3] + partial[1:] + sam_serial + sam_tnum + mac
    le = None if in_session else (3 if len(mac) == 5 else 6)
    return CommandApdu(cla, ins, sam_challenge[0], sam_challenge[1], data, le=le)


def parse_sv_operation(response: ResponseApdu, command: CommandApdu | None = None) -> bytes | None:
    """The card's SV signature (3 or 6 bytes) outside a session; None when postponed."""
    ref = CommandRef.SV_DEBIT
    if command is not None:
        ref = {
            CommandRef.SV_RELOAD.ins: CommandRef.SV_RELOAD,
            CommandRef.SV_UNDEBIT.ins: CommandRef.SV_UNDEBIT,
        }.get(command.ins, CommandRef.SV_DEBIT)
    check_status(ref, response, _OPERATION_STATUS, command=command, accept=(SW.OK, 0x6200))
    if not response.data:
        return None
    if len(response.data) not in (3, 6):
        raise UnexpectedResponseLengthError(
            ref.label, f"SV signature of {len(response.data)} bytes", response
        )
    return response.data
