# SPDX-License-Identifier: Apache-2.0
"""Emulator: Open / Close / Abort / Manage Secure Session for every product type.

Sections of ``reference/calypso-protocol.md``: 1.1 (Open, per product type, pre-open 2.8),
1.2 (Close, abort), 1.21 (Manage Secure Session); CSIM1 3.3-3.5 for the keys, the MAC and the
encryption; PKI mode (Open P2 low bits 3, its Close) is in ``pki``. CSIM1 leaves Rev1/Rev2
layouts out of scope: this emulator applies CSIM1 3.3 to them literally (CC = data-out[0:4],
the bytes a SAM's Digest Init takes), as the software SAM does.
"""

from __future__ import annotations

from calypso.constants import ProductType
from calypso.crypto import PURPOSE_MUTUAL_AUTH, SessionMac, macs_equal
from calypso.emulator.files import CELL_RATIFIED, CELL_TC, record_cell
from calypso.emulator.pki import PKI_MODE, close_pki_session, open_pki_session
from calypso.emulator.state import CardCore, Session, StatusError
from readers.apdu import SW, CommandApdu, ResponseApdu

NOT_RATIFIED_BYTES = b"\x00\x00"  # Rev1/Rev2: 2 extra bytes when not ratified (content unknown)
LEGACY_RECORD = 29


def open_session(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Open Secure Session: decode P1/P2 per product type, answer the product's layout."""
    if card.session is not None:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    product = card.product
    extended = False
    if product is ProductType.PRIME_REVISION_1:
        key_index, record, sfi = command.p1 & 0x07, command.p1 >> 3, command.p2 >> 3
        if command.p2 & 0x07:
            raise StatusError(SW.WRONG_P1_P2)
    elif product is ProductType.PRIME_REVISION_2:
        if not command.p1 & 0x80 or command.p2 & 0x07:
            raise StatusError(SW.WRONG_P1_P2)
        key_index, record, sfi = command.p1 & 0x07, (command.p1 & 0x7F) >> 3, command.p2 >> 3
    else:
        key_index, record, sfi = command.p1 & 0x07, command.p1 >> 3, command.p2 >> 3
        mode = command.p2 & 0x07
        if mode == PKI_MODE and card.profile.pki is not None:
            return open_pki_session(card, command)
        if mode == 2 and card.extended_capable:
            if command.p2 == 0x02 and command.data == b"\x00":
                return _pre_open(card, key_index)
            extended = True
        elif mode != 1:
            raise StatusError(SW.WRONG_P1_P2)
    if not 1 <= key_index <= 3:
        raise StatusError(SW.WRONG_P1_P2)
    size = 8 if extended else 4
    if len(command.data) != (9 if extended else 4) or (extended and command.data[0] != 0):
        raise StatusError(SW.WRONG_LENGTH)
    challenge = command.data[-size:]
    tc = int.from_bytes(card.nv.cells[CELL_TC], "big")
    if tc == 0:
        raise StatusError(SW.TRANSACTION_COUNTER_EXHAUSTED)
    data = b""
    if record:
        ef = card.file(sfi)
        if ef.record_size > 250 or record > ef.record_count:
            raise StatusError(
                SW.COMMAND_INCOMPATIBLE_WITH_FILE if ef.record_size > 250 else SW.RECORD_NOT_FOUND
            )
        card.check(ef.access.read, key_index)
        data = card.nv.cells[record_cell(ef.sfi, record)]
        if card.legacy:
            data = data[:LEGACY_RECORD].ljust(LEGACY_RECORD, b"\x00")
    elif sfi:
        raise StatusError(SW.WRONG_P1_P2)
    pre_open, card.pre_open = card.pre_open, None
    card.nv.commit({CELL_TC: (tc - 1).to_bytes(3, "big")})  # persisted before anything else
    tc -= 1
    ratified = card.nv.cells[CELL_RATIFIED] == b"\x01"
    kif, kvc, key = card.key_slot(key_index)
    if pre_open is not None and pre_open[0] == key_index:
        random = pre_open[1]  # the real Open answers what the pre-open announced (2.8)
    else:
        random = card.rng(5 if extended else 1)
    if len(random) != (5 if extended else 1):
        raise ValueError("the card rng must return the number of bytes asked for")
    counter = tc.to_bytes(3, "big")
    if extended:
        # CTR(3) RND(5) flags KIF KVC Ld data; flags bit0 = not ratified, bit1 = MSS allowed.
        flags = (0x00 if ratified else 0x01) | 0x02
        data_out = counter + random + bytes((flags, kif, kvc, len(data))) + data
    elif product is ProductType.PRIME_REVISION_1:
        data_out = counter + random + (b"" if ratified else NOT_RATIFIED_BYTES) + data
    elif product is ProductType.PRIME_REVISION_2:
        data_out = bytes((kvc,)) + counter + random + (b"" if ratified else NOT_RATIFIED_BYTES)
        data_out += data
    else:
        # CTR(3) RND(1) ratification(1) KIF KVC Ld record (section 1.1, Rev3 compatibility).
        data_out = counter + random + bytes((0 if ratified else 1, kif, kvc, len(data))) + data
    mac = SessionMac.start(
        key,
        extended=extended,
        kif=kif,
        kvc=kvc,
        open_data_out=data_out,
        terminal_challenge=challenge,
    )
    card.session = Session(key_index, mac, extended)
    return ResponseApdu(data_out, SW.OK)


def _pre_open(card: CardCore, key_index: int) -> ResponseApdu:
    """Pre-open (2.8): the extended answer the next Open will give, SW 6200, no session."""
    if not 1 <= key_index <= 3:
        raise StatusError(SW.WRONG_P1_P2)
    tc = int.from_bytes(card.nv.cells[CELL_TC], "big")
    if tc == 0:
        raise StatusError(SW.TRANSACTION_COUNTER_EXHAUSTED)
    random = card.rng(5)
    card.pre_open = (key_index, random)
    kif, kvc, _ = card.key_slot(key_index)
    flags = (0x00 if card.nv.cells[CELL_RATIFIED] == b"\x01" else 0x01) | 0x02
    data_out = (tc - 1).to_bytes(3, "big") + random + bytes((flags, kif, kvc, 0))
    return ResponseApdu(data_out, SW.WARNING_NO_INFO)


def close_session(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Close (P1 80 ratified, 00 not yet) or abort (no data): commit atomically (1.2)."""
    if command.p2 != 0 or command.p1 not in (0x00, 0x80):
        raise StatusError(SW.WRONG_P1_P2)
    session = card.session
    if session is not None and session.stream is not None:
        return close_pki_session(card, command)
    if session is None or session.mac is None:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    if not command.data:
        if command.p1 != 0:
            raise StatusError(SW.WRONG_LENGTH)
        card.session = None  # abort: buffered writes dropped
        return ResponseApdu(b"", SW.OK)
    mac = session.mac
    if len(command.data) != mac.half:
        raise StatusError(SW.WRONG_LENGTH)
    if not macs_equal(command.data, mac.terminal_mac()):
        # CSIM1 3.4: wrong terminal MAC -> 6988, writes rolled back, session closed.
        card.session = None
        raise StatusError(SW.INCORRECT_SIGNATURE)
    card_mac = mac.card_mac()
    ratify_now = command.p1 == 0x80
    changes = dict(session.overlay)
    changes[CELL_RATIFIED] = b"\x01" if ratify_now else b"\x00"
    card.session = None
    card.nv.commit(changes)  # the anti-tearing commit (emulator_nv)
    card.ratification_pending = not ratify_now
    # Postponed items: L (counting itself) then L-1 bytes (section 1.2).
    postponed = b"".join(bytes((len(item) + 1,)) + item for item in session.postponed)
    return ResponseApdu(postponed + card_mac, SW.OK)


def manage_session(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Manage Secure Session (1.21): P2 bit1 encryption on/off, bit0 mutual authentication."""
    if not card.extended_capable:
        raise StatusError(SW.INS_NOT_SUPPORTED)
    session = card.session
    if session is None or not session.extended or session.mac is None:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    mac = session.mac
    if command.p1 != 0 or command.p2 > 0x03:
        raise StatusError(SW.WRONG_P1_P2)
    card_mac = b""
    if command.p2 & 0x01:
        if len(command.data) != 8:
            raise StatusError(SW.WRONG_LENGTH)
        sequence = mac.auth_sequence
        expected = mac.terminal_mac(PURPOSE_MUTUAL_AUTH, sequence)
        if not macs_equal(command.data, expected):
            card.session = None  # wrong terminal MAC: the session is aborted (1.21)
            raise StatusError(SW.INCORRECT_SIGNATURE)
        card_mac = mac.card_mac(PURPOSE_MUTUAL_AUTH, sequence)
        mac.auth_sequence += 1
    elif command.data:
        raise StatusError(SW.WRONG_LENGTH)
    session.encrypting = bool(command.p2 & 0x02)
    return ResponseApdu(card_mac, SW.OK)
