# SPDX-License-Identifier: Apache-2.0
"""Calypso card commands: one builder and one pure parser per command, with status-word tables."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import Enum

from calypso.errors import (
    AccessForbiddenError,
    CardCommandError,
    CardTerminatedError,
    DataAccessError,
    DataOutOfBoundsError,
    IllegalParameterError,
    SecurityContextError,
    SecurityDataError,
    SessionBufferOverflowError,
    UnknownStatusError,
)
from readers.apdu import SW, CommandApdu, ResponseApdu


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

    def __init__(self, label: str, ins: int) -> None:
        self.label = label
        self.ins = ins


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
    SW.RECORD_NOT_FOUND: DataAccessError,
    SW.SECURITY_NOT_SATISFIED: SecurityContextError,
    SW.CONDITIONS_NOT_SATISFIED: AccessForbiddenError,
    SW.INCORRECT_SIGNATURE: SecurityDataError,
    SW.TRANSACTION_COUNTER_EXHAUSTED: CardTerminatedError,
    SW.INCORRECT_PARAMETERS_IN_DATA: DataOutOfBoundsError,
}


def status_table(*sws: int) -> StatusTable:
    """The common mapping restricted to the status words one command documents."""
    return {sw: COMMON_STATUS[sw] for sw in sws}


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
