# SPDX-License-Identifier: Apache-2.0
"""Legacy SAM session commands: builders, pure parsers and one status-word table per command.

Byte layouts: calypso-protocol.md section 3 (and section 0 for the SAM CLA), csim1.md 1.4, 1.6.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

from readers.apdu import SW, ApduError, CommandApdu, ResponseApdu
from sam.base import SamError

CLA_SAM = 0x80  # S1E1, C1, HSM C1 and unknown SAMs (calypso-protocol section 0)
CLA_SAM_S1DX = 0x94  # SAM S1Dx
MAX_DIGEST_ITEM = 255  # one Digest Update item, and one Digest Update Multiple payload


class SamCommandRef(Enum):
    """The SAM commands this module builds, with their name and INS (Keyple `CommandRef`)."""

    SELECT_DIVERSIFIER = ("Select Diversifier", 0x14)
    GET_CHALLENGE = ("Get Challenge", 0x84)
    DIGEST_INIT = ("Digest Init", 0x8A)
    DIGEST_UPDATE = ("Digest Update", 0x8C)
    DIGEST_UPDATE_MULTIPLE = ("Digest Update Multiple", 0x8C)
    DIGEST_CLOSE = ("Digest Close", 0x8E)
    DIGEST_AUTHENTICATE = ("Digest Authenticate", 0x82)

    def __init__(self, label: str, ins: int) -> None:
        self.label = label
        self.ins = ins


class SamCommandError(SamError):
    """A SAM command answered a status word other than the accepted ones."""

    def __init__(
        self, ref: SamCommandRef, error: ApduError, reason: str = "unknown status"
    ) -> None:
        self.ref = ref
        self.apdu_error = error
        self.reason = reason
        super().__init__(f"SAM {ref.label}: {reason}: {error}")

    @property
    def sw(self) -> int:
        """The refused status word."""
        return self.apdu_error.sw


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
        0x6B00: (SamIllegalParameterError, "incorrect P1/P2"),
    },
    SamCommandRef.DIGEST_UPDATE: {
        0x6700: _LC,
        0x6985: _SEQUENCE,
        0x6A80: (SamIncorrectInputDataError, "item too short for encrypted mode"),
        0x6B00: (SamIllegalParameterError, "incorrect P1/P2"),
    },
    SamCommandRef.DIGEST_UPDATE_MULTIPLE: {
        0x6700: _LC,
        0x6985: _SEQUENCE,
        0x6A80: (SamIncorrectInputDataError, "incorrect data structure"),
        0x6B00: (SamIllegalParameterError, "incorrect P1/P2"),
    },
    SamCommandRef.DIGEST_CLOSE: {0x6700: _LC, 0x6985: _SEQUENCE},
    SamCommandRef.DIGEST_AUTHENTICATE: {
        0x6700: _LC,
        0x6985: _SEQUENCE,
        0x6988: (SamSecurityDataError, "incorrect signature"),
    },
}


def status_error(ref: SamCommandRef, error: ApduError) -> SamCommandError:
    """Map a refused status word to the typed error of this command's table."""
    cls, reason = STATUS_TABLES[ref].get(error.sw) or _COMMON.get(
        error.sw, (SamUnknownStatusError, "unknown status")
    )
    return cls(ref, error, reason)


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
    raise status_error(ref, ApduError(response, command))


# --- builders ------------------------------------------------------------------------------


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
    cla: int = CLA_SAM,
) -> CommandApdu:
    """Digest Init: CLA 8A P1 FF Lc KIF KVC <OSS data-out>; P1 bit0 verification, bit1 extended."""
    if not (0 <= kif <= 0xFF and 0 <= kvc <= 0xFF):
        raise ValueError("KIF and KVC are one byte each")
    if not open_data_out:
        raise ValueError("Digest Init needs the Open Secure Session data-out")
    p1 = (0x02 if extended else 0x00) | (0x01 if verification else 0x00)
    data = bytes((kif, kvc)) + open_data_out
    return CommandApdu(cla, SamCommandRef.DIGEST_INIT.ins, p1, 0xFF, data)


def digest_update(item: bytes, *, encrypted: bool = False, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Update: CLA 8C 00 00|80 Lc item (P2 80: encrypted session, the item comes back)."""
    _check_item(item)
    return CommandApdu(
        cla, SamCommandRef.DIGEST_UPDATE.ins, 0x00, 0x80 if encrypted else 0x00, item
    )


def digest_update_multiple(items: Sequence[bytes], *, cla: int = CLA_SAM) -> CommandApdu:
    """Digest Update Multiple: CLA 8C 80 00 Lc [len item]... (at most 255 bytes of data)."""
    if not items:
        raise ValueError("Digest Update Multiple needs at least one item")
    data = b"".join(_frame(item) for item in items)
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


def pack_digest_items(items: Sequence[bytes], max_data: int = MAX_DIGEST_ITEM) -> list[list[bytes]]:
    """Group items, in order, so each group's framed size is at most ``max_data`` bytes.

    An item too large to be framed within ``max_data`` is a group of its own (the caller sends
    it as a single Digest Update).
    """
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for item in items:
        _check_item(item)
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
    return _expect_length(SamCommandRef.GET_CHALLENGE, response.data, length)


def parse_digest_close(response: ResponseApdu, *, extended: bool = False) -> bytes:
    """Return the terminal session MAC: 4 bytes regular, 8 extended."""
    check_status(SamCommandRef.DIGEST_CLOSE, response)
    return _expect_length(SamCommandRef.DIGEST_CLOSE, response.data, 8 if extended else 4)


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


def _frame(item: bytes) -> bytes:
    _check_item(item)
    return bytes((len(item),)) + item


def _check_item(item: bytes) -> None:
    if not 1 <= len(item) <= MAX_DIGEST_ITEM:
        raise ValueError(f"a digest item must be 1 to 255 bytes, got {len(item)}")


def _expect_length(ref: SamCommandRef, data: bytes, length: int) -> bytes:
    if len(data) != length:
        raise SamResponseLengthError(f"SAM {ref.label}: expected {length} bytes, got {len(data)}")
    return data
