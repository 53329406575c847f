# SPDX-License-Identifier: Apache-2.0
"""Read Records, Update Record and Append Record (calypso-protocol sections 1.4-1.6)."""

from __future__ import annotations

from enum import IntEnum

from calypso.commands import (
    FILE_READ_STATUS,
    FILE_WRITE_STATUS,
    CommandRef,
    check_status,
)
from calypso.constants import MAX_RECORD_NUMBER, MAX_SFI, CardClass
from calypso.errors import CardResponseError
from readers.apdu import CommandApdu, ResponseApdu


class ReadMode(IntEnum):
    """Read Records P2 low bits: one record, or from P1 to the end of the file."""

    ONE = 0x04
    MULTIPLE = 0x05


_READ_STATUS = FILE_READ_STATUS
_WRITE_STATUS = FILE_WRITE_STATUS


def _check_sfi_record(sfi: int, record: int) -> None:
    if not 0 <= sfi <= MAX_SFI:
        raise ValueError(f"SFI out of range: {sfi}")
    if not 1 <= record <= MAX_RECORD_NUMBER:
        raise ValueError(f"record number out of range: {record}")


def read_records(
    sfi: int,
    record: int,
    *,
    mode: ReadMode = ReadMode.ONE,
    le: int = 0,
    cla: CardClass = CardClass.ISO,
) -> CommandApdu:
    """Read Records: CLA B2 rec sfi*8+mode Le (Le 00 when the length is not known)."""
    _check_sfi_record(sfi, record)
    return CommandApdu(cla, CommandRef.READ_RECORDS.ins, record, sfi * 8 + mode, le=le)


def parse_read_records(
    response: ResponseApdu,
    *,
    record: int,
    mode: ReadMode = ReadMode.ONE,
    command: CommandApdu | None = None,
) -> dict[int, bytes]:
    """Records by number: one record as is, multiple mode as repeated [rec#][len][data]."""
    ref = CommandRef.READ_RECORDS
    check_status(ref, response, _READ_STATUS, command=command)
    if mode is ReadMode.ONE:
        return {record: response.data}
    records: dict[int, bytes] = {}
    data = response.data
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise CardResponseError(ref.label, "truncated record header", response)
        number, length = data[i], data[i + 1]
        body = data[i + 2 : i + 2 + length]
        if len(body) != length:
            raise CardResponseError(ref.label, f"record {number} truncated", response)
        records[number] = body
        i += 2 + length
    if not records:
        raise CardResponseError(ref.label, "multiple read returned no record", response)
    return records


def update_record(
    sfi: int, record: int, data: bytes, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Update Record: CLA DC rec sfi*8+4 Lc data (case 3)."""
    _check_sfi_record(sfi, record)
    if not data:
        raise ValueError("Update Record needs data")
    return CommandApdu(cla, CommandRef.UPDATE_RECORD.ins, record, sfi * 8 + 4, data)


def parse_update_record(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Update Record status."""
    check_status(CommandRef.UPDATE_RECORD, response, _WRITE_STATUS, command=command)


def write_record(
    sfi: int, record: int, data: bytes, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Write Record (OR with the record): CLA D2 rec sfi*8+4 Lc data (case 3, section 1.5)."""
    _check_sfi_record(sfi, record)
    if not data:
        raise ValueError("Write Record needs data")
    return CommandApdu(cla, CommandRef.WRITE_RECORD.ins, record, sfi * 8 + 4, data)


def parse_write_record(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Write Record status."""
    check_status(CommandRef.WRITE_RECORD, response, _WRITE_STATUS, command=command)


def append_record(sfi: int, data: bytes, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Append Record to a cyclic file: CLA E2 00 sfi*8 Lc data (case 3)."""
    if not 0 <= sfi <= MAX_SFI:
        raise ValueError(f"SFI out of range: {sfi}")
    if not data:
        raise ValueError("Append Record needs data")
    return CommandApdu(cla, CommandRef.APPEND_RECORD.ins, 0x00, sfi * 8, data)


def appended_record(apdu: bytes) -> bytes | None:
    """The record data of a raw Append Record command APDU; None for any other command."""
    if len(apdu) > 5 and apdu[1] == CommandRef.APPEND_RECORD.ins:
        return apdu[5 : 5 + apdu[4]]
    return None


def parse_append_record(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Append Record status."""
    check_status(CommandRef.APPEND_RECORD, response, _WRITE_STATUS, command=command)
