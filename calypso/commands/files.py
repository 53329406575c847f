# SPDX-License-Identifier: Apache-2.0
"""Select File (A4, section 1.10), Get Data (CA, section 1.11), Invalidate / Rehabilitate (1.9)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from calypso.commands import CommandRef, check_status, status_table
from calypso.commands.select import ApplicationInfo, parse_select_application
from calypso.constants import CardClass, ProductType
from calypso.errors import CardResponseError, UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

_SELECT_FILE_STATUS = status_table(SW.WRONG_LENGTH, SW.FILE_NOT_FOUND, SW.WRONG_P1_P2)
_GET_DATA_STATUS = status_table(SW.WRONG_P1_P2, SW.FILE_NOT_FOUND, 0x6A88)
_DF_STATUS = status_table(
    SW.SESSION_BUFFER_OVERFLOW,
    SW.WRONG_LENGTH,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
)


class SelectFileControl(IntEnum):
    """Select File navigation (section 1.10): P1P2 with data 0000."""

    FIRST_EF = 0x0200
    NEXT_EF = 0x0202
    CURRENT_DF = 0x0900


class GetDataTag(IntEnum):
    """Get Data P1P2 tags (section 1.11)."""

    FCI_FOR_CURRENT_DF = 0x006F
    FCP_FOR_CURRENT_FILE = 0x0062
    EF_LIST = 0x00C0
    TRACEABILITY_INFORMATION = 0x0185
    # PKI (calypso-pki.md "Session"): each certificate comes in two parts, the second at tag + 1.
    CA_CERTIFICATE = 0xDF4A
    CA_CERTIFICATE_NEXT = 0xDF4B
    CARD_CERTIFICATE = 0xDF4C
    CARD_CERTIFICATE_NEXT = 0xDF4D


class EfType(IntEnum):
    """EF type byte of the proprietary information (calypso-data-model 1.4)."""

    BINARY = 0x01
    LINEAR = 0x02
    CYCLIC = 0x04
    SIMULATED_COUNTERS = 0x08
    COUNTERS = 0x09


_EF_TYPES = frozenset(EfType)
FILE_TYPE_MF, FILE_TYPE_DF, FILE_TYPE_EF = 0x01, 0x02, 0x04


@dataclass(frozen=True, slots=True)
class FileHeader:
    """Tag 85 proprietary information of a file (section 1.10, 23 bytes)."""

    sfi: int
    file_type: int  # 01 MF, 02 DF, 04 EF
    ef_type: int
    record_size: int  # binary files: the file size
    records: int
    access_conditions: bytes
    key_indexes: bytes
    df_status: int
    data_reference: bytes  # EF: shared data reference; MF/DF: KVCs (3)
    kifs: bytes  # MF/DF only: KIF per level
    lid: int
    raw: bytes

    @property
    def df_invalidated(self) -> bool:
        """DF status bit 0."""
        return bool(self.df_status & 0x01)


def select_file(
    lid: int, *, product: ProductType = ProductType.PRIME_REVISION_3, legacy_case1: bool = False
) -> CommandApdu:
    """Select File by LID: CLA A4 P1 00 02 LID 00; P1 09 ISO, 02 Rev2, 08 Rev1/legacy case 1."""
    if not 0 <= lid <= 0xFFFF:
        raise ValueError(f"LID out of range: {lid:X}")
    if product is ProductType.PRIME_REVISION_1 or legacy_case1:
        cla, p1 = CardClass.LEGACY, 0x08
    elif product is ProductType.PRIME_REVISION_2:
        cla, p1 = CardClass.LEGACY, 0x02
    else:
        cla, p1 = CardClass.ISO, 0x09
    return CommandApdu(cla, CommandRef.SELECT_FILE.ins, p1, 0x00, lid.to_bytes(2, "big"), le=0)


def select_file_navigate(
    control: SelectFileControl, *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Select File navigation: first EF 02 00, next EF 02 02, current DF 09 00; data 0000."""
    return CommandApdu(
        cla, CommandRef.SELECT_FILE.ins, control >> 8, control & 0xFF, b"\x00\x00", le=0
    )


def parse_file_header(
    ref: CommandRef,
    response: ResponseApdu,
    *,
    product: ProductType = ProductType.PRIME_REVISION_3,
) -> FileHeader:
    """Find tag 85 (23 bytes) and decode it; the LID is at 21..22 (Rev3) or 20..21 (Rev2)."""
    data = response.data
    index = data.find(b"\x85\x17")
    body = data[index + 2 : index + 2 + 23] if index >= 0 else b""
    if len(body) != 23:
        raise UnexpectedResponseLengthError(ref.label, "no 23-byte tag 85", response)
    lid_at = 20 if product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2) else 21
    size = int.from_bytes(body[3:5], "big") if body[2] == EfType.BINARY else body[3]
    # The MF (01h) and a DF (02h) both carry KVC (14..16) and KIF (17..19) triplets; only an EF
    # has the 2-byte shared data reference there (section 1.10, Keyple's directory header).
    directory = body[1] in (FILE_TYPE_MF, FILE_TYPE_DF)
    return FileHeader(
        sfi=body[0],
        file_type=body[1],
        ef_type=body[2],
        record_size=size,
        records=body[4] if body[2] != EfType.BINARY else 1,
        access_conditions=body[5:9],
        key_indexes=body[9:13],
        df_status=body[13],
        data_reference=body[14:17] if directory else body[14:16],
        kifs=body[17:20] if directory else b"",
        lid=int.from_bytes(body[lid_at : lid_at + 2], "big"),
        raw=body,
    )


def parse_select_file(
    response: ResponseApdu,
    command: CommandApdu | None = None,
    *,
    product: ProductType = ProductType.PRIME_REVISION_3,
) -> FileHeader:
    """The selected file's header (tag 85); 6A82 is a DataAccessError."""
    ref = CommandRef.SELECT_FILE
    check_status(ref, response, _SELECT_FILE_STATUS, command=command)
    return parse_file_header(ref, response, product=product)


def get_data(tag: GetDataTag, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Get Data: CLA CA P1P2=tag 00 (case 2); refused inside a session (section 1.11)."""
    return CommandApdu(cla, CommandRef.GET_DATA.ins, tag >> 8, tag & 0xFF, le=0)


def parse_get_data_fci(
    response: ResponseApdu, command: CommandApdu | None = None
) -> ApplicationInfo:
    """Get Data FCI: parsed as the Select Application FCI (6283 = invalidated DF)."""
    return parse_select_application(response, command)


def parse_get_data_fcp(
    response: ResponseApdu,
    command: CommandApdu | None = None,
    *,
    product: ProductType = ProductType.PRIME_REVISION_3,
) -> FileHeader:
    """Get Data FCP of the current file: a header like Select File's tag 85."""
    ref = CommandRef.GET_DATA
    check_status(ref, response, _GET_DATA_STATUS, command=command)
    return parse_file_header(ref, response, product=product)


@dataclass(frozen=True, slots=True)
class EfListEntry:
    """One EF of the EF list: C1 06 LID(2) SFI type recsize nrec (section 1.11)."""

    lid: int
    sfi: int
    ef_type: int
    record_size: int
    records: int


def parse_get_data_ef_list(
    response: ResponseApdu, command: CommandApdu | None = None
) -> tuple[EfListEntry, ...]:
    """The EF list: C0 L then C1 06 entries."""
    ref = CommandRef.GET_DATA
    check_status(ref, response, _GET_DATA_STATUS, command=command)
    data = response.data
    if len(data) < 2 or data[0] != 0xC0 or data[1] != len(data) - 2:
        raise CardResponseError(ref.label, "EF list without a C0 wrapper", response)
    body, entries = data[2:], []
    for i in range(0, len(body), 8):
        item = body[i : i + 8]
        if len(item) != 8 or item[0:2] != b"\xc1\x06":
            raise CardResponseError(ref.label, "malformed EF list entry", response)
        if item[5] not in _EF_TYPES:
            # As Keyple does: a file of no known structure (types 01, 02, 04, 08, 09 only,
            # section 1.10) cannot be read or written safely, so the list is not trusted.
            raise CardResponseError(
                ref.label, f"EF list entry with an unknown EF type {item[5]:02X}h", response
            )
        entries.append(
            EfListEntry(int.from_bytes(item[2:4], "big"), item[4], item[5], item[6], item[7])
        )
    return tuple(entries)


def parse_get_data_raw(response: ResponseApdu, command: CommandApdu | None = None) -> bytes:
    """Any other Get Data object (traceability information...): the raw value."""
    check_status(CommandRef.GET_DATA, response, _GET_DATA_STATUS, command=command)
    return response.data


def invalidate(*, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Invalidate: CLA 04 00 00 00 (case 1, section 1.9)."""
    return CommandApdu(cla, CommandRef.INVALIDATE.ins, 0x00, 0x00)


def rehabilitate(*, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Rehabilitate: CLA 44 00 00 00 (case 1, section 1.9)."""
    return CommandApdu(cla, CommandRef.REHABILITATE.ins, 0x00, 0x00)


def parse_invalidate(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Invalidate or Rehabilitate status."""
    ref = CommandRef.INVALIDATE
    if command is not None and command.ins == CommandRef.REHABILITATE.ins:
        ref = CommandRef.REHABILITATE
    check_status(ref, response, _DF_STATUS, command=command)
