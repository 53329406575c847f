# SPDX-License-Identifier: Apache-2.0
"""ISO 7816-4 command and response APDUs, status words, and the one APDU error type."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class SW(IntEnum):
    """Status words met on Calypso cards and SAMs (ISO 7816-4 and Calypso usage)."""

    OK = 0x9000
    WARNING_NO_INFO = 0x6200
    DF_INVALIDATED = 0x6283
    PIN_TWO_ATTEMPTS_LEFT = 0x63C2
    PIN_ONE_ATTEMPT_LEFT = 0x63C1
    SESSION_BUFFER_OVERFLOW = 0x6400
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    TRANSACTION_COUNTER_EXHAUSTED = 0x6900
    COMMAND_INCOMPATIBLE_WITH_FILE = 0x6981
    SECURITY_NOT_SATISFIED = 0x6982
    PIN_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    INCORRECT_SIGNATURE = 0x6988
    INCORRECT_PARAMETERS_IN_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1_P2_6A86 = 0x6A86
    LC_INCONSISTENT_WITH_P1_P2 = 0x6A87
    WRONG_P1_P2_6A00 = 0x6A00
    WRONG_P1_P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


def sw_name(sw: int) -> str:
    """Return the symbolic name of a status word, or the 61xx/6Cxx family, or 'UNKNOWN'."""
    try:
        return SW(sw).name
    except ValueError:
        if sw >> 8 == 0x61:
            return "MORE_DATA_AVAILABLE"
        if sw >> 8 == 0x6C:
            return "WRONG_LE"
        return "UNKNOWN"


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU (short form only: Calypso never uses extended lengths).

    ``le`` is None when the command has no Le field; ``le=0`` encodes Le=00 (up to 256 bytes).
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} out of range: {value}")
        if len(self.data) > 255:
            raise ValueError(f"command data too long for a short APDU: {len(self.data)} bytes")
        if self.le is not None and not 0 <= self.le <= 0xFF:
            raise ValueError(f"Le out of range: {self.le}")

    def __bytes__(self) -> bytes:
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le,))
        elif not self.data:
            # Case 1 is sent as a 5-byte APDU with P3=00, as Keyple does (CL-C1-5BYTE).
            out += b"\x00"
        return out

    def hex(self) -> str:
        """Return the encoded APDU in upper-case hex."""
        return bytes(self).hex().upper()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandApdu:
        """Decode a short command APDU; a 5-byte APDU is read as case 2 (Le = P3)."""
        if len(raw) < 4:
            raise ValueError(f"command APDU too short: {raw.hex()}")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if len(raw) == 4:
            return cls(cla, ins, p1, p2)
        if len(raw) == 5:
            return cls(cla, ins, p1, p2, le=raw[4])
        lc = raw[4]
        if len(raw) == 5 + lc:
            return cls(cla, ins, p1, p2, raw[5 : 5 + lc])
        if len(raw) == 6 + lc:
            return cls(cla, ins, p1, p2, raw[5 : 5 + lc], le=raw[5 + lc])
        raise ValueError(f"command APDU length inconsistent with Lc: {raw.hex()}")


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data and the two status bytes as one int."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        """True when the status word is 9000."""
        return self.sw == SW.OK

    @property
    def sw1(self) -> int:
        """The first status byte."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """The second status byte."""
        return self.sw & 0xFF

    def __bytes__(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def hex(self) -> str:
        """Return data and SW in upper-case hex."""
        return bytes(self).hex().upper()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        """Split a raw response into data and status word (ValueError below 2 bytes)."""
        if len(raw) < 2:
            raise ValueError(f"response APDU shorter than a status word: {raw.hex()!r}")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


class ApduError(Exception):
    """A status word other than the expected ones: "SW=6A82 (FILE_NOT_FOUND) for 00B2013C00"."""

    def __init__(self, response: ResponseApdu, command: CommandApdu | None = None) -> None:
        self.response = response
        self.command = command
        where = f" for {command.hex()}" if command is not None else ""
        super().__init__(f"SW={response.sw:04X} ({sw_name(response.sw)}){where}")

    @property
    def sw(self) -> int:
        """The status word that was refused."""
        return self.response.sw

    @property
    def data(self) -> bytes:
        """The response data that came with the status word."""
        return self.response.data
