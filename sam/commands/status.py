# SPDX-License-Identifier: Apache-2.0
"""SAM command references, the SamCommandError tree and one status-word table per command.

Status words: calypso-protocol.md section 3 (the table's "Specific SW" column and the common
6D00/6E00 of its first paragraph).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from readers.apdu import SW, ApduError, CommandApdu, ResponseApdu
from sam.base import SamError

CLA_SAM = 0x80  # S1E1, C1, HSM C1 and unknown SAMs (calypso-protocol section 0)
CLA_SAM_S1DX = 0x94  # SAM S1Dx
MAX_DIGEST_ITEM = 255  # one Digest Update item, and one Digest Update Multiple payload


class SamCommandRef(Enum):
    """The legacy SAM commands, with their name and INS (Keyple `CommandRef`)."""

    SELECT_DIVERSIFIER = ("Select Diversifier", 0x14)
    GET_CHALLENGE = ("Get Challenge", 0x84)
    DIGEST_INIT = ("Digest Init", 0x8A)
    DIGEST_UPDATE = ("Digest Update", 0x8C)
    DIGEST_UPDATE_MULTIPLE = ("Digest Update Multiple", 0x8C)
    DIGEST_CLOSE = ("Digest Close", 0x8E)
    DIGEST_AUTHENTICATE = ("Digest Authenticate", 0x82)
    DIGEST_INTERNAL_AUTHENTICATE = ("Digest Internal Authenticate", 0x88)
    GIVE_RANDOM = ("Give Random", 0x86)
    CARD_CIPHER_PIN = ("Card Cipher PIN", 0x12)
    CARD_GENERATE_KEY = ("Card Generate Key", 0x12)
    SV_PREPARE_LOAD = ("SV Prepare Load", 0x56)
    SV_PREPARE_DEBIT = ("SV Prepare Debit", 0x54)
    SV_PREPARE_UNDEBIT = ("SV Prepare Undebit", 0x5C)
    SV_CHECK = ("SV Check", 0x58)
    UNLOCK = ("Unlock", 0x20)
    READ_KEY_PARAMETERS = ("Read Key Parameters", 0xBC)
    READ_EVENT_COUNTER = ("Read Event Counter", 0xBE)
    READ_CEILINGS = ("Read Ceilings", 0xBE)
    READ_PARAMETERS = ("Read Parameters", 0xBE)

    def __init__(self, label: str, ins: int) -> None:
        self.label = label
        self.ins = ins


class SamCommandError(SamError, ApduError):
    """A SAM command answered a status word other than the accepted ones (an ApduError)."""

    def __init__(
        self,
        ref: SamCommandRef,
        response: ResponseApdu,
        command: CommandApdu | None = None,
        reason: str = "unknown status",
    ) -> None:
        ApduError.__init__(self, response, command)
        self.ref = ref
        self.reason = reason
        self.args = (f"SAM {ref.label}: {reason}: {self.args[0]}",)


class SamIllegalParameterError(SamCommandError):
    """Wrong length, P1/P2, INS or CLA (6700, 6A00, 6B00, 6D00, 6E00)."""


class SamIncorrectInputDataError(SamCommandError):
    """Badly structured command data (6A80)."""


class SamAccessForbiddenError(SamCommandError):
    """Command out of sequence, SAM locked or operation forbidden (6985)."""


class SamCounterOverflowError(SamCommandError):
    """A SAM event counter or ceiling cannot be incremented (6900)."""


class SamKeyNotFoundError(SamCommandError):
    """No SAM work key with the KIF/KVC asked for (6A83)."""


class SamSecurityDataError(SamCommandError):
    """Incorrect signature: the card (or the data) is not authentic (6988)."""


class SamUnknownStatusError(SamCommandError):
    """A status word absent from the command's table (kept, never dropped)."""


class SamResponseLengthError(SamError):
    """A SAM answer of the wrong length for the Le that was asked."""


_StatusTable = Mapping[int, tuple[type[SamCommandError], str]]

# Common to every SAM command (calypso-protocol section 3, first paragraph).
_COMMON: _StatusTable = {
    0x6D00: (SamIllegalParameterError, "instruction unknown"),
    0x6E00: (SamIllegalParameterError, "class not supported"),
}
_LC = (SamIllegalParameterError, "incorrect Lc/Le")
_SEQUENCE = (SamAccessForbiddenError, "preconditions not satisfied")
_P1P2 = (SamIllegalParameterError, "incorrect P1/P2")
_P2 = (SamIllegalParameterError, "incorrect P1/P2 (6A00)")
_DATA = (SamIncorrectInputDataError, "incorrect data")
_KEY = (SamKeyNotFoundError, "key not found")
_COUNTER = (SamCounterOverflowError, "counter cannot be incremented")
# Card Cipher PIN, Card Generate Key, SV Prepare: 6700 6985 6A00 6A80 6A83 (section 3).
_CARD_KEY_OPERATION: _StatusTable = {
    0x6700: _LC,
    0x6900: _COUNTER,
    0x6985: _SEQUENCE,
    0x6A00: _P2,
    0x6A80: _DATA,
    0x6A83: _KEY,
}
# Read Event Counter, Read Ceilings, Read Parameters: 6200 is success (data not signed).
_READ: _StatusTable = {0x6700: _LC, 0x6900: _COUNTER, 0x6A00: _P2}

STATUS_TABLES: Mapping[SamCommandRef, _StatusTable] = {
    SamCommandRef.SELECT_DIVERSIFIER: {
        0x6700: _LC,
        0x6985: (SamAccessForbiddenError, "SAM locked"),
    },
    SamCommandRef.GET_CHALLENGE: {0x6700: _LC},
    SamCommandRef.DIGEST_INIT: {
        0x6700: _LC,
        0x6900: (SamCounterOverflowError, "event counter cannot be incremented"),
        0x6985: _SEQUENCE,
        0x6A00: (SamIllegalParameterError, "incorrect P2"),
        0x6A83: (SamKeyNotFoundError, "signing key not found"),
        0x6B00: _P1P2,
    },
    SamCommandRef.DIGEST_UPDATE: {
        0x6700: _LC,
        0x6985: _SEQUENCE,
        0x6A80: (SamIncorrectInputDataError, "item too short for encrypted mode"),
        0x6B00: _P1P2,
    },
    SamCommandRef.DIGEST_UPDATE_MULTIPLE: {
        0x6700: _LC,
        0x6985: _SEQUENCE,
        0x6A80: (SamIncorrectInputDataError, "incorrect data structure"),
        0x6B00: _P1P2,
    },
    SamCommandRef.DIGEST_CLOSE: {0x6700: _LC, 0x6985: _SEQUENCE},
    SamCommandRef.DIGEST_AUTHENTICATE: {
        0x6700: _LC,
        0x6985: _SEQUENCE,
        0x6988: (SamSecurityDataError, "incorrect signature"),
    },
    SamCommandRef.DIGEST_INTERNAL_AUTHENTICATE: {
        0x6700: _LC,
        0x6985: (SamAccessForbiddenError, "no extended session with an AES key in progress"),
        0x6B00: _P1P2,
    },
    SamCommandRef.GIVE_RANDOM: {0x6700: _LC},
    SamCommandRef.CARD_CIPHER_PIN: _CARD_KEY_OPERATION,
    SamCommandRef.CARD_GENERATE_KEY: _CARD_KEY_OPERATION,
    SamCommandRef.SV_PREPARE_LOAD: _CARD_KEY_OPERATION,
    SamCommandRef.SV_PREPARE_DEBIT: _CARD_KEY_OPERATION,
    SamCommandRef.SV_PREPARE_UNDEBIT: _CARD_KEY_OPERATION,
    SamCommandRef.SV_CHECK: {
        0x6700: _LC,
        0x6985: (SamAccessForbiddenError, "no SV transaction in progress"),
        0x6988: (SamSecurityDataError, "incorrect SV signature"),
    },
    SamCommandRef.UNLOCK: {
        0x6700: _LC,
        0x6985: (SamAccessForbiddenError, "SAM not locked"),
        0x6988: (SamSecurityDataError, "incorrect unlock data"),
    },
    SamCommandRef.READ_KEY_PARAMETERS: {**_READ, 0x6A83: _KEY},
    SamCommandRef.READ_EVENT_COUNTER: _READ,
    SamCommandRef.READ_CEILINGS: _READ,
    SamCommandRef.READ_PARAMETERS: _READ,
}


def status_error(
    ref: SamCommandRef, response: ResponseApdu, command: CommandApdu | None = None
) -> SamCommandError:
    """Map a refused status word to the typed error of this command's table."""
    cls, reason = STATUS_TABLES[ref].get(response.sw) or _COMMON.get(
        response.sw, (SamUnknownStatusError, "unknown status")
    )
    return cls(ref, response, command, reason)


def check_status(
    ref: SamCommandRef,
    response: ResponseApdu,
    command: CommandApdu | None = None,
    *,
    accept: Iterable[int] = (SW.OK,),
) -> ResponseApdu:
    """Return ``response`` if its SW is accepted, else raise the command's typed SamCommandError."""
    if response.sw in tuple(accept):
        return response
    raise status_error(ref, response, command)


def expect_length(ref: SamCommandRef, data: bytes, length: int) -> bytes:
    """Return ``data`` if it has ``length`` bytes, else raise SamResponseLengthError."""
    if len(data) != length:
        raise SamResponseLengthError(f"SAM {ref.label}: expected {length} bytes, got {len(data)}")
    return data


def check_key_reference(kif: int, kvc: int) -> None:
    """KIF and KVC are one byte each (ValueError otherwise)."""
    if not (0 <= kif <= 0xFF and 0 <= kvc <= 0xFF):
        raise ValueError("KIF and KVC are one byte each")
