# SPDX-License-Identifier: Apache-2.0
"""Read Record Multiple (B3, section 1.13) and Search Record Multiple (A2, section 1.14).

Both are Rev3 commands used outside a session (Read Record Multiple also on Light).
"""

from __future__ import annotations

from dataclasses import dataclass

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import MAX_RECORD_NUMBER, MAX_SFI, CardClass
from calypso.errors import UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

_STATUS = status_table(
    SW.SESSION_BUFFER_OVERFLOW,
    SW.WRONG_LENGTH,
    SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.NO_CURRENT_EF,
    SW.INCORRECT_PARAMETERS_IN_DATA,
    SW.FILE_NOT_FOUND,
    SW.RECORD_NOT_FOUND,
    SW.WRONG_P1_P2,
)


def _check(sfi: int, record: int) -> None:
    if not 0 <= sfi <= MAX_SFI:
        raise ValueError(f"SFI out of range: {sfi}")
    if not 1 <= record <= MAX_RECORD_NUMBER:
        raise ValueError(f"record number out of range: {record}")


def read_record_multiple(
    sfi: int, record: int, offset: int, length: int, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Read Record Multiple: CLA B3 rec sfi*8+5 04 54 02 offset length 00 (section 1.13)."""
    _check(sfi, record)
    if not 0 <= offset <= 249 or not 1 <= length <= 250:
        raise ValueError(f"offset/length out of range: {offset}/{length}")
    data = bytes((0x54, 0x02, offset, length))
    return CommandApdu(cla, CommandRef.READ_RECORD_MULTIPLE.ins, record, sfi * 8 + 5, data, le=0)


@dataclass(frozen=True, slots=True)
class PartialRecords:
    """Read Record Multiple result: parts by record number, and whether the card stopped early."""

    parts: dict[int, bytes]
    complete: bool  # False on SW 6200: continue from the next record

    @property
    def next_record(self) -> int:
        """The record to continue from after a partial read."""
        return max(self.parts) + 1 if self.parts else 1


def parse_read_record_multiple(
    response: ResponseApdu, *, record: int, length: int, command: CommandApdu | None = None
) -> PartialRecords:
    """Split the concatenated parts of ``length`` bytes; 6200 = partial read (section 1.13)."""
    ref = CommandRef.READ_RECORD_MULTIPLE
    check_status(ref, response, _STATUS, command=command, accept=(SW.OK, SW.WARNING_NO_INFO))
    data = response.data
    if len(data) % length:
        raise UnexpectedResponseLengthError(
            ref.label, f"{len(data)} bytes is not a multiple of {length}", response
        )
    parts = {record + i: data[i * length : (i + 1) * length] for i in range(len(data) // length)}
    return PartialRecords(parts, response.sw == SW.OK)


def search_record_multiple(
    sfi: int,
    record: int,
    offset: int,
    search: bytes,
    *,
    mask: bytes = b"",
    repeated_offset: bool = False,
    fetch_first: bool = False,
    cla: CardClass = CardClass.ISO,
) -> CommandApdu:
    """Search Record Multiple: CLA A2 rec sfi*8+7 Lc flags offset L data mask 00 (1.14).

    Missing mask bytes are padded with FF.
    """
    _check(sfi, record)
    if not 1 <= len(search) <= 250 or len(mask) > len(search):
        raise ValueError("search data 1..250 bytes, mask no longer than it")
    flags = (0x80 if repeated_offset else 0) | (0x01 if fetch_first else 0)
    full_mask = mask + b"\xff" * (len(search) - len(mask))
    data = bytes((flags, offset, len(search))) + search + full_mask
    return CommandApdu(cla, CommandRef.SEARCH_RECORD_MULTIPLE.ins, record, sfi * 8 + 7, data, le=0)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Matching record numbers, and the first match's content when fetched."""

    records: tuple[int, ...]
    first_record: bytes


def parse_search_record_multiple(
    response: ResponseApdu, command: CommandApdu | None = None
) -> SearchResult:
    """[N][N record numbers][first matching record if fetched] (section 1.14)."""
    ref = CommandRef.SEARCH_RECORD_MULTIPLE
    check_status(ref, response, _STATUS, command=command)
    data = response.data
    if not data or len(data) < 1 + data[0]:
        raise UnexpectedResponseLengthError(ref.label, "truncated search answer", response)
    count = data[0]
    return SearchResult(tuple(data[1 : 1 + count]), data[1 + count :])
