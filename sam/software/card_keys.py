# SPDX-License-Identifier: Apache-2.0
"""Software SAM card-key commands: Give Random, Card Cipher PIN, Card Generate Key, SV Prepare
Load / Debit / Undebit and SV Check.

Byte layouts: calypso-protocol.md section 3 and 1.19-1.20; crypto: csim1.md 3.6-3.8. The
null-key Card Generate Key variant uses an all-zero issuer key (docs/sam.md).
"""

from __future__ import annotations

from calypso import crypto
from readers.apdu import SW, CommandApdu
from sam.base import SvOperation
from sam.commands.cipher import (
    CIPHER_PIN_CHANGE,
    CIPHER_PIN_VERIFY,
    GENERATE_KEY_CIPHERED,
    GENERATE_KEY_NULL,
    KEY_ALGORITHM,
)
from sam.commands.sv import SV_GET_EXTENDED, partial_command_length, sv_operation_of
from sam.keys import KeyRole
from sam.software.state import Refusal, SamState, SvTransaction, case3, params

# SV Get response data lengths (calypso-protocol.md 1.19): compat reload 33, compat debit 30,
# extended 61; and where the current SV KVC sits (compat [0], extended [8]).
_SV_GET_EXTENDED_LENGTH = 61
_SV_KVC_OFFSET = {False: 0, True: 8}
# KIF a SAM uses by default for SV keys (csim1.md 4: load 27h, debit 30h).
_SV_DEFAULT_KIF = {KeyRole.LOAD: 0x27, KeyRole.DEBIT: 0x30}


def give_random(state: SamState, command: CommandApdu) -> bytes:
    """80 86 00 00 08 CC8: the card challenge for the next PIN or key ciphering."""
    params(command, 0x00, 0x00)
    state.card_challenge = case3(command, 8)
    return b""


def card_cipher_pin(state: SamState, command: CommandApdu) -> bytes:
    """80 12 80 FF 06 KIF KVC PIN -> 8 bytes; 80 12 40 FF 0A KIF KVC CUR NEW -> 16 (3.6)."""
    if command.p2 != 0xFF:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    if command.p1 == CIPHER_PIN_VERIFY:
        data = case3(command, 6)
    elif command.p1 == CIPHER_PIN_CHANGE:
        data = case3(command, 10)
    else:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    card_challenge = state.take_card_challenge()  # one Give Random, one use, even on failure
    k_pin = crypto.pin_key(state.card_key(data[0], data[1]), card_challenge)
    if command.p1 == CIPHER_PIN_VERIFY:
        return crypto.cipher_pin_presentation(k_pin, data[2:6])
    return crypto.cipher_pin_modification(k_pin, data[2:6], data[6:10])


def card_generate_key(state: SamState, command: CommandApdu) -> bytes:
    """80 12 FF FF 05 cKIF cKVC sKIF sKVC 90 (or P2 00, null key: sKIF sKVC 90) -> 32 (3.7)."""
    if command.p1 != 0xFF:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    if command.p2 == GENERATE_KEY_CIPHERED:
        data = case3(command, 5)
        source = data[2:]
    elif command.p2 == GENERATE_KEY_NULL:
        data = case3(command, 3)
        source = data
    else:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    card_challenge = state.take_card_challenge()  # one Give Random, one use, even on failure
    if source[2] != KEY_ALGORITHM:
        raise Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
    if command.p2 == GENERATE_KEY_CIPHERED:
        issuer_key = state.card_key(data[0], data[1])
    else:
        issuer_key = crypto.NULL_KEY
    new_kif, new_kvc = source[0], source[1]
    new_key = state.card_key(new_kif, new_kvc)
    kek = crypto.key_encryption_key(issuer_key, card_challenge, new_kif, new_kvc)
    return crypto.wrap_card_key(kek, new_kif, new_kvc, new_key)


def sv_prepare(state: SamState, command: CommandApdu) -> bytes:
    """80 56|54|5C 01 FF Lc SVGet-header(4) SVGet-response+SW partial(15|12) (csim1.md 3.8).

    Answers SAM challenge(3) || SAM transaction number(3) || signatureHi(5|10) and keeps the
    expected signatureLo for SV Check.
    """
    operation = sv_operation_of(command.ins)
    if operation is None:  # pragma: no cover - dispatch only routes the three INS here
        raise Refusal(SW.INS_NOT_SUPPORTED)
    params(command, 0x01, 0xFF)
    data = case3(command, *range(1, 256))
    partial_length = partial_command_length(operation)
    header, partial = data[:4], data[len(data) - partial_length :]
    response = data[4 : len(data) - partial_length]
    extended = len(header) == 4 and header[1] == SV_GET_EXTENDED
    role = KeyRole.LOAD if operation is SvOperation.RELOAD else KeyRole.DEBIT
    expected = _SV_GET_EXTENDED_LENGTH if extended else _compat_length(operation)
    if (
        len(data) < 4 + partial_length
        or header[0] != 0x7C
        or partial[0] != operation.value
        or len(response) != expected + 2
        or response[-2:] != SW.OK.to_bytes(2, "big")
    ):
        raise Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
    kvc = response[_SV_KVC_OFFSET[extended]]
    work_key = state.keys.lookup_role(role, kvc)
    kif = work_key.kif if work_key is not None else _SV_DEFAULT_KIF[role]
    k_sv = crypto.sv_key(state.card_key(kif, kvc), extended=extended, kif=kif, kvc=kvc)
    challenge = state.rng(3)
    if len(challenge) != 3 or state.sv_transaction_number > 0xFFFFFF:
        raise Refusal(SW.TRANSACTION_COUNTER_EXHAUSTED)
    number = state.sv_transaction_number.to_bytes(3, "big")
    # B = INS || P1 P2 data[0] (the SAM challenge) || fixed fields || SAM serial || SAM TNum.
    sv_command = partial[:1] + challenge + partial[5:] + state.serial + number
    hi, lo = crypto.sv_mac(k_sv, header + response, sv_command, extended=extended)
    state.sv_transaction_number += 1
    state.sv = SvTransaction(lo)
    return challenge + number + hi


def sv_check(state: SamState, command: CommandApdu) -> bytes:
    """80 58 00 00 Lc signatureLo(3|6): 9000 or 6988; Lc 00 aborts the SV transaction."""
    params(command, 0x00, 0x00)
    transaction, state.sv = state.sv, None
    if transaction is None:
        raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
    if not command.data:
        return b""  # abort
    if len(command.data) != len(transaction.expected_lo):
        raise Refusal(SW.WRONG_LENGTH)
    if not crypto.macs_equal(command.data, transaction.expected_lo):
        raise Refusal(SW.INCORRECT_SIGNATURE)
    return b""


def _compat_length(operation: SvOperation) -> int:
    return 33 if operation is SvOperation.RELOAD else 30
