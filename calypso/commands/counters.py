# SPDX-License-Identifier: Apache-2.0
"""Increase and Decrease of a counter, Rev3 case-4 form (calypso-protocol section 1.7)."""

from __future__ import annotations

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import MAX_COUNTER_VALUE, MAX_SFI, CardClass
from calypso.errors import UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

_COUNTER_STATUS = status_table(
    SW.SESSION_BUFFER_OVERFLOW,
    SW.WRONG_LENGTH,
    SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.NO_CURRENT_EF,
    SW.INCORRECT_PARAMETERS_IN_DATA,
    SW.FILE_NOT_FOUND,
    SW.WRONG_P1_P2,
)


def _counter_command(
    ref: CommandRef, sfi: int, counter: int, value: int, cla: CardClass
) -> CommandApdu:
    if not 0 <= sfi <= MAX_SFI:
        raise ValueError(f"SFI out of range: {sfi}")
    if not 0 <= counter <= 83:
        raise ValueError(f"counter number out of range: {counter}")
    if not 0 <= value <= MAX_COUNTER_VALUE:
        raise ValueError(f"counter delta out of range: {value}")
    return CommandApdu(cla, ref.ins, counter, sfi * 8, value.to_bytes(3, "big"), le=0)


def decrease(sfi: int, counter: int, value: int, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Decrease: CLA 30 counter# sfi*8 03 value(3) 00 (case 4, Rev3)."""
    return _counter_command(CommandRef.DECREASE, sfi, counter, value, cla)


def increase(sfi: int, counter: int, value: int, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Increase: CLA 32 counter# sfi*8 03 value(3) 00 (case 4, Rev3)."""
    return _counter_command(CommandRef.INCREASE, sfi, counter, value, cla)


def parse_counter_result(
    response: ResponseApdu, *, decreasing: bool = True, command: CommandApdu | None = None
) -> int:
    """The counter's new value (3 bytes, big endian) from an Increase or Decrease answer."""
    ref = CommandRef.DECREASE if decreasing else CommandRef.INCREASE
    check_status(ref, response, _COUNTER_STATUS, command=command)
    if len(response.data) != 3:
        raise UnexpectedResponseLengthError(
            ref.label, f"expected 3 bytes, got {len(response.data)}", response
        )
    return int.from_bytes(response.data, "big")
