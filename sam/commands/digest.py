# SPDX-License-Identifier: Apache-2.0
"""Session digest commands: Select Diversifier, Get Challenge, Digest Init / Update / Update
Multiple / Close / Authenticate / Internal Authenticate; builders and pure parsers.

Byte layouts: calypso-protocol.md section 3, csim1.md 1.4-1.6; Digest Init verification mode is
this project's CSIM1 extension (docs/sam.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from readers.apdu import SW, CommandApdu, ResponseApdu
from sam.commands.status import (
    CLA_SAM,
    MAX_DIGEST_ITEM,
    SamCommandRef,
    check_key_reference,
    check_status,
    expect_length,
)

DIGEST_INIT_VERIFICATION = 0x01  # Digest Init P1 bit0
DIGEST_INIT_EXTENDED = 0x02  # Digest Init P1 bit1
DIGEST_UPDATE_ENCRYPTED = 0x80  # Digest Update P2 in a confidential session


def pad_diversifier(diversifier: bytes) -> bytes:
    """Keep 4 or 8 bytes; left-pad shorter ones with zeros to 4, others to 8 (csim1.md 1.6).

    As Keyple's CommandSelectDiversifier: a 4-byte diversifier is sent as is.
    """
    if not 1 <= len(diversifier) <= 8:
        raise ValueError(f"diversifier must be 1 to 8 bytes, got {len(diversifier)}")
    return diversifier.rjust(4 if len(diversifier) <= 4 else 8, b"\x00")


def select_diversifier(diversifier: bytes, *, cla: int = CLA_SAM) -> CommandApdu:
    """Select Diversifier: CLA 14 00 00 Lc diversifier (4 or 8 bytes after padding)."""
    return CommandApdu(
        cla, SamCommandRef.SELECT_DIVERSIFIER.ins, 0x00, 0x00, pad_diversifier(diversifier)
    )


def get_challenge(length: int = 4, *, cla: int = CLA_SAM) -> CommandApdu:
    """Get Challenge: CLA 84 00 00 Le, Le 04 (regular) or 08 (extended)."""
    if length not in (4, 8):
        raise ValueError(f"SAM challenge length must be 4 or 8, got {length}")
    return CommandApdu(cla, SamCommandRef.GET_CHALLENGE.ins, 0x00, 0x00, le=length)


def digest_init(
    kif: int,
    kvc: int,
    open_data_out: bytes,
    *,
    extended: bool = False,
    verification: bool = False,
    terminal_challenge: bytes | None = None,
    cla: int = CLA_SAM,
) -> CommandApdu:
    """Digest Init: CLA 8A P1 FF Lc KIF KVC [TC] <OSS data-out>; P1 bit0 verification, bit1 ext.

    In verification mode (CSIM1 extension, docs/sam.md) the original terminal challenge TC
    (4 bytes regular, 8 extended) sits between KVC and the data-out; it is absent otherwise.
    """
    check_key_reference(kif, kvc)
    if not open_data_out:
        raise ValueError("Digest Init needs the Open Secure Session data-out")
    p1 = (DIGEST_INIT_EXTENDED if extended else 0) | (
        DIGEST_INIT_VERIFICATION if verification else 0
    )
    data = bytes((kif, kvc))
    if verification:
        size = 8 if extended else 4
        if terminal_challenge is None or len(terminal_challenge) != size:
            raise ValueError(f"verification mode needs the {size}-byte terminal challenge")
        data += terminal_challenge
    elif terminal_challenge is not None:
        raise ValueError("a terminal challenge is only sent in verification mode")
    return CommandApdu(cla, SamCommandRef.DIGEST_INIT.ins, p1, 0xFF, data + open_data_out)


def digest_update(item: bytes, *, encrypted: bool = False, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Update: CLA 8C 00 00|80 Lc item (P2 80: encrypted session, the item comes back)."""
    check_item(item)
    p2 = DIGEST_UPDATE_ENCRYPTED if encrypted else 0x00
    return CommandApdu(cla, SamCommandRef.DIGEST_UPDATE.ins, 0x00, p2, item)


def digest_update_multiple(items: Sequence[bytes], *, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Update Multiple: CLA 8C 80 00 Lc [len item]... (at most 255 bytes of data)."""
    if not items:
        raise ValueError("Digest Update Multiple needs at least one item")
    data = b"".join(frame_item(item) for item in items)
    if len(data) > MAX_DIGEST_ITEM:
        raise ValueError(f"Digest Update Multiple payload too long: {len(data)} bytes")
    return CommandApdu(cla, SamCommandRef.DIGEST_UPDATE_MULTIPLE.ins, 0x80, 0x00, data)


def digest_close(*, extended: bool = False, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Close: CLA 8E 00 00 Le, Le 04 (regular) or 08 (extended)."""
    return CommandApdu(cla, SamCommandRef.DIGEST_CLOSE.ins, 0x00, 0x00, le=8 if extended else 4)


def digest_authenticate(card_mac: bytes, *, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Authenticate: CLA 82 00 00 Lc card-MAC (4, 8 or 16 bytes)."""
    if len(card_mac) not in (4, 8, 16):
        raise ValueError(f"card MAC must be 4, 8 or 16 bytes, got {len(card_mac)}")
    return CommandApdu(cla, SamCommandRef.DIGEST_AUTHENTICATE.ins, 0x00, 0x00, card_mac)


def digest_internal_authenticate(*, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Internal Authenticate: CLA 88 80 00 08 -> terminal MAC for Manage Secure Session."""
    return CommandApdu(cla, SamCommandRef.DIGEST_INTERNAL_AUTHENTICATE.ins, 0x80, 0x00, le=8)


def pack_digest_items(items: Sequence[bytes], max_data: int = MAX_DIGEST_ITEM) -> list[list[bytes]]:
    """Group items, in order, so each group's framed size is at most ``max_data`` bytes.

    An item too large to be framed within ``max_data`` is a group of its own (the caller sends
    it as a single Digest Update).
    """
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for item in items:
        check_item(item)
        framed = len(item) + 1
        if current and size + framed > max_data:
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += framed
        if size > max_data:
            groups.append(current)
            current, size = [], 0
    if current:
        groups.append(current)
    return groups


# --- pure parsers --------------------------------------------------------------------------


def parse_get_challenge(response: ResponseApdu, length: int = 4) -> bytes:
    """Return the SAM challenge, checking its length against the Le that was sent."""
    check_status(SamCommandRef.GET_CHALLENGE, response)
    return expect_length(SamCommandRef.GET_CHALLENGE, response.data, length)


def parse_digest_close(response: ResponseApdu, *, extended: bool = False) -> bytes:
    """Return the terminal session MAC: 4 bytes regular, 8 extended."""
    check_status(SamCommandRef.DIGEST_CLOSE, response)
    return expect_length(SamCommandRef.DIGEST_CLOSE, response.data, 8 if extended else 4)


def parse_digest_update(response: ResponseApdu) -> bytes:
    """Return the processed item of an encrypted-mode Digest Update (empty in plain mode)."""
    check_status(SamCommandRef.DIGEST_UPDATE, response)
    return response.data


def parse_digest_authenticate(response: ResponseApdu) -> bool:
    """True on 9000, False on 6988 (card not authentic); any other SW raises."""
    check_status(
        SamCommandRef.DIGEST_AUTHENTICATE, response, accept=(SW.OK, SW.INCORRECT_SIGNATURE)
    )
    return response.sw == SW.OK


def parse_digest_internal_authenticate(response: ResponseApdu) -> bytes:
    """Return the 8-byte terminal MAC for Manage Secure Session."""
    check_status(SamCommandRef.DIGEST_INTERNAL_AUTHENTICATE, response)
    return expect_length(SamCommandRef.DIGEST_INTERNAL_AUTHENTICATE, response.data, 8)


def parse_digest_items(data: bytes) -> list[bytes]:
    """Split a Digest Update Multiple payload `[len item]...`; ValueError on a bad structure."""
    items: list[bytes] = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        end = offset + 1 + length
        if length == 0 or end > len(data):
            raise ValueError(f"bad digest item structure at offset {offset}")
        items.append(data[offset + 1 : end])
        offset = end
    if not items:
        raise ValueError("empty Digest Update Multiple payload")
    return items


def frame_item(item: bytes) -> bytes:
    """One length byte then the item, as in a Digest Update Multiple payload."""
    check_item(item)
    return bytes((len(item),)) + item


def check_item(item: bytes) -> None:
    """A digest item is 1 to 255 bytes (ValueError otherwise)."""
    if not 1 <= len(item) <= MAX_DIGEST_ITEM:
        raise ValueError(f"a digest item must be 1 to 255 bytes, got {len(item)}")
