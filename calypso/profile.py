# SPDX-License-Identifier: Apache-2.0
"""YAML card profiles for the card emulator: application identity, keys, file map and content.

A profile describes one personalised Calypso Prime Rev3 card (calypso-data-model 1.3-1.5).
Key material is held as ``SecretBytes`` and never appears in a repr, a log or an error message.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretBytes,
    model_validator,
)

from calypso.constants import (
    AID_1TIC_ICA1,
    MAX_COUNTER_VALUE,
    MAX_RECORD_NUMBER,
    MAX_SFI,
    RECORD_SIZE,
    session_buffer_size,
)
from calypso.crypto import KEY_LENGTH, diversify
from calypso.yamlfile import ConfigError, load_model

# Startup information (calypso-protocol 4): buffer 0A (430 bytes), platform 3C, application type
# 20 (plain Rev3), subtype 05, software issuer 14, version 10, revision 01.
DEFAULT_STARTUP_INFO = bytes.fromhex("0A3C2005141001")
DEFAULT_TRANSACTION_COUNTER = 0x030491

_HEX_JUNK = re.compile(r"[\s_:]")


class ProfileError(ConfigError):
    """A card profile could not be read or is invalid; names the file (and the line)."""

    what = "card profile"


def _hex_to_bytes(value: object) -> bytes:
    """Decode a hex string (spaces, '_' and ':' allowed); never echo the value in errors."""
    if isinstance(value, bytes | SecretBytes):
        return value if isinstance(value, bytes) else value.get_secret_value()
    if not isinstance(value, str):
        # YAML reads unquoted digit strings as integers: ask for quotes instead of guessing.
        raise ValueError("expected a quoted hex string")
    text = _HEX_JUNK.sub("", value)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("not a valid hex string") from None


def _hex_to_byte(value: object) -> int:
    if isinstance(value, int):
        raise ValueError("expected a quoted hex string such as '21'")
    raw = _hex_to_bytes(value)
    if len(raw) != 1:
        raise ValueError("expected exactly one byte of hex")
    return raw[0]


def _hex_to_lid(value: object) -> int:
    if isinstance(value, int):
        raise ValueError("expected a quoted 4-digit hex string such as '2010'")
    raw = _hex_to_bytes(value)
    if len(raw) != 2:
        raise ValueError("expected two bytes of hex (4 digits)")
    return int.from_bytes(raw, "big")


HexBytes = Annotated[bytes, BeforeValidator(_hex_to_bytes)]
HexByte = Annotated[int, BeforeValidator(_hex_to_byte)]
HexLid = Annotated[int, BeforeValidator(_hex_to_lid)]
SecretHex = Annotated[SecretBytes, BeforeValidator(_hex_to_bytes)]


class AccessCondition(StrEnum):
    """An access condition of one file operation (calypso-data-model 1.3-1.5)."""

    ALWAYS = "always"
    NEVER = "never"
    SESSION1 = "session1"  # a session opened with the issuer key (index 1)
    SESSION2 = "session2"  # ... with the issuer or load key (index <= 2)
    SESSION3 = "session3"  # ... with any of the three keys

    def allows(self, session_key_index: int | None) -> bool:
        """Whether a card in this state (no session: None; else key index 1..3) may proceed."""
        if self is AccessCondition.ALWAYS:
            return True
        if self is AccessCondition.NEVER or session_key_index is None:
            return False
        return session_key_index <= int(self.value[-1])


class FileType(StrEnum):
    """Record-file structures the emulator supports (calypso-data-model 1.4)."""

    LINEAR = "linear"
    CYCLIC = "cyclic"
    COUNTERS = "counters"


class FileAccess(BaseModel):
    """Access conditions of one EF; unspecified operations are never allowed, reads always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read: AccessCondition = AccessCondition.ALWAYS
    update: AccessCondition = AccessCondition.NEVER
    append: AccessCondition = AccessCondition.NEVER
    decrease: AccessCondition = AccessCondition.NEVER
    increase: AccessCondition = AccessCondition.NEVER


class FileProfile(BaseModel):
    """One elementary file: identity, structure, access conditions and initial content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sfi: int = Field(ge=1, le=MAX_SFI)
    lid: HexLid
    type: FileType
    record_size: int = Field(default=RECORD_SIZE, ge=1, le=250)
    records: int = Field(default=1, ge=1, le=MAX_RECORD_NUMBER)
    access: FileAccess = FileAccess()
    content: list[HexBytes] = Field(default_factory=list)
    counters: list[int] | None = None

    @model_validator(mode="after")
    def _check_content(self) -> Self:
        if len(self.content) > self.records:
            raise ValueError(f"{len(self.content)} content records for {self.records} records")
        for index, record in enumerate(self.content, start=1):
            if len(record) > self.record_size:
                raise ValueError(f"content record {index} longer than {self.record_size} bytes")
        if self.counters is not None:
            if self.type is not FileType.COUNTERS:
                raise ValueError("'counters' is only for a counters file")
            if self.content:
                raise ValueError("give either 'content' or 'counters', not both")
            if 3 * len(self.counters) > self.record_size:
                raise ValueError(f"more counters than fit in {self.record_size} bytes")
            if any(not 0 <= value <= MAX_COUNTER_VALUE for value in self.counters):
                raise ValueError("counter values must be in 0..16777215")
        return self

    def initial_records(self) -> list[bytes]:
        """The records at personalisation: content right-padded with 00, missing ones zero."""
        if self.counters is not None:
            # Counter n at bytes 3(n-1)..3n-1 of record 1 (calypso-protocol 1.7).
            first = b"".join(value.to_bytes(3, "big") for value in self.counters)
            given = [first]
        else:
            given = list(self.content)
        padded = [record.ljust(self.record_size, b"\x00") for record in given]
        return padded + [bytes(self.record_size)] * (self.records - len(padded))


class KeySlot(BaseModel):
    """One card key slot: KIF, KVC and either the card key or the master it derives from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kif: HexByte
    kvc: HexByte
    key: SecretHex | None = Field(default=None, repr=False)
    master: SecretHex | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _check_key(self) -> Self:
        if (self.key is None) == (self.master is None):
            raise ValueError("give exactly one of 'key' (card key) or 'master' (master key)")
        secret = self.key if self.key is not None else self.master
        if secret is None or len(secret.get_secret_value()) != KEY_LENGTH:
            raise ValueError(f"a key must be {KEY_LENGTH} bytes ({2 * KEY_LENGTH} hex digits)")
        return self

    def card_key(self, serial: bytes) -> bytes:
        """The card key: as given, or the master diversified with the serial (CSIM1 3.2)."""
        if self.key is not None:
            return self.key.get_secret_value()
        if self.master is None:
            raise ValueError("key slot without key material")
        return diversify(self.master.get_secret_value(), self.kif, self.kvc, serial)


class CardKeys(BaseModel):
    """The three session key slots: 1 issuer, 2 load, 3 debit (calypso-protocol 2.1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: KeySlot
    load: KeySlot
    debit: KeySlot

    def slot(self, key_index: int) -> KeySlot:
        """The slot for an Open Secure Session key index 1..3."""
        return (self.issuer, self.load, self.debit)[key_index - 1]


class CardProfile(BaseModel):
    """A personalised Calypso Prime Rev3 card, as loaded from YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    aid: HexBytes = AID_1TIC_ICA1
    serial: HexBytes
    startup_info: HexBytes = DEFAULT_STARTUP_INFO
    transaction_counter: int = Field(default=DEFAULT_TRANSACTION_COUNTER, ge=0, le=0xFFFFFF)
    ratified: bool = True
    invalidated: bool = False
    keys: CardKeys
    files: list[FileProfile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_card(self) -> Self:
        if not 5 <= len(self.aid) <= 16:
            raise ValueError("aid must be 5 to 16 bytes")
        if len(self.serial) != 8:
            raise ValueError("serial must be 8 bytes")
        if len(self.startup_info) != 7:
            raise ValueError("startup_info must be 7 bytes")
        session_buffer_size(self.startup_info[0])  # ValueError when out of 06..37
        for attribute in ("sfi", "lid"):
            values = [getattr(f, attribute) for f in self.files]
            if len(values) != len(set(values)):
                raise ValueError(f"two files share the same {attribute}")
        return self


def load_profile(path: Path | str) -> CardProfile:
    """Read and validate a YAML card profile.

    Raises:
        ProfileError: unreadable file, YAML syntax error (with its line) or invalid content.
    """
    return load_model(path, CardProfile, error=ProfileError)
