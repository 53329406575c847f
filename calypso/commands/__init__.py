# SPDX-License-Identifier: Apache-2.0
"""Calypso card commands: one builder and one pure parser per command, with status-word tables."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import Enum, IntEnum

from calypso.constants import CardClass, ProductType
from calypso.errors import (
    AccessForbiddenError,
    CardCommandError,
    CardTerminatedError,
    DataAccessError,
    DataOutOfBoundsError,
    FunctionAbsentError,
    IllegalParameterError,
    PinError,
    RecordNotFoundError,
    SecurityContextError,
    SecurityDataError,
    SessionBufferOverflowError,
    UnknownStatusError,
)
from readers.apdu import SW, CommandApdu, ResponseApdu


class CardIns(IntEnum):
    """Card instruction bytes (calypso-protocol section 0); one INS may serve several commands."""

    INVALIDATE = 0x04
    VERIFY_PIN = 0x20
    DECREASE = 0x30
    INCREASE = 0x32
    DECREASE_MULTIPLE = 0x38
    INCREASE_MULTIPLE = 0x3A
    REHABILITATE = 0x44
    SV_GET = 0x7C
    MANAGE_SECURE_SESSION = 0x82
    GET_CHALLENGE = 0x84
    OPEN_SECURE_SESSION = 0x8A
    CLOSE_SECURE_SESSION = 0x8E  # and Abort Secure Session
    SEARCH_RECORD_MULTIPLE = 0xA2
    SELECT = 0xA4  # Select Application and Select File
    WRITE_BINARY = 0xD0
    READ_BINARY = 0xB0
    READ_RECORDS = 0xB2  # and Ratification
    READ_RECORD_MULTIPLE = 0xB3
    SV_RELOAD = 0xB8
    SV_DEBIT = 0xBA
    SV_UNDEBIT = 0xBC
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA
    WRITE_RECORD = 0xD2
    UPDATE_BINARY = 0xD6
    CHANGE_KEY = 0xD8  # and Change PIN
    UPDATE_RECORD = 0xDC
    APPEND_RECORD = 0xE2


class CommandRef(Enum):
    """Card commands by name and instruction byte (calypso-protocol section 0)."""

    SELECT_APPLICATION = ("Select Application", 0xA4)
    READ_RECORDS = ("Read Records", 0xB2)
    UPDATE_RECORD = ("Update Record", 0xDC)
    APPEND_RECORD = ("Append Record", 0xE2)
    INCREASE = ("Increase", 0x32)
    DECREASE = ("Decrease", 0x30)
    OPEN_SECURE_SESSION = ("Open Secure Session", 0x8A)
    CLOSE_SECURE_SESSION = ("Close Secure Session", 0x8E)
    ABORT_SECURE_SESSION = ("Abort Secure Session", 0x8E)
    RATIFICATION = ("Ratification", 0xB2)
    SELECT_FILE = ("Select File", 0xA4)
    GET_DATA = ("Get Data", 0xCA)
    WRITE_RECORD = ("Write Record", 0xD2)
    READ_RECORD_MULTIPLE = ("Read Record Multiple", 0xB3)
    SEARCH_RECORD_MULTIPLE = ("Search Record Multiple", 0xA2)
    READ_BINARY = ("Read Binary", 0xB0)
    UPDATE_BINARY = ("Update Binary", 0xD6)
    WRITE_BINARY = ("Write Binary", 0xD0)
    INCREASE_MULTIPLE = ("Increase Multiple", 0x3A)
    DECREASE_MULTIPLE = ("Decrease Multiple", 0x38)
    INVALIDATE = ("Invalidate", 0x04)
    REHABILITATE = ("Rehabilitate", 0x44)
    GET_CHALLENGE = ("Get Challenge", 0x84)
    VERIFY_PIN = ("Verify PIN", 0x20)
    CHANGE_PIN = ("Change PIN", 0xD8)
    CHANGE_KEY = ("Change Key", 0xD8)
    SV_GET = ("SV Get", 0x7C)
    SV_RELOAD = ("SV Reload", 0xB8)
    SV_DEBIT = ("SV Debit", 0xBA)
    SV_UNDEBIT = ("SV Undebit", 0xBC)
    MANAGE_SECURE_SESSION = ("Manage Secure Session", 0x82)

    def __init__(self, label: str, ins: int) -> None:
        self.label = label
        self.ins = ins


_UNAMBIGUOUS = {ref.ins: ref for ref in CommandRef} | {
    CardIns.SELECT: CommandRef.SELECT_FILE,
    CardIns.READ_RECORDS: CommandRef.READ_RECORDS,
    CardIns.CLOSE_SECURE_SESSION: CommandRef.CLOSE_SECURE_SESSION,
    CardIns.CHANGE_KEY: CommandRef.CHANGE_KEY,
}


def command_ref(apdu: bytes) -> CommandRef | None:
    """The card command of a raw command APDU, from CLA/INS/P1/P2 and its length; None if unknown.

    INS A4 with P1 04 is Select Application (else Select File); B2 with record 0 is Ratification;
    8E without data is Abort Secure Session; D8 with P2 FF is Change PIN (else Change Key).
    """
    if len(apdu) < 4:
        return None
    ins, p1, p2 = apdu[1], apdu[2], apdu[3]
    if ins == CardIns.SELECT and p1 == 0x04:
        return CommandRef.SELECT_APPLICATION
    if ins == CardIns.READ_RECORDS and p1 == 0x00:
        return CommandRef.RATIFICATION
    if ins == CardIns.CLOSE_SECURE_SESSION and len(apdu) <= 5:
        return CommandRef.ABORT_SECURE_SESSION
    if ins == CardIns.CHANGE_KEY and p2 == 0xFF:
        return CommandRef.CHANGE_PIN
    return _UNAMBIGUOUS.get(ins)


def command_name(apdu: bytes) -> str:
    """The name of a raw command APDU's card command ("Close Secure Session"), or "INS xx"."""
    ref = command_ref(apdu)
    if ref is not None:
        return ref.label
    if len(apdu) < 2:
        return f"APDU {apdu.hex().upper()}"
    return f"INS {apdu[1]:02X}"


StatusTable = Mapping[int, type[CardCommandError]]

# The common mapping of Keyple's Command base (calypso-protocol section 0); per-command tables
# below narrow it to the status words each command can return.
COMMON_STATUS: StatusTable = {
    SW.SESSION_BUFFER_OVERFLOW: SessionBufferOverflowError,
    SW.WRONG_LENGTH: IllegalParameterError,
    SW.WRONG_P1_P2: IllegalParameterError,
    SW.FUNCTION_NOT_SUPPORTED: IllegalParameterError,
    SW.INCORRECT_P1_P2_6A86: IllegalParameterError,
    SW.LC_INCONSISTENT_WITH_P1_P2: IllegalParameterError,
    SW.COMMAND_INCOMPATIBLE_WITH_FILE: DataAccessError,
    SW.NO_CURRENT_EF: DataAccessError,
    SW.FILE_NOT_FOUND: DataAccessError,
    SW.RECORD_NOT_FOUND: RecordNotFoundError,
    SW.SECURITY_NOT_SATISFIED: SecurityContextError,
    SW.CONDITIONS_NOT_SATISFIED: AccessForbiddenError,
    SW.INCORRECT_SIGNATURE: SecurityDataError,
    SW.TRANSACTION_COUNTER_EXHAUSTED: CardTerminatedError,
    SW.INCORRECT_PARAMETERS_IN_DATA: DataOutOfBoundsError,
    SW.PIN_TWO_ATTEMPTS_LEFT: PinError,
    SW.PIN_ONE_ATTEMPT_LEFT: PinError,
    SW.PIN_BLOCKED: PinError,
    SW.INS_NOT_SUPPORTED: FunctionAbsentError,
    0x6A88: DataAccessError,  # Get Data: data object not found (section 1.11)
}


def status_table(*sws: int) -> StatusTable:
    """The common mapping restricted to the status words one command documents."""
    return {sw: COMMON_STATUS[sw] for sw in sws}


def card_class(product: ProductType) -> CardClass:
    """CLA of a product type: 94h for Rev1/Rev2, 00h otherwise (calypso-protocol section 0)."""
    if product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
        return CardClass.LEGACY
    return CardClass.ISO


def sv_card_class(product: ProductType) -> CardClass:
    """CLA of the stored-value commands: FAh on Rev1/Rev2, 00h otherwise (section 0)."""
    if product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
        return CardClass.LEGACY_SV
    return CardClass.ISO


def check_status(
    ref: CommandRef,
    response: ResponseApdu,
    table: StatusTable,
    *,
    command: CommandApdu | None = None,
    accept: Collection[int] = (SW.OK,),
) -> None:
    """Raise the typed error the command's table gives for a refused status word."""
    if response.sw in accept:
        return
    error = table.get(response.sw, UnknownStatusError)
    raise error(ref.label, response, command)


# Status words of the file commands (Read Records/Binary, Update/Write/Append Record/Binary),
# calypso-protocol sections 1.4-1.6 and 1.12: one table each, shared by their modules.
FILE_READ_STATUS = status_table(
    SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.NO_CURRENT_EF,
    SW.FILE_NOT_FOUND,
    SW.RECORD_NOT_FOUND,
    SW.WRONG_P1_P2,
)
FILE_WRITE_STATUS = status_table(
    SW.SESSION_BUFFER_OVERFLOW,
    SW.WRONG_LENGTH,
    SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.NO_CURRENT_EF,
    SW.FILE_NOT_FOUND,
    SW.RECORD_NOT_FOUND,
    SW.WRONG_P1_P2,
)
