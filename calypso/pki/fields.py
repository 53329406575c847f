# SPDX-License-Identifier: Apache-2.0
"""Fields shared by the Calypso CA and card certificates (reference/calypso-pki.md).

Key references (29 bytes), BCD dates (YYYYMMDD in 4 bytes, 00000000 = no date), the AID field
(size + AID padded to 16), the CA rights and scope bytes. Decoders raise ``ValueError``; the
certificate layer turns that into a ``CertificateFormatError`` naming the certificate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum

KEY_REFERENCE_SIZE = 29
AID_FIELD_SIZE = 16
AID_MIN, AID_MAX = 5, 16
NO_AID = 0xFF  # CA target AID size FFh: no AID restriction


@dataclass(frozen=True, slots=True)
class KeyReference:
    """A 29-byte public key reference: AID size (1) + AID padded to 16 + serial (8) + key id (4).

    The reference names a key; only its bytes are compared. Its parts are decoded for display.
    """

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_REFERENCE_SIZE:
            raise ValueError(f"a key reference is {KEY_REFERENCE_SIZE} bytes, not {len(self.raw)}")

    @classmethod
    def build(cls, aid: bytes, serial: bytes, key_id: bytes) -> KeyReference:
        """Compose a reference from an AID (5..16 bytes), a serial (8) and a key id (4)."""
        if len(serial) != 8 or len(key_id) != 4:
            raise ValueError("a key reference holds an 8-byte serial and a 4-byte key id")
        return cls(encode_aid(aid) + serial + key_id)

    @property
    def aid(self) -> bytes:
        """The AID part (its declared size; the 16 bytes when the size byte is out of range)."""
        size = self.raw[0]
        return self.raw[1 : 1 + size] if AID_MIN <= size <= AID_MAX else self.raw[1:17]

    @property
    def serial(self) -> bytes:
        """The 8-byte serial part."""
        return self.raw[17:25]

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id part."""
        return self.raw[25:29]

    def hex(self) -> str:
        """The reference in upper-case hex."""
        return self.raw.hex().upper()

    def __str__(self) -> str:
        return self.hex()


def encode_aid(aid: bytes) -> bytes:
    """AID field: size (1 byte) then the AID right-padded with 00h to 16 bytes."""
    if not AID_MIN <= len(aid) <= AID_MAX:
        raise ValueError(f"an AID is {AID_MIN} to {AID_MAX} bytes, not {len(aid)}")
    return bytes((len(aid),)) + aid.ljust(AID_FIELD_SIZE, b"\x00")


def decode_aid(field: bytes) -> bytes:
    """The AID of a 17-byte AID field (ValueError when its size is not 5..16)."""
    if len(field) != 1 + AID_FIELD_SIZE:
        raise ValueError("an AID field is 17 bytes")
    size = field[0]
    if not AID_MIN <= size <= AID_MAX:
        raise ValueError(f"AID size {size:02X}h is not 5..16")
    return field[1 : 1 + size]


def decode_target_aid(field: bytes) -> bytes | None:
    """A CA target AID field: None for size FFh (no AID restriction), else its AID."""
    if len(field) == 1 + AID_FIELD_SIZE and field[0] == NO_AID:
        return None
    return decode_aid(field)


def encode_target_aid(aid: bytes | None) -> bytes:
    """A CA target AID field: FFh and 16 zero bytes for no restriction, else the AID field."""
    return bytes((NO_AID,)) + bytes(AID_FIELD_SIZE) if aid is None else encode_aid(aid)


@dataclass(frozen=True, slots=True, order=True)
class BcdDate:
    """A certificate date: YYYYMMDD in BCD; 00000000 means no date (no check, as Keyple)."""

    value: int  # YYYYMMDD as a decimal number, 0 for no date

    @classmethod
    def decode(cls, raw: bytes) -> BcdDate:
        """Decode 4 BCD bytes (ValueError on a nibble above 9 or a date that does not exist)."""
        if len(raw) != 4:
            raise ValueError("a BCD date is 4 bytes")
        digits = raw.hex()
        if not digits.isdigit():
            raise ValueError(f"date {digits.upper()} is not BCD")
        date = cls(int(digits))
        if date.value:
            date.as_date()  # ValueError when the month or day does not exist
        return date

    @classmethod
    def of(cls, date: dt.date | None) -> BcdDate:
        """The BCD date of a calendar date (None: no date)."""
        return cls(0 if date is None else date.year * 10000 + date.month * 100 + date.day)

    def encode(self) -> bytes:
        """The 4 BCD bytes."""
        return bytes.fromhex(f"{self.value:08d}")

    @property
    def present(self) -> bool:
        """Whether a date is set (00000000 is none)."""
        return self.value != 0

    def as_date(self) -> dt.date | None:
        """The calendar date, or None for no date."""
        if not self.value:
            return None
        return dt.date(self.value // 10000, self.value // 100 % 100, self.value % 100)

    def __str__(self) -> str:
        date = self.as_date()
        return "none" if date is None else date.isoformat()


class CaScope(IntEnum):
    """CA scope byte: what the CA may be trusted for."""

    PRODUCTION = 0x00
    TEST = 0x01
    ANY = 0xFF


PRODUCTION_SCOPES = frozenset({CaScope.PRODUCTION, CaScope.ANY})
TEST_SCOPES = frozenset({CaScope.TEST, CaScope.ANY})


def decode_scope(value: int) -> CaScope:
    """The scope of a scope byte (ValueError for anything but 00h, 01h, FFh)."""
    try:
        return CaScope(value)
    except ValueError:
        raise ValueError(f"scope {value:02X}h is not 00h, 01h or FFh") from None


@dataclass(frozen=True, slots=True)
class CaRights:
    """CA rights byte: b1b0 the right to sign CA certificates, b3b2 card certificates.

    Each 2-bit value is 00 not specified, 01 shall not sign, 10 may sign (11 RFU); a CA may sign
    when the low bit of its pair is 0 (Keyple: b0 = 0 for CA, b2 = 0 for card certificates).
    """

    raw: int

    @classmethod
    def of(cls, *, sign_ca: bool, sign_card: bool) -> CaRights:
        """Rights stating explicitly (10 may / 01 shall not) what the CA may sign."""
        ca_bits = 0b10 if sign_ca else 0b01
        card_bits = 0b10 if sign_card else 0b01
        return cls(card_bits << 2 | ca_bits)

    @property
    def may_sign_ca(self) -> bool:
        """Whether certificates of other CAs signed with this key are accepted."""
        return not self.raw & 0x01

    @property
    def may_sign_card(self) -> bool:
        """Whether card certificates signed with this key are accepted."""
        return not self.raw & 0x04
