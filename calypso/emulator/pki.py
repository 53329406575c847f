# SPDX-License-Identifier: Apache-2.0
"""Emulator: PKI mode (reference/calypso-pki.md), for a card whose profile has a ``pki`` section.

- Get Data DF4C/DF4D (card certificate) and DF4A/DF4B (CA certificate), outside a session: the
  first part is the header ``DF 4C 82 01 3C`` (``DF 4A 82 01 80``) and as many certificate bytes
  as the card's payload allows after it, the second part the rest (Keyple's Put Data splits the
  same way); inside a session, 6985 (calypso-protocol 1.11: Get Data is forbidden there).
- Open Secure Session with P2 low bits 3: ``00 8A rec*8 sfi*8+3 09 00 challenge(8) 00``. The
  transaction counter is decremented and persisted first, as in symmetric mode. The answer,
  this emulator's layout where Keyple's parser skips bytes (docs/pki.md)::

      Li AID(Li) SN(8) 00 CTR(3) RND(5) flags 00 00 Ld record

  flags b0 = 1: the previous session was not ratified. The session has the access rights of
  the profile's ``session_key`` slot (debit by default).
- The signed stream starts with 10h, the Open command (Le dropped) and its answer (SW kept);
  the dispatcher adds each command and answer of the session (``CardEmulator._process``).
- Close ``CLA 8E P1 00 00`` (P1 00h: not ratified until the next command; 80h: ratified at once)
  answers the ECDSA P-256 signature r || s (deterministic, RFC 6979) over the stream and commits
  the session's writes atomically (``nv``): power lost before the commit point leaves the card
  as before the session, after it as after Close, exactly as in symmetric mode.
- Stored value is refused in a PKI session (6985), as is Manage Secure Session.
"""

from __future__ import annotations

from calypso.commands.files import GetDataTag
from calypso.emulator.files import CELL_RATIFIED, CELL_TC, record_cell
from calypso.emulator.state import CardCore, Session, StatusError
from calypso.pki.session import SignedStream, card_private_key, sign_session
from readers.apdu import SW, CommandApdu, ResponseApdu

PKI_MODE = 0x03  # Open Secure Session P2 low bits
CERTIFICATE_TAGS = {
    GetDataTag.CARD_CERTIFICATE: ("card_certificate", False),
    GetDataTag.CARD_CERTIFICATE_NEXT: ("card_certificate", True),
    GetDataTag.CA_CERTIFICATE: ("ca_certificate", False),
    GetDataTag.CA_CERTIFICATE_NEXT: ("ca_certificate", True),
}
HEADER_SIZE = 5


def get_certificate(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Get Data of one part of the card or CA certificate (6A88 on a card without PKI)."""
    pki = card.profile.pki
    tag = command.p1 << 8 | command.p2
    if pki is None:
        raise StatusError(0x6A88)
    if card.session is not None:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    name, second = CERTIFICATE_TAGS[GetDataTag(tag)]
    certificate: bytes = getattr(pki, name)
    first_size = card.payload_capacity - HEADER_SIZE
    if second:
        return ResponseApdu(certificate[first_size:], SW.OK)
    first_tag = tag & ~1
    header = first_tag.to_bytes(2, "big") + b"\x82" + len(certificate).to_bytes(2, "big")
    return ResponseApdu(header + certificate[:first_size], SW.OK)


def open_pki_session(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Open Secure Session in PKI mode: decrement the counter, answer, start the signed stream."""
    pki = card.profile.pki
    if pki is None:
        raise StatusError(SW.WRONG_P1_P2)
    record, sfi = command.p1 >> 3, command.p2 >> 3
    if command.p1 & 0x07:
        raise StatusError(SW.WRONG_P1_P2)
    if len(command.data) != 9 or command.data[0] != 0:
        raise StatusError(SW.WRONG_LENGTH)
    tc = int.from_bytes(card.nv.cells[CELL_TC], "big")
    if tc == 0:
        raise StatusError(SW.TRANSACTION_COUNTER_EXHAUSTED)
    key_index = pki.session_key.key_index
    data = b""
    if record:
        ef = card.file(sfi)
        if ef.record_size > 250:
            raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        if record > ef.record_count:
            raise StatusError(SW.RECORD_NOT_FOUND)
        card.check(ef.access.read, key_index)
        data = card.nv.cells[record_cell(ef.sfi, record)]
    elif sfi:
        raise StatusError(SW.WRONG_P1_P2)
    card.pre_open = None
    card.nv.commit({CELL_TC: (tc - 1).to_bytes(3, "big")})  # persisted before anything else
    random = card.rng(5)
    if len(random) != 5:
        raise ValueError("the card rng must return the number of bytes asked for")
    ratified = card.nv.cells[CELL_RATIFIED] == b"\x01"
    aid = card.profile.aid
    data_out = (
        bytes((len(aid),))
        + aid
        + card.profile.serial
        + b"\x00"
        + (tc - 1).to_bytes(3, "big")
        + random
        + bytes((0x00 if ratified else 0x01,))
        + b"\x00\x00"
        + bytes((len(data),))
        + data
    )
    response = ResponseApdu(data_out, SW.OK)
    stream = SignedStream()
    stream.add_exchange(bytes(command), bytes(response))
    card.session = Session(key_index, None, extended=False, stream=stream)
    return response


def close_pki_session(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Close in PKI mode: sign the stream, commit the writes, answer the signature."""
    session = card.session
    pki = card.profile.pki
    if session is None or session.stream is None or pki is None:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    if command.p2 != 0 or command.p1 not in (0x00, 0x80):
        raise StatusError(SW.WRONG_P1_P2)
    if command.data:
        raise StatusError(SW.WRONG_LENGTH)
    signature = sign_session(card_private_key(pki.private_key.get_secret_value()), session.stream)
    ratify_now = command.p1 == 0x80
    changes = dict(session.overlay)
    changes[CELL_RATIFIED] = b"\x01" if ratify_now else b"\x00"
    card.session = None
    card.nv.commit(changes)  # the anti-tearing commit (emulator_nv)
    card.ratification_pending = not ratify_now
    return ResponseApdu(signature, SW.OK)
