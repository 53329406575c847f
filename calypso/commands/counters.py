# SPDX-License-Identifier: Apache-2.0
"""Increase / Decrease (section 1.7) and their Multiple forms (section 1.8).

Rev3, Light and Basic take the case-4 form and answer the new value. Rev1/Rev2 cards get the
case-3 form first, since some postpone the result: SW 6200 and no data, the value coming with
the Close answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import MAX_COUNTER_VALUE, MAX_SFI, CardClass
from calypso.errors import CardResponseError, UnexpectedResponseLengthError
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
MAX_COUNTER_NUMBER = 83


def _counter_command(
    ref: CommandRef, sfi: int, counter: int, value: int, cla: CardClass, postponable: bool
) -> CommandApdu:
    if not 0 <= sfi <= MAX_SFI:
        raise ValueError(f"SFI out of range: {sfi}")
    if not 0 <= counter <= MAX_COUNTER_NUMBER:
        raise ValueError(f"counter number out of range: {counter}")
    if not 0 <= value <= MAX_COUNTER_VALUE:
        raise ValueError(f"counter delta out of range: {value}")
    le = None if postponable else 0
    return CommandApdu(cla, ref.ins, counter, sfi * 8, value.to_bytes(3, "big"), le=le)


def decrease(
    sfi: int, counter: int, value: int, *, cla: CardClass = CardClass.ISO, postponable: bool = False
) -> CommandApdu:
    """Decrease: CLA 30 counter# sfi*8 03 value(3) [00]; case 3 when ``postponable`` (Rev1/2)."""
    return _counter_command(CommandRef.DECREASE, sfi, counter, value, cla, postponable)


def increase(
    sfi: int, counter: int, value: int, *, cla: CardClass = CardClass.ISO, postponable: bool = False
) -> CommandApdu:
    """Increase: CLA 32 counter# sfi*8 03 value(3) [00]; case 3 when ``postponable`` (Rev1/2)."""
    return _counter_command(CommandRef.INCREASE, sfi, counter, value, cla, postponable)


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


@dataclass(frozen=True, slots=True)
class CounterResult:
    """An Increase/Decrease answer: the new value, or None when the card postponed it (6200)."""

    value: int | None

    @property
    def postponed(self) -> bool:
        """Whether the card withheld the result until Close (Rev1/Rev2, SW 6200)."""
        return self.value is None


def parse_increase_decrease(
    response: ResponseApdu, *, decreasing: bool = True, command: CommandApdu | None = None
) -> CounterResult:
    """Like parse_counter_result, but SW 6200 with no data is a postponed result (section 1.7)."""
    ref = CommandRef.DECREASE if decreasing else CommandRef.INCREASE
    check_status(ref, response, _COUNTER_STATUS, command=command, accept=(SW.OK, 0x6200))
    if response.sw == 0x6200:
        if response.data:
            raise UnexpectedResponseLengthError(ref.label, "6200 with data", response)
        return CounterResult(None)
    return CounterResult(parse_counter_result(response, decreasing=decreasing, command=command))


def _multiple(ref: CommandRef, sfi: int, deltas: Mapping[int, int], cla: CardClass) -> CommandApdu:
    if not 0 <= sfi <= MAX_SFI:
        raise ValueError(f"SFI out of range: {sfi}")
    if not deltas:
        raise ValueError("at least one counter")
    data = b""
    for counter in sorted(deltas):  # Keyple sorts by counter number (section 1.8)
        value = deltas[counter]
        if not 1 <= counter <= MAX_COUNTER_NUMBER:
            raise ValueError(f"counter number out of range: {counter}")
        if not 0 <= value <= MAX_COUNTER_VALUE:
            raise ValueError(f"counter delta out of range: {value}")
        data += bytes((counter,)) + value.to_bytes(3, "big")
    return CommandApdu(cla, ref.ins, 0x00, sfi * 8, data, le=0)


def decrease_multiple(
    sfi: int, deltas: Mapping[int, int], *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Decrease Multiple: CLA 38 00 sfi*8 4n [counter#(1) value(3)]* 00 (section 1.8)."""
    return _multiple(CommandRef.DECREASE_MULTIPLE, sfi, deltas, cla)


def increase_multiple(
    sfi: int, deltas: Mapping[int, int], *, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Increase Multiple: CLA 3A 00 sfi*8 4n [counter#(1) value(3)]* 00 (section 1.8)."""
    return _multiple(CommandRef.INCREASE_MULTIPLE, sfi, deltas, cla)


def parse_counters_multiple(
    response: ResponseApdu, *, decreasing: bool = True, command: CommandApdu | None = None
) -> dict[int, int]:
    """New values by counter number from n x [counter#][value(3)] (section 1.8)."""
    ref = CommandRef.DECREASE_MULTIPLE if decreasing else CommandRef.INCREASE_MULTIPLE
    check_status(ref, response, _COUNTER_STATUS, command=command)
    data = response.data
    if not data or len(data) % 4:
        raise UnexpectedResponseLengthError(ref.label, f"{len(data)} bytes is not n x 4", response)
    values = {data[i]: int.from_bytes(data[i + 1 : i + 4], "big") for i in range(0, len(data), 4)}
    if command is not None and sorted(values) != sorted(command.data[0::4]):
        raise CardResponseError(ref.label, "counters answered differ from those sent", response)
    return values
