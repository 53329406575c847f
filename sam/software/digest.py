# SPDX-License-Identifier: Apache-2.0
"""Software SAM session commands: Select Diversifier, Get Challenge and the Digest family.

Byte layouts: calypso-protocol.md section 3; crypto: csim1.md 3.2-3.5. Digest Init verification
mode (P1 bit0, terminal challenge in the data) is this project's extension, see docs/sam.md.
"""

from __future__ import annotations

from calypso import crypto
from readers.apdu import SW, CommandApdu
from sam.commands.digest import (
    DIGEST_INIT_EXTENDED,
    DIGEST_INIT_VERIFICATION,
    DIGEST_UPDATE_ENCRYPTED,
    parse_digest_items,
)
from sam.software.state import Phase, Refusal, SamState, case3, params


def select_diversifier(state: SamState, command: CommandApdu) -> bytes:
    """80 14 00 00 Lc diversifier(4|8) (section 3); sets SN8 (csim1.md 3.2)."""
    params(command, 0x00, 0x00)
    state.sn8 = crypto.diversifier8(case3(command, 4, 8))
    return b""


def get_challenge(state: SamState, command: CommandApdu) -> bytes:
    """80 84 00 00 Le(04|08); starts the Get Challenge -> Digest Init window (csim1.md 3.3)."""
    params(command, 0x00, 0x00)
    if command.data or command.le not in (4, 8):
        raise Refusal(SW.WRONG_LENGTH)
    challenge = state.rng(command.le)
    if len(challenge) != command.le:
        raise Refusal(SW.NO_PRECISE_DIAGNOSIS)
    state.end_session()
    state.challenge = challenge
    state.last_challenge = challenge
    state.phase = Phase.CHALLENGE
    return challenge


def digest_init(state: SamState, command: CommandApdu) -> bytes:
    """80 8A P1 FF Lc KIF KVC [TC] <OSS data-out>; P1 bit1 extended, bit0 verification mode."""
    if command.p2 != 0xFF:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    if command.p1 & ~(DIGEST_INIT_EXTENDED | DIGEST_INIT_VERIFICATION):
        raise Refusal(SW.WRONG_P1_P2)
    extended = bool(command.p1 & DIGEST_INIT_EXTENDED)
    verification = bool(command.p1 & DIGEST_INIT_VERIFICATION)
    size = 8 if extended else 4
    data = command.data
    if verification:
        # CSIM1 extension: KIF KVC TC(4|8) data-out; no Get Challenge needed (docs/sam.md).
        state.end_session()
        if len(data) < 2 + size + size or command.le is not None:
            raise Refusal(SW.WRONG_LENGTH)
        terminal_challenge, data_out = data[2 : 2 + size], data[2 + size :]
    else:
        challenge = state.challenge
        if state.phase is not Phase.CHALLENGE or challenge is None or state.sn8 is None:
            state.end_session()
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        if len(data) < 2 + size or command.le is not None:
            raise Refusal(SW.WRONG_LENGTH)
        if len(challenge) < size:
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        terminal_challenge, data_out = challenge[:size], data[2:]  # 4 of 8 fetched: the first
    kif, kvc = data[0], data[1]
    card_key = state.card_key(kif, kvc)
    state.session = crypto.SessionMac.start(
        card_key,
        extended=extended,
        kif=kif,
        kvc=kvc,
        open_data_out=data_out,
        terminal_challenge=terminal_challenge,
    )
    state.challenge = None  # one challenge, one session
    state.verification = verification
    state.phase = Phase.DIGEST
    if not verification:
        state.session_count += 1
    return b""


def digest_update(state: SamState, command: CommandApdu) -> bytes:
    """80 8C 00 00|80 Lc item, or 80 8C 80 00 Lc [len item]... (Digest Update Multiple)."""
    if command.p1 == 0x80:
        return _digest_update_multiple(state, command)
    if command.p1 != 0x00 or command.p2 not in (0x00, DIGEST_UPDATE_ENCRYPTED):
        raise Refusal(SW.WRONG_P1_P2)
    session = state.digesting()
    item = case3(command, *range(1, 256))
    if command.p2 == 0x00:
        session.add(item)
        return b""
    if not session.extended:
        raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
    return _digest_encrypted(state, session, item)


def _digest_encrypted(state: SamState, session: crypto.SessionMac, item: bytes) -> bytes:
    # Item n (OSS data-out = 0): odd = command, data field ciphered; even = response, all but
    # SW ciphered; X holds plaintext (csim1.md 3.5). A command comes in plain and goes back
    # ciphered, except in verification mode where the journaled (ciphered) command comes in and
    # goes back plain. A response always comes in ciphered and goes back plain.
    index = session.items
    if index % 2 == 0:
        if len(item) < 2:
            raise Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
        plain = crypto.ctr_transform(session.sk_enc, index, item[:-2]) + item[-2:]
        session.add(plain)
        return plain
    if len(item) < 5:
        raise Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
    if len(item) == 5:  # case 1/2: nothing to cipher
        session.add(item)
        return item
    end = 5 + item[4]
    if end > len(item):
        raise Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
    transformed = item[:5] + crypto.ctr_transform(session.sk_enc, index, item[5:end]) + item[end:]
    session.add(transformed if state.verification else item)
    return transformed


def _digest_update_multiple(state: SamState, command: CommandApdu) -> bytes:
    # 80 8C 80 00 Lc [len item]... (section 3; csim1.md 3.1 frame()).
    if command.p2 != 0x00:
        raise Refusal(SW.WRONG_P1_P2)
    session = state.digesting()
    try:
        items = parse_digest_items(case3(command, *range(1, 256)))
    except ValueError:
        raise Refusal(SW.INCORRECT_PARAMETERS_IN_DATA) from None
    for item in items:
        session.add(item)
    return b""


def digest_close(state: SamState, command: CommandApdu) -> bytes:
    """80 8E 00 00 Le(04 regular | 08 extended) -> terminal half M[0:Le] (csim1.md 3.4)."""
    params(command, 0x00, 0x00)
    session = state.digesting()
    if command.data or command.le != session.half:
        raise Refusal(SW.WRONG_LENGTH)
    state.phase = Phase.CLOSED
    return session.terminal_mac()


def digest_internal_authenticate(state: SamState, command: CommandApdu) -> bytes:
    """80 88 80 00 08 -> terminal half of M(purpose 02, seq) for Manage Secure Session (3.4)."""
    if (command.p1, command.p2) != (0x80, 0x00):
        raise Refusal(SW.WRONG_P1_P2)
    session = state.digesting()
    if command.data or command.le != 8:
        raise Refusal(SW.WRONG_LENGTH)
    if not session.extended:
        raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
    state.phase = Phase.AUTHENTICATING
    return session.terminal_mac(crypto.PURPOSE_MUTUAL_AUTH, session.auth_sequence)


def digest_authenticate(state: SamState, command: CommandApdu) -> bytes:
    """80 82 00 00 Lc card-half; 6988 if wrong (csim1.md 3.4).

    After Digest Close the session ends either way; after Digest Internal Authenticate a right
    card half lets the session go on (next mutual authentication: seq + 1), a wrong one ends it.
    """
    params(command, 0x00, 0x00)
    session = state.session
    if state.phase not in (Phase.CLOSED, Phase.AUTHENTICATING) or session is None:
        raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
    if len(command.data) != session.half or command.le is not None:
        raise Refusal(SW.WRONG_LENGTH)
    if state.phase is Phase.AUTHENTICATING:
        expected = session.card_mac(crypto.PURPOSE_MUTUAL_AUTH, session.auth_sequence)
        if crypto.macs_equal(command.data, expected):
            session.auth_sequence += 1
            state.phase = Phase.DIGEST
            return b""
    else:
        expected = session.card_mac()
    state.end_session()
    if not crypto.macs_equal(command.data, expected):
        raise Refusal(SW.INCORRECT_SIGNATURE)
    return b""
