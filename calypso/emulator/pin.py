# SPDX-License-Identifier: Apache-2.0
"""Emulator: Get Challenge (1.15), Verify PIN (1.16), Change PIN (1.17), Change Key (1.18).

Ciphering per CSIM1 3.6 (PIN) and 3.7 (Change Key, AES key wrap).
"""

from __future__ import annotations

from calypso.constants import ProductType
from calypso.crypto import (
    cipher_pin_presentation,
    decipher_pin_modification,
    key_encryption_key,
    macs_equal,
    pin_key,
    unwrap_card_key,
)
from calypso.emulator.files import CELL_PIN, CELL_PIN_TRIES, KEY_CELLS
from calypso.emulator.state import CardCore, StatusError
from readers.apdu import SW, CommandApdu, ResponseApdu

MAX_ATTEMPTS = 3
_ATTEMPT_SW = {3: SW.OK, 2: SW.PIN_TWO_ATTEMPTS_LEFT, 1: SW.PIN_ONE_ATTEMPT_LEFT, 0: SW.PIN_BLOCKED}


def get_challenge(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Get Challenge: Le random bytes, 1 to 8; an 8-byte one serves PIN and key ciphering."""
    if command.p1 != 0 or command.p2 != 0:
        raise StatusError(SW.WRONG_P1_P2)
    if command.data or not command.le or command.le > 8:
        raise StatusError(SW.WRONG_LENGTH)
    challenge = card.rng(command.le)
    card.challenge = challenge if len(challenge) == 8 else None
    return ResponseApdu(challenge, SW.OK)


def _has_pin(card: CardCore) -> None:
    if card.profile.pin is None:
        raise StatusError(SW.INS_NOT_SUPPORTED)


def _cipher_base_key(card: CardCore) -> bytes:
    """K_B: the session key inside a session, else the profile's PIN ciphering key (3.6)."""
    pin = card.profile.pin
    if card.session is not None:
        return card.key_slot(card.session.key_index)[2]
    index = pin.cipher_key.key_index if pin is not None else 3
    return card.key_slot(index)[2]


def verify_pin(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Verify PIN: plain (Lc 4), ciphered (Lc 8) or attempts only (no data)."""
    _has_pin(card)
    if command.p1 != 0 or command.p2 != 0:
        raise StatusError(SW.WRONG_P1_P2)
    if card.invalidated:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    attempts = card.pin_attempts
    if not command.data:
        return ResponseApdu(b"", _ATTEMPT_SW[attempts])
    if len(command.data) not in (4, 8):
        raise StatusError(SW.WRONG_LENGTH)
    challenge = card.challenge
    if len(command.data) == 8 and challenge is None:
        raise StatusError(SW.SECURITY_NOT_SATISFIED)  # Get Challenge not done
    if attempts == 0:
        return ResponseApdu(b"", SW.PIN_BLOCKED)
    pin = card.nv.cells[CELL_PIN]
    if challenge is None or len(command.data) == 4:
        good = macs_equal(command.data, pin)
    else:
        k_pin = pin_key(_cipher_base_key(card), challenge)
        good = macs_equal(command.data, cipher_pin_presentation(k_pin, pin))
    # The attempt counter is written at once, never through the session buffer.
    attempts = MAX_ATTEMPTS if good else attempts - 1
    card.nv.commit({CELL_PIN_TRIES: bytes((attempts,))})
    card.pin_verified = good
    return ResponseApdu(b"", _ATTEMPT_SW[attempts])


def change_pin_or_key(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """D8: Change PIN (P2 FF) or Change Key (P2 = key index 1..3); outside a session."""
    if command.p1 != 0:
        raise StatusError(SW.WRONG_P1_P2)
    if command.p2 == 0xFF:
        return _change_pin(card, command)
    if 1 <= command.p2 <= 3:
        return _change_key(card, command)
    raise StatusError(SW.WRONG_P1_P2)


def _change_pin(card: CardCore, command: CommandApdu) -> ResponseApdu:
    _has_pin(card)
    if card.session is not None or card.invalidated:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    if len(command.data) == 4:
        if not card.pin_verified:
            raise StatusError(SW.SECURITY_NOT_SATISFIED)
        new = command.data
    elif len(command.data) == 16:
        if card.challenge is None:
            raise StatusError(SW.SECURITY_NOT_SATISFIED)
        k_pin = pin_key(_cipher_base_key(card), card.challenge)
        pins = decipher_pin_modification(k_pin, command.data)
        if pins is None:
            raise StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)  # redundancy wrong (3.6)
        current, new = pins
        if any(current) and not macs_equal(current, card.nv.cells[CELL_PIN]):
            raise StatusError(SW.INCORRECT_SIGNATURE)
    else:
        raise StatusError(SW.WRONG_LENGTH)
    card.nv.commit({CELL_PIN: new, CELL_PIN_TRIES: bytes((MAX_ATTEMPTS,))})
    return ResponseApdu(b"", SW.OK)


def _change_key(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Unwrap the AES-KW blob with KEK(K_issuer, CC8, newKIF, newKVC) (CSIM1 3.7).

    The card cannot know the new KVC before unwrapping: it keeps the slot's KIF and tries
    each KVC, the key wrap's integrity check telling the right one.
    """
    if card.product is ProductType.BASIC:
        raise StatusError(SW.INS_NOT_SUPPORTED)
    if card.session is not None or card.invalidated:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    if len(command.data) != 32:
        raise StatusError(SW.WRONG_LENGTH)
    if card.challenge is None:
        raise StatusError(SW.SECURITY_NOT_SATISFIED)
    issuer_key = card.key_slot(1)[2]
    kif = card.key_slot(command.p2)[0]
    for kvc in range(256):
        kek = key_encryption_key(issuer_key, card.challenge, kif, kvc)
        unwrapped = unwrap_card_key(kek, command.data)
        if unwrapped is not None and unwrapped[0] == kif and unwrapped[1] == kvc:
            card.nv.commit({KEY_CELLS[command.p2 - 1]: bytes((kif, kvc)) + unwrapped[2]})
            card.challenge = None
            return ResponseApdu(b"", SW.OK)
    raise StatusError(SW.INCORRECT_SIGNATURE)
