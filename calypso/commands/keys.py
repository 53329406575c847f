# SPDX-License-Identifier: Apache-2.0
"""Get Challenge (84, section 1.15) and Change Key (D8 P2=key index, section 1.18)."""

from __future__ import annotations

from calypso.commands import CommandRef, check_status, status_table
from calypso.commands.pin import CHANGE_STATUS
from calypso.constants import CardClass
from calypso.errors import UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

_CHALLENGE_STATUS = status_table(SW.WRONG_LENGTH, SW.WRONG_P1_P2)


def get_challenge(*, size: int = 8, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Get Challenge: CLA 84 00 00 08 (before ciphered PIN, Change PIN, Change Key)."""
    if not 1 <= size <= 8:
        raise ValueError("a card challenge is 1 to 8 bytes")
    return CommandApdu(cla, CommandRef.GET_CHALLENGE.ins, 0x00, 0x00, le=size)


def parse_get_challenge(
    response: ResponseApdu, command: CommandApdu | None = None, *, size: int = 8
) -> bytes:
    """The card challenge, checked against the length asked for."""
    ref = CommandRef.GET_CHALLENGE
    check_status(ref, response, _CHALLENGE_STATUS, command=command)
    if len(response.data) != size:
        raise UnexpectedResponseLengthError(
            ref.label, f"expected {size} bytes, got {len(response.data)}", response
        )
    return response.data


def change_key(key_index: int, blob: bytes, *, cla: CardClass = CardClass.ISO) -> CommandApdu:
    """Change Key: CLA D8 00 keyIndex(1..3) 20 blob(32) from SAM Card Generate Key."""
    if not 1 <= key_index <= 3:
        raise ValueError("key index is 1 (issuer), 2 (load) or 3 (debit)")
    if len(blob) != 32:
        raise ValueError("the ciphered key is 32 bytes")
    return CommandApdu(cla, CommandRef.CHANGE_KEY.ins, 0x00, key_index, blob)


def parse_change_key(response: ResponseApdu, command: CommandApdu | None = None) -> None:
    """Check the Change Key status (same table as Change PIN)."""
    check_status(CommandRef.CHANGE_KEY, response, CHANGE_STATUS, command=command)
