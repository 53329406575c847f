# SPDX-License-Identifier: Apache-2.0
"""SAM identification from its ATR (Keyple `LegacySamAdapter`; calypso-protocol.md 3, last part)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from sam.base import SamError
from sam.commands import CLA_SAM, CLA_SAM_S1DX

# 3B, then 3 or 5 interface bytes, then 80 5A, 10 bytes of SAM data, then 82 90 00
# (LegacySamUtil.buildPowerOnDataFilter: 3B(.{6}|.{10})805A..80<subtype>.{6}<SN>829000).
_ATR_PATTERN = re.compile(r"3B(?:.{6}|.{10})805A(.{2})(.{2})(.{2})(.{2})(.{2})(.{2})(.{8})829000")

HSM_ISSUER = 0x08  # software issuer 08 on a C1 subtype = HSM C1


class SamType(Enum):
    """Legacy SAM product types Keyple distinguishes."""

    C1 = "SAM C1"
    HSM_C1 = "HSM C1"
    S1DX = "SAM S1Dx"
    S1E1 = "SAM S1E1"
    UNKNOWN = "unknown"


class SamAtrError(SamError, ValueError):
    """The ATR does not have the legacy SAM shape."""


@dataclass(frozen=True, slots=True)
class SamIdentity:
    """What the ATR says about a SAM, and the capabilities Keyple derives from its type."""

    platform: int
    app_type: int
    subtype: int
    issuer: int
    version: int
    revision: int
    serial: bytes
    sam_type: SamType

    @property
    def cla(self) -> int:
        """Class byte of SAM commands: 94 for S1Dx, 80 otherwise (section 0)."""
        return CLA_SAM_S1DX if self.sam_type is SamType.S1DX else CLA_SAM

    @property
    def max_digest_data(self) -> int:
        """Largest digest payload per APDU: 255 (C1/HSM C1), 240 (S1E1), 70 (S1Dx).

        Keyple gives 0 for an unknown SAM; 70, the most conservative known limit, is used here.
        """
        if self.sam_type in (SamType.C1, SamType.HSM_C1):
            return 255
        if self.sam_type is SamType.S1E1:
            return 240
        return 70

    @property
    def supports_digest_multiple(self) -> bool:
        """Digest Update Multiple exists on SAM C1 and S1E1 only."""
        return self.sam_type in (SamType.C1, SamType.S1E1)

    @property
    def supports_extended(self) -> bool:
        """Extended (Rev3.2, 8-byte) sessions need a SAM C1 or HSM C1."""
        return self.sam_type in (SamType.C1, SamType.HSM_C1)


def _sam_type(subtype: int, issuer: int) -> SamType:
    if subtype == 0xC1:
        return SamType.HSM_C1 if issuer == HSM_ISSUER else SamType.C1
    if 0xD0 <= subtype <= 0xD7:
        return SamType.S1DX
    if subtype == 0xE1:
        return SamType.S1E1
    return SamType.UNKNOWN


def parse_sam_atr(atr: bytes) -> SamIdentity:
    """Decode a legacy SAM ATR; SamAtrError if it lacks the `3B..805A..829000` shape."""
    match = _ATR_PATTERN.fullmatch(atr.hex().upper())
    if match is None:
        raise SamAtrError(f"not a legacy SAM ATR: {atr.hex().upper()}")
    platform, app_type, subtype, issuer, version, revision = (
        int(group, 16) for group in match.groups()[:6]
    )
    return SamIdentity(
        platform=platform,
        app_type=app_type,
        subtype=subtype,
        issuer=issuer,
        version=version,
        revision=revision,
        serial=bytes.fromhex(match.group(7)),
        sam_type=_sam_type(subtype, issuer),
    )


def build_sam_atr(
    serial: bytes,
    *,
    issuer: int,
    version: int = 0x00,
    revision: int = 0x00,
    subtype: int = 0xC1,
    platform: int = 0x00,
    app_type: int = 0x80,
) -> bytes:
    """Build a SAM ATR shaped like a SAM C1's: 3B3F9600 805A <10 bytes> 829000."""
    if len(serial) != 4:
        raise ValueError(f"SAM serial must be 4 bytes, got {len(serial)}")
    head = bytes((platform, app_type, subtype, issuer, version, revision))
    return bytes.fromhex("3B3F9600805A") + head + serial + bytes.fromhex("829000")
