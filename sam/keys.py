# SPDX-License-Identifier: Apache-2.0
"""SAM work-key files (YAML): pydantic model and a loader that never lets key bytes out.

Key bytes live in pydantic ``SecretBytes`` (repr ``SecretBytes(b'**********')``); error messages
name the file, the YAML line and the field, never the value. Simulation KVCs (F0h/F1h, csim1.md
3.2) are refused unless the file says ``simulation: true`` and the caller allows simulation, and
so are the published simulation key bytes under any other KVC (compared by SHA-256). A
production key file (no ``simulation: true``) must not be readable or writable by group or
others. The format is documented in docs/sam.md.
"""

from __future__ import annotations

import hashlib
import stat
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, field_validator, model_validator

from yamlconfig import ConfigError, load_model

SIMULATION_KVCS = frozenset({0xF0, 0xF1})  # reserved for CSIM1 (csim1.md 3.2)
KEY_LENGTH = 16
# SHA-256 of the public CSIM1 master keys (config/keys.sim.yaml, csim1-vectors.txt "MK"): a
# production file holding one of them under any KVC (relabelled 01h, say) is refused. Only the
# fingerprints are compared, so the key bytes never appear in a message.
SIMULATION_KEY_FINGERPRINTS = frozenset(
    {
        "be45cb2605bf36bebde684841a28f0fd43c69850a3dce5fedba69928ee3a8991",  # 21/F0 issuer
        "fc2e2c73072bfa2bda03ff9307472debd3cc8105028a8a9e235e35ba8d2e37f4",  # 27/F0 load
        "36db1adc807ac50e4c85bd86a174b4aa260154e4f172a3659698945d7b16d084",  # 30/F0 debit
        "816b9e7c25d559c5766755b3bbb36654ad451e080ffa93694a793d6eed41f40a",  # 27/F1 load
    }
)
UNLOCK_DATA_LENGTH = 16  # static unlock data (calypso-protocol.md section 3, Unlock)
_OTHERS_ACCESS = stat.S_IRWXG | stat.S_IRWXO  # any group or world permission bit


class KeyFileError(ConfigError):
    """A key file that cannot be used: unreadable, malformed, or not allowed here."""

    what = "key file"


def _byte(value: object, name: str) -> int:
    """Read a KIF/KVC given as hex text ('30', '0x30'); YAML scalars are all read as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip().lower().removeprefix("0x")
        if len(text) != 2:
            raise ValueError(f"{name} must be one byte in hex, such as 30")
        try:
            number = int(text, 16)
        except ValueError:
            raise ValueError(f"{name} must be one byte in hex, such as 30") from None
    else:
        raise ValueError(f"{name} must be one byte in hex, such as 30")
    if not 0x01 <= number <= 0xFF:
        raise ValueError(f"{name} 00 is not a usable key reference")
    return number


class KeyRole(Enum):
    """What a work key is for: the card key slot it diversifies to, or PIN ciphering."""

    ISSUER = "issuer"
    LOAD = "load"
    DEBIT = "debit"
    PIN = "pin"
    OTHER = "other"


def _secret(value: object, name: str, lengths: tuple[int, ...]) -> bytes:
    """Hex text (or bytes) to bytes; messages name the field and length, never the value."""
    if isinstance(value, bytes | SecretBytes):
        raw = value.get_secret_value() if isinstance(value, SecretBytes) else value
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(value.replace(" ", ""))
        except ValueError:
            raise ValueError(f"{name} must be hex text") from None
    else:
        raise ValueError(f"{name} must be hex text")
    if len(raw) not in lengths:
        wanted = " or ".join(f"{n} bytes ({2 * n} hex digits)" for n in lengths)
        raise ValueError(f"{name} must be {wanted}, got {len(raw)}")
    return raw


class WorkKey(BaseModel):
    """One SAM work key: KIF, KVC, algorithm, role and its 16-byte master key (never printed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kif: int
    kvc: int
    key: SecretBytes
    algorithm: Literal["AES128"] = "AES128"  # CSIM1 is AES-128 only (csim1.md 3.1)
    role: KeyRole | None = None
    label: str = ""

    @field_validator("algorithm", mode="before")
    @classmethod
    def _algorithm(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().upper().replace("-", "").replace("_", "")
        return value

    @field_validator("kif", mode="before")
    @classmethod
    def _kif(cls, value: object) -> int:
        return _byte(value, "kif")

    @field_validator("kvc", mode="before")
    @classmethod
    def _kvc(cls, value: object) -> int:
        return _byte(value, "kvc")

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, value: object) -> bytes:
        # Messages here must not quote the value: they end up in KeyFileError.
        return _secret(value, "key", (KEY_LENGTH,))

    @property
    def simulation(self) -> bool:
        """Whether the KVC is one reserved for CSIM1 simulation."""
        return self.kvc in SIMULATION_KVCS

    @property
    def public(self) -> bool:
        """Whether the key bytes are a published simulation key, whatever the KVC says."""
        return hashlib.sha256(self.secret()).hexdigest() in SIMULATION_KEY_FINGERPRINTS

    def secret(self) -> bytes:
        """The master key bytes: pass them to crypto only, never to a log or a message."""
        return self.key.get_secret_value()


class KeySet(BaseModel):
    """The content of a key file: the simulation flag, the lock, and the work keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    simulation: bool = False
    locked: bool = False  # a software SAM built from this file starts locked (Unlock needed)
    unlock_data: SecretBytes | None = None  # 16 bytes, static unlock data (never printed)
    keys: list[WorkKey] = Field(min_length=1)

    @field_validator("unlock_data", mode="before")
    @classmethod
    def _unlock_data(cls, value: object) -> bytes | None:
        if value is None:
            return None
        return _secret(value, "unlock_data", (UNLOCK_DATA_LENGTH,))

    @model_validator(mode="after")
    def _lock_needs_data(self) -> KeySet:
        if self.locked and self.unlock_data is None:
            raise ValueError("locked: true needs unlock_data")
        return self

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: list[WorkKey]) -> list[WorkKey]:
        seen: set[tuple[int, int]] = set()
        for key in keys:
            ref = (key.kif, key.kvc)
            if ref in seen:
                raise ValueError(f"duplicate key KIF {key.kif:02X} KVC {key.kvc:02X}")
            seen.add(ref)
        return keys

    def lookup(self, kif: int, kvc: int) -> WorkKey | None:
        """The work key with this KIF and KVC, or None."""
        for key in self.keys:
            if key.kif == kif and key.kvc == kvc:
                return key
        return None

    def lookup_role(self, role: KeyRole, kvc: int) -> WorkKey | None:
        """The work key of this role and KVC, or None."""
        for key in self.keys:
            if key.role is role and key.kvc == kvc:
                return key
        return None

    def unlock_secret(self) -> bytes | None:
        """The unlock data bytes, if any: for the SAM only, never for a log or a message."""
        return self.unlock_data.get_secret_value() if self.unlock_data is not None else None


def load_keys(path: Path | str, *, allow_simulation: bool = False) -> KeySet:
    """Load and check a key file; KeyFileError (file, line, field; never key bytes) if unusable."""
    path = Path(path)
    # Every scalar as text: "21" stays the hex KIF 21h, never decimal 21.
    keys = load_model(path, KeySet, scalars_as_text=True, error=KeyFileError)
    _check_simulation(path, keys, allow_simulation)
    if not keys.simulation:
        check_permissions(path)
    return keys


def check_permissions(path: Path) -> None:
    """Refuse a key file that group or others may read or write (KeyFileError, chmod advice)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise KeyFileError(path, f"cannot stat: {exc.strerror or type(exc).__name__}") from None
    if mode & _OTHERS_ACCESS:
        raise KeyFileError(
            path,
            f"mode {mode:04o} gives group or others access to production keys; "
            f"run: chmod 600 {path} (only simulation: true files may be shared)",
        )


def _check_simulation(path: Path, keys: KeySet, allow_simulation: bool) -> None:
    simulated = [key for key in keys.keys if key.simulation]
    if keys.simulation and not allow_simulation:
        raise KeyFileError(path, "simulation key file refused: simulation is not enabled")
    if simulated and not keys.simulation:
        first = simulated[0]
        raise KeyFileError(
            path,
            f"KIF {first.kif:02X} KVC {first.kvc:02X} is a simulation key "
            "but the file does not say simulation: true",
        )
    public = [key for key in keys.keys if key.public]
    if public and not keys.simulation:
        first = public[0]
        raise KeyFileError(
            path,
            f"KIF {first.kif:02X} KVC {first.kvc:02X}: the key is a public simulation key "
            "(CSIM1, published with this project) relabelled; use the network's own keys",
        )
