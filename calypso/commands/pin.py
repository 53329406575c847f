# SPDX-License-Identifier: Apache-2.0
"""Verify PIN (20, section 1.16) and Change PIN (D8 P2=FF, section 1.17)."""

from __future__ import annotations

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import CardClass
from readers.apdu import SW, CommandApdu, ResponseApdu

PIN_LENGTH = 4
MAX_PIN_ATTEMPTS = 3
_VERIFY_STATUS = status_table(
    SW.WRONG_LENGTH,
    SW.TRANSACTION_COUNTER_EXHAUSTED,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.INS_NOT_SUPPORTED,
    SW.PIN_TWO_ATTEMPTS_LEFT,
    SW.PIN_ONE_ATTEMPT_LEFT,
    SW.PIN_BLOCKED,
)
CHANGE_STATUS = status_table(
    SW.WRONG_LENGTH,
    SW.TRANSACTION_COUNTER_EXHAUSTED,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.INCORRECT_SIGNATURE,
    SW.INCORRECT_PARAMETERS_IN_DATA,
    SW.LC_INCONSISTENT_WITH_P1_P2,
    SW.WRONG_P1_P2,
    SW.INS_NOT_SUPPORTED,
)
_ATTEMPTS = {SW.OK: 3, SW.PIN_TWO_ATTEMPTS_LEFT: 2, SW.PIN_ONE_ATTEMPT_LEFT: 1, SW.PIN_BLOCKED: 0}


def verify_pin(pin: bytes, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Verify PIN in plain: CLA 20 00 00 04 PIN(4)."""
    if len(pin) != PIN_LENGTH:
        raise ValueError("a PIN is exactly 4 bytes")
    return CommandApdu(cla, CommandRef.VERIFY_PIN.ins, 0x00, 0x00, pin)


def verify_pin_ciphered(block: bytes, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Verify PIN ciphered: CLA 20 00 00 08 block(8) from SAM Card Cipher PIN."""
    if len(block) != 8:
        raise ValueError("a ciphered PIN block is 8 bytes")
    return CommandApdu(cla, CommandRef.VERIFY_PIN.ins, 0x00, 0x00, block)


def check_pin_status(*, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Attempts only: CLA 20 00 00 00 (case 1)."""
    return CommandApdu(cla, CommandRef.VERIFY_PIN.ins, 0x00, 0x00)


def pin_attempts_remaining(response: ResponseApdu) -> int | None:
    """Attempts left from a Verify PIN status: 9000 3, 63C2 2, 63C1 1, 6983 0; else None."""
    return _ATTEMPTS.get(SW(response.sw)) if response.sw in _ATTEMPTS else None


def parse_verify_pin(
    response: ResponseApdu, command: CommandApdu | None = None, *, status_only: bool = False
) -> int:
    """Attempts remaining (3 on success).

    Raises:
        PinError: 63C2/63C1/6983 on a presentation (``attempts_remaining`` tells how many);
            with ``status_only`` these are returned as counts instead.
    """
    accept: tuple[int, ...] = tuple(_ATTEMPTS) if status_only else (SW.OK,)
    check_status(CommandRef.VERIFY_PIN, response, _VERIFY_STATUS, command=command, accept=accept)
    return _ATTEMPTS[SW(response.sw)]


def change_pin(new_pin: bytes, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Change PIN in plain (after a Verify PIN): CLA D8 00 FF 04 new PIN."""
    if len(new_pin) != PIN_LENGTH:
        raise ValueError("a PIN is exactly 4 bytes")
    return CommandApdu(cla, CommandRef.CHANGE_PIN.ins, 0x00, 0xFF, new_pin)


def change_pin_ciphered(block: bytes, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Change PIN ciphered: CLA D8 00 FF 10 block(16) from SAM Card Cipher PIN."""
    if len(block) != 16:
        raise ValueError("a ciphered PIN change block is 16 bytes")
    return CommandApdu(cla, CommandRef.CHANGE_PIN.ins, 0x00, 0xFF, block)


def parse_change_pin(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Change PIN status."""
    check_status(CommandRef.CHANGE_PIN, response, CHANGE_STATUS, command=command)
