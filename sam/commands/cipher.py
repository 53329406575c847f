# SPDX-License-Identifier: Apache-2.0
"""Card-key ciphering commands: Give Random, Card Cipher PIN, Card Generate Key.

Byte layouts: calypso-protocol.md section 3 (table) and 2.10; csim1.md 2.2 and 3.6-3.7.
"""

from __future__ import annotations

from readers.apdu import CommandApdu, ResponseApdu
from sam.commands.status import (
    CLA_SAM,
    SamCommandRef,
    check_key_reference,
    check_status,
    expect_length,
)

CARD_CHALLENGE_LENGTH = 8
PIN_LENGTH = 4
CIPHER_PIN_VERIFY = 0x80  # Card Cipher PIN P1: presentation (Verify PIN)
CIPHER_PIN_CHANGE = 0x40  # Card Cipher PIN P1: modification (Change PIN)
GENERATE_KEY_CIPHERED = 0xFF  # Card Generate Key P2: ciphering key given in the data
GENERATE_KEY_NULL = 0x00  # Card Generate Key P2: null ciphering key (blank card)
KEY_ALGORITHM = 0x90  # last data byte Keyple sends to Card Generate Key
CIPHERED_KEY_LENGTH = 32


def give_random(card_challenge: bytes, *, cla: int = CLA_SAM) -> CommandApdu:
    """Give Random: CLA 86 00 00 08 <8-byte card challenge from card Get Challenge>."""
    if len(card_challenge) != CARD_CHALLENGE_LENGTH:
        raise ValueError(f"card challenge must be 8 bytes, got {len(card_challenge)}")
    return CommandApdu(cla, SamCommandRef.GIVE_RANDOM.ins, 0x00, 0x00, card_challenge)


def card_cipher_pin(
    kif: int, kvc: int, pin: bytes, new_pin: bytes | None = None, *, cla: int = CLA_SAM
) -> CommandApdu:
    """Card Cipher PIN: CLA 12 80 FF 06 KIF KVC PIN (verify) or 12 40 FF 0A KIF KVC CUR NEW.

    Keyple passes 00000000 as the current PIN of a modification (csim1.md 2.2).
    """
    check_key_reference(kif, kvc)
    for value in (pin, new_pin):
        if value is not None and len(value) != PIN_LENGTH:
            raise ValueError(f"a PIN is {PIN_LENGTH} bytes, got {len(value)}")
    p1 = CIPHER_PIN_VERIFY if new_pin is None else CIPHER_PIN_CHANGE
    data = bytes((kif, kvc)) + pin + (new_pin or b"")
    return CommandApdu(cla, SamCommandRef.CARD_CIPHER_PIN.ins, p1, 0xFF, data)


def card_generate_key(
    source_kif: int,
    source_kvc: int,
    cipher_kif: int | None = None,
    cipher_kvc: int | None = None,
    *,
    cla: int = CLA_SAM,
) -> CommandApdu:
    """Card Generate Key: CLA 12 FF FF 05 cKIF cKVC sKIF sKVC 90, or null key 12 FF 00 03 ..."""
    check_key_reference(source_kif, source_kvc)
    source = bytes((source_kif, source_kvc, KEY_ALGORITHM))
    if cipher_kif is None and cipher_kvc is None:
        return CommandApdu(
            cla, SamCommandRef.CARD_GENERATE_KEY.ins, 0xFF, GENERATE_KEY_NULL, source
        )
    if cipher_kif is None or cipher_kvc is None:
        raise ValueError("give both the ciphering KIF and KVC, or neither (null key)")
    check_key_reference(cipher_kif, cipher_kvc)
    data = bytes((cipher_kif, cipher_kvc)) + source
    return CommandApdu(cla, SamCommandRef.CARD_GENERATE_KEY.ins, 0xFF, GENERATE_KEY_CIPHERED, data)


# --- pure parsers --------------------------------------------------------------------------


def parse_give_random(response: ResponseApdu) -> None:
    """Check the Give Random answer (no data)."""
    check_status(SamCommandRef.GIVE_RANDOM, response)


def parse_card_cipher_pin(response: ResponseApdu, *, change: bool = False) -> bytes:
    """Return the ciphered PIN block: 8 bytes for Verify PIN, 16 for Change PIN."""
    check_status(SamCommandRef.CARD_CIPHER_PIN, response)
    return expect_length(SamCommandRef.CARD_CIPHER_PIN, response.data, 16 if change else 8)


def parse_card_generate_key(response: ResponseApdu) -> bytes:
    """Return the 32-byte ciphered key for the card's Change Key."""
    check_status(SamCommandRef.CARD_GENERATE_KEY, response)
    return expect_length(SamCommandRef.CARD_GENERATE_KEY, response.data, CIPHERED_KEY_LENGTH)
