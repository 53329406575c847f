# SPDX-License-Identifier: Apache-2.0
"""SAM management commands: Unlock, Read Key Parameters, Read Event Counter, Read Ceilings,
Read Parameters.

Byte layouts: calypso-protocol.md section 3 (table): 48-byte records with data at offset 8,
32-byte key parameter records with KIF KVC ALG PAR1-10 at offset 8 (csim1.md 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from readers.apdu import SW, CommandApdu, ResponseApdu
from sam.commands.status import (
    CLA_SAM,
    SamCommandRef,
    check_key_reference,
    check_status,
    expect_length,
)

RECORD_LENGTH = 48  # event counter, ceiling and parameter records
KEY_RECORD_LENGTH = 32
DATA_OFFSET = 8  # the first 8 bytes of a record are its header
COUNTERS_PER_RECORD = 9
PARAMETERS_LENGTH = 29
KEY_BY_REFERENCE = 0xF0  # Read Key Parameters P2: key chosen by KIF/KVC
SYSTEM_KEYS = range(0xC1, 0xC5)  # C1 personalization, C2 key management, C3 reload, C4 auth.
WORK_KEY_RECORDS = range(0x01, 0x7F)
EVENT_COUNTER_RECORD = 0xE1  # + record 0..2
CEILING_RECORD = 0xB1  # + record 0..2
PARAMETERS_RECORD = 0xA0
_READ_OK = (SW.OK, SW.WARNING_NO_INFO)  # 6200: data not signed, still a success


@dataclass(frozen=True, slots=True)
class KeyParameters:
    """A key parameter record: KIF, KVC, algorithm and PAR1-PAR10 (never the key itself)."""

    kif: int
    kvc: int
    algorithm: int
    parameters: bytes


def unlock(unlock_data: bytes, *, cla: int = CLA_SAM) -> CommandApdu:
    """Unlock: CLA 20 00 00 Lc data, 8 bytes (dynamic) or 16 bytes (static)."""
    if len(unlock_data) not in (8, 16):
        raise ValueError(f"unlock data must be 8 or 16 bytes, got {len(unlock_data)}")
    return CommandApdu(cla, SamCommandRef.UNLOCK.ins, 0x00, 0x00, unlock_data)


def read_key_parameters(
    kif: int | None = None,
    kvc: int | None = None,
    *,
    record: int | None = None,
    cla: int = CLA_SAM,
) -> CommandApdu:
    """Read Key Parameters: CLA BC 00 P2 02 data; P2 F0 + KIF KVC, or a record with 0000.

    ``record`` is a work key record (01-7E) or a system key (C1-C4). Case 3, no Le, as Keyple
    encodes it (`80 BC 00 C1 02 00 00`): the 32 bytes come back with 9000, or by 61xx + Get
    Response on a T=0 SAM.
    """
    if record is None:
        if kif is None or kvc is None:
            raise ValueError("give the KIF and KVC, or a record number")
        check_key_reference(kif, kvc)
        p2, data = KEY_BY_REFERENCE, bytes((kif, kvc))
    else:
        if kif is not None or kvc is not None:
            raise ValueError("give the KIF and KVC, or a record number, not both")
        if record not in WORK_KEY_RECORDS and record not in SYSTEM_KEYS:
            raise ValueError(f"key record {record:02X} is not 01-7E nor C1-C4")
        p2, data = record, bytes(2)
    return CommandApdu(cla, SamCommandRef.READ_KEY_PARAMETERS.ins, 0x00, p2, data)


def read_event_counter(record: int = 0, *, cla: int = CLA_SAM) -> CommandApdu:
    """Read Event Counter: CLA BE 00 E1+record 00 (records 0-2, nine counters each)."""
    return _read_record(SamCommandRef.READ_EVENT_COUNTER, EVENT_COUNTER_RECORD, record, cla)


def read_ceilings(record: int = 0, *, cla: int = CLA_SAM) -> CommandApdu:
    """Read Ceilings: CLA BE 00 B1+record 00 (records 0-2, nine ceilings each)."""
    return _read_record(SamCommandRef.READ_CEILINGS, CEILING_RECORD, record, cla)


def read_parameters(*, cla: int = CLA_SAM) -> CommandApdu:
    """Read Parameters: CLA BE 00 A0 00."""
    return CommandApdu(cla, SamCommandRef.READ_PARAMETERS.ins, 0x00, PARAMETERS_RECORD, le=0)


# --- pure parsers --------------------------------------------------------------------------


def parse_unlock(response: ResponseApdu, *, accept_not_locked: bool = False) -> bool:
    """True once unlocked; 6985 (not locked) is True only with ``accept_not_locked``."""
    accept = (SW.OK, SW.CONDITIONS_NOT_SATISFIED) if accept_not_locked else (SW.OK,)
    check_status(SamCommandRef.UNLOCK, response, accept=accept)
    return True


def parse_read_key_parameters(response: ResponseApdu) -> KeyParameters:
    """KIF, KVC, ALG and PAR1-PAR10 from offset 8 of the 32-byte record (6200 is success)."""
    ref = SamCommandRef.READ_KEY_PARAMETERS
    check_status(ref, response, accept=_READ_OK)
    data = expect_length(ref, response.data, KEY_RECORD_LENGTH)
    body = data[DATA_OFFSET:]
    return KeyParameters(kif=body[0], kvc=body[1], algorithm=body[2], parameters=body[3:13])


def parse_read_event_counter(response: ResponseApdu) -> list[int]:
    """The nine 3-byte event counters of one record, from offset 8 (6200 is success)."""
    return _counters(SamCommandRef.READ_EVENT_COUNTER, response)


def parse_read_ceilings(response: ResponseApdu) -> list[int]:
    """The nine 3-byte ceilings of one record, from offset 8 (6200 is success)."""
    return _counters(SamCommandRef.READ_CEILINGS, response)


def parse_read_parameters(response: ResponseApdu) -> bytes:
    """The 29 bytes of SAM parameters at offset 8 (6200 is success)."""
    ref = SamCommandRef.READ_PARAMETERS
    check_status(ref, response, accept=_READ_OK)
    data = expect_length(ref, response.data, RECORD_LENGTH)
    return data[DATA_OFFSET : DATA_OFFSET + PARAMETERS_LENGTH]


def _read_record(ref: SamCommandRef, base: int, record: int, cla: int) -> CommandApdu:
    if not 0 <= record <= 2:
        raise ValueError(f"{ref.label} record must be 0, 1 or 2, got {record}")
    return CommandApdu(cla, ref.ins, 0x00, base + record, le=0)


def _counters(ref: SamCommandRef, response: ResponseApdu) -> list[int]:
    check_status(ref, response, accept=_READ_OK)
    data = expect_length(ref, response.data, RECORD_LENGTH)
    body = data[DATA_OFFSET : DATA_OFFSET + 3 * COUNTERS_PER_RECORD]
    return [int.from_bytes(body[i : i + 3], "big") for i in range(0, len(body), 3)]
