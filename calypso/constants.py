# SPDX-License-Identifier: Apache-2.0
"""Calypso constants: class bytes, product types, access levels, limits."""

from __future__ import annotations

from enum import IntEnum

# Keyple test-kit AID "1TIC.ICA1" and the generic Keyple test card AID (calypso-data-model 1.1).
AID_1TIC_ICA1 = bytes.fromhex("315449432E49434131")
AID_KEYPLE_GENERIC = bytes.fromhex("A000000291FF9101")

RECORD_SIZE = 29  # the "legacy" record length used by every transport file
MAX_RECORD_NUMBER = 250
MAX_SFI = 30
MAX_COUNTER_VALUE = 0xFFFFFF


class CardClass(IntEnum):
    """Card class byte (calypso-protocol section 0)."""

    ISO = 0x00  # Rev3, Light, Basic
    LEGACY = 0x94  # Rev1, Rev2
    LEGACY_SV = 0xFA  # stored-value commands on Rev1/Rev2


class ProductType(IntEnum):
    """Product type derived from the startup information's application type (section 4)."""

    PRIME_REVISION_1 = 1
    PRIME_REVISION_2 = 2
    PRIME_REVISION_3 = 3
    LIGHT = 4
    BASIC = 5
    UNKNOWN = 0


class WriteAccessLevel(IntEnum):
    """Session access level; the key index sent in Open Secure Session is the value + 1."""

    PERSONALIZATION = 0
    LOAD = 1
    DEBIT = 2

    @property
    def key_index(self) -> int:
        """Key index in Open Secure Session P1: 1 issuer, 2 load, 3 debit."""
        return self.value + 1


# Default KIFs per level (Keyple examples, CNA test kit).
DEFAULT_KIF = {
    WriteAccessLevel.PERSONALIZATION: 0x21,
    WriteAccessLevel.LOAD: 0x27,
    WriteAccessLevel.DEBIT: 0x30,
}

# Startup-info byte 0 -> session modification buffer size in bytes, Rev3 and Light (section 2.2).
_BUFFER_SIZES = (
    215,
    256,
    304,
    362,
    430,
    512,
    608,
    724,
    861,
    1024,
    1217,
    1448,
    1722,
    2048,
    2435,
    2896,
    3444,
    4096,
    4870,
    5792,
    6888,
    8192,
    9741,
    11585,
    13777,
    16384,
    19483,
    23170,
    27554,
    32768,
    38967,
    46340,
    55108,
    65536,
    77935,
    92681,
    110217,
    131072,
    155871,
    185363,
    220435,
    262144,
    311743,
    370727,
    440871,
    524288,
    623487,
    741455,
    881743,
    1048576,
)


def session_buffer_size(indicator: int) -> int:
    """Modification buffer size in bytes for a Rev3/Light buffer indicator (06h..37h)."""
    if not 0x06 <= indicator <= 0x37:
        raise ValueError(f"buffer size indicator out of range: {indicator:02X}")
    return _BUFFER_SIZES[indicator - 0x06]
