# SPDX-License-Identifier: Apache-2.0
"""Read / Update / Write Binary (section 1.12): binary EFs, Rev3 (Rev2 tolerated)."""

from __future__ import annotations

from calypso.commands import (
    FILE_READ_STATUS,
    FILE_WRITE_STATUS,
    CommandRef,
    check_status,
)
from calypso.constants import MAX_SFI, CardClass
from calypso.errors import UnexpectedResponseLengthError
from readers.apdu import CommandApdu, ResponseApdu

MAX_BINARY_OFFSET = 32767
_READ_STATUS = FILE_READ_STATUS
_WRITE_STATUS = FILE_WRITE_STATUS


def binary_p1_p2(sfi: int, offset: int) -> tuple[int, int]:
    """P1 = 80h|sfi and P2 = offset below 256; else P1 P2 = 15-bit offset on the current EF."""
    if not 0 <= sfi <= MAX_SFI or not 0 <= offset <= MAX_BINARY_OFFSET:
        raise ValueError(f"SFI/offset out of range: {sfi}/{offset}")
    if offset < 256 and sfi != 0:
        return 0x80 | sfi, offset
    if sfi != 0:
        raise ValueError("offsets from 256 address the current EF: select it first (SFI 0)")
    return offset >> 8, offset & 0xFF


def read_binary(
    sfi: int, offset: int, length: int, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Read Binary: CLA B0 P1 P2 Le (e.g. 00B0810001)."""
    if not 1 <= length <= 256:
        raise ValueError(f"length out of range: {length}")
    p1, p2 = binary_p1_p2(sfi, offset)
    return CommandApdu(cla, CommandRef.READ_BINARY.ins, p1, p2, le=length & 0xFF)


def parse_read_binary(
    response: ResponseApdu, *, length: int | None = None, command: CommandApdu | None = None
) -> bytes:
    """The bytes read; checked against the length asked for when given."""
    ref = CommandRef.READ_BINARY
    check_status(ref, response, _READ_STATUS, command=command)
    if length is not None and len(response.data) != length:
        raise UnexpectedResponseLengthError(
            ref.label, f"expected {length} bytes, got {len(response.data)}", response
        )
    return response.data


def update_binary(
    sfi: int, offset: int, data: bytes, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Update Binary: CLA D6 P1 P2 Lc data (e.g. 00D68100021122)."""
    if not data:
        raise ValueError("Update Binary needs data")
    p1, p2 = binary_p1_p2(sfi, offset)
    return CommandApdu(cla, CommandRef.UPDATE_BINARY.ins, p1, p2, data)


def write_binary(
    sfi: int, offset: int, data: bytes, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Write Binary (OR with the content): CLA D0 P1 P2 Lc data (e.g. 00D001000166)."""
    if not data:
        raise ValueError("Write Binary needs data")
    p1, p2 = binary_p1_p2(sfi, offset)
    return CommandApdu(cla, CommandRef.WRITE_BINARY.ins, p1, p2, data)


def parse_update_binary(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Update Binary or Write Binary status."""
    ref = CommandRef.UPDATE_BINARY
    if command is not None and command.ins == CommandRef.WRITE_BINARY.ins:
        ref = CommandRef.WRITE_BINARY
    check_status(ref, response, _WRITE_STATUS, command=command)
