# SPDX-License-Identifier: Apache-2.0
"""SAM work-key files (YAML): pydantic model and a loader that never lets key bytes out.

Key bytes live in pydantic ``SecretBytes`` (repr ``SecretBytes(b'**********')``); error messages
name the file, the YAML line and the field, never the value. Simulation KVCs (F0h/F1h, csim1.md
3.2) are refused unless the file says ``simulation: true`` and the caller allows simulation.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, field_validator

from calypso.yamlfile import ConfigError, load_model

SIMULATION_KVCS = frozenset({0xF0, 0xF1})  # reserved for CSIM1 (csim1.md 3.2)
KEY_LENGTH = 16


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


class WorkKey(BaseModel):
    """One SAM work key: KIF, KVC and its 16-byte master key (never printed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kif: int
    kvc: int
    key: SecretBytes
    label: str = ""

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
        if isinstance(value, bytes | SecretBytes):
            raw = value.get_secret_value() if isinstance(value, SecretBytes) else value
        elif isinstance(value, str):
            try:
                raw = bytes.fromhex(value.replace(" ", ""))
            except ValueError:
                raise ValueError("key must be hex text") from None
        else:
            raise ValueError("key must be hex text")
        if len(raw) != KEY_LENGTH:
            raise ValueError(f"key must be {KEY_LENGTH} bytes (32 hex digits), got {len(raw)}")
        return raw

    @property
    def simulation(self) -> bool:
        """Whether the KVC is one reserved for CSIM1 simulation."""
        return self.kvc in SIMULATION_KVCS

    def secret(self) -> bytes:
        """The master key bytes: pass them to crypto only, never to a log or a message."""
        return self.key.get_secret_value()


class KeySet(BaseModel):
    """The content of a key file: the simulation flag and the work keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    simulation: bool = False
    keys: list[WorkKey] = Field(min_length=1)

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


def load_keys(path: Path | str, *, allow_simulation: bool = False) -> KeySet:
    """Load and check a key file; KeyFileError (file, line, field; never key bytes) if unusable."""
    path = Path(path)
    # Every scalar as text: "21" stays the hex KIF 21h, never decimal 21.
    keys = load_model(path, KeySet, scalars_as_text=True, error=KeyFileError)
    _check_simulation(path, keys, allow_simulation)
    return keys


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
