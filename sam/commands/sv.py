# SPDX-License-Identifier: Apache-2.0
"""Stored Value SAM commands: SV Prepare Load / Debit / Undebit and SV Check.

Byte layouts: calypso-protocol.md section 3 (table) and 1.19-1.20; csim1.md 2.2 and 3.8.
"""

from __future__ import annotations

from dataclasses import dataclass

from readers.apdu import SW, CommandApdu, ResponseApdu
from sam.base import SvOperation
from sam.commands.status import CLA_SAM, SamCommandRef, check_status, expect_length

SV_GET_HEADER_LENGTH = 4  # INS P1 P2 Le of the SV Get command
SV_GET_EXTENDED = 0x01  # SV Get P1 of the extended (Rev3.2) mode
SV_CHALLENGE_LENGTH = 3
SV_TRANSACTION_NUMBER_LENGTH = 3

_PREPARE_REFS = {
    SvOperation.RELOAD: SamCommandRef.SV_PREPARE_LOAD,
    SvOperation.DEBIT: SamCommandRef.SV_PREPARE_DEBIT,
    SvOperation.UNDEBIT: SamCommandRef.SV_PREPARE_UNDEBIT,
}
_OPERATION_OF_INS = {ref.ins: op for op, ref in _PREPARE_REFS.items()}


@dataclass(frozen=True, slots=True)
class SvPrepareData:
    """SV Prepare answer: SAM SV challenge (3), SAM transaction number (3), terminal SV MAC."""

    challenge: bytes
    transaction_number: bytes
    terminal_sv_mac: bytes  # "signatureHi": 5 bytes regular, 10 extended


def sv_prepare_ref(operation: SvOperation) -> SamCommandRef:
    """The SV Prepare command that secures this card SV operation."""
    return _PREPARE_REFS[operation]


def sv_operation_of(ins: int) -> SvOperation | None:
    """The SV operation an SV Prepare INS (56, 54, 5C) stands for, or None."""
    return _OPERATION_OF_INS.get(ins)


def partial_command_length(operation: SvOperation) -> int:
    """Bytes of the card SV command given to SV Prepare: reload 15, debit/undebit 12 (1.20)."""
    return 15 if operation is SvOperation.RELOAD else 12


def sv_prepare(
    operation: SvOperation,
    sv_get_header: bytes,
    sv_get_response: bytes,
    partial_command: bytes,
    *,
    cla: int = CLA_SAM,
) -> CommandApdu:
    """SV Prepare Load/Debit/Undebit: CLA 56|54|5C 01 FF Lc header(4) SVGet-resp+SW partial."""
    if len(sv_get_header) != SV_GET_HEADER_LENGTH or sv_get_header[0] != 0x7C:
        raise ValueError("the SV Get header is its 4 bytes INS P1 P2 Le (7C ...)")
    if len(sv_get_response) < 2:
        raise ValueError("the SV Get response must include its status word")
    expected = partial_command_length(operation)
    if len(partial_command) != expected or partial_command[0] != operation.value:
        raise ValueError(f"the partial {operation.name} command is {expected} bytes from its INS")
    data = sv_get_header + sv_get_response + partial_command
    return CommandApdu(cla, sv_prepare_ref(operation).ins, 0x01, 0xFF, data)


def sv_check(card_sv_mac: bytes | None, *, cla: int = CLA_SAM) -> CommandApdu:
    """SV Check: CLA 58 00 00 Lc signatureLo (3 or 6 bytes); None aborts (Lc 00)."""
    if card_sv_mac is None:
        return CommandApdu(cla, SamCommandRef.SV_CHECK.ins, 0x00, 0x00, le=0)  # Lc = 00
    if len(card_sv_mac) not in (3, 6):
        raise ValueError(f"card SV MAC must be 3 or 6 bytes, got {len(card_sv_mac)}")
    return CommandApdu(cla, SamCommandRef.SV_CHECK.ins, 0x00, 0x00, card_sv_mac)


# --- pure parsers --------------------------------------------------------------------------


def parse_sv_prepare(
    response: ResponseApdu, operation: SvOperation, *, extended: bool = False
) -> SvPrepareData:
    """Split the SV Prepare answer: challenge(3) transaction number(3) MAC(5 or 10)."""
    ref = sv_prepare_ref(operation)
    check_status(ref, response)
    mac_size = 10 if extended else 5
    data = expect_length(ref, response.data, 6 + mac_size)
    return SvPrepareData(data[0:3], data[3:6], data[6:])


def parse_sv_check(response: ResponseApdu) -> bool:
    """True on 9000, False on 6988 (the card SV signature is wrong); any other SW raises."""
    check_status(SamCommandRef.SV_CHECK, response, accept=(SW.OK, SW.INCORRECT_SIGNATURE))
    return response.sw == SW.OK
