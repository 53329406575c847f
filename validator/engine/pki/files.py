# SPDX-License-Identifier: Apache-2.0
"""The trust files of a PKI validator: a root (PCA) public key file and the revocation list.

Models only, as fares.yaml's are in engine/fares: validator.app.settings loads them (with the
file and the line of any error), the office tools read root key files the same way. Both hold
public data; still, no error message quotes a value (yamlconfig's rule).

A root key file (``config/pki/test_pki_root.yaml`` is the shipped test one)::

    test_material: false          # true: the test root (refused unless the operator opts in)
    key_reference: 0B...01        # 29 bytes, hex: what CA certificates name as their issuer
    modulus: 9760...8D            # RSA-2048 modulus, 256 bytes, hex
    exponent: 65537

A revocation list (``pki.revocations`` in validator.yaml)::

    ca_references: [hex29, ...]               # CA keys no longer trusted
    card_serials: [hex8, ...]                 # every certificate of these cards
    card_certificates:                        # one certificate of a card
      - {serial: hex8, index: 1}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from calypso.pki.chain import Revocations, TrustedRoot
from calypso.pki.fields import KEY_REFERENCE_SIZE, KeyReference
from calypso.pki.iso9796 import RSA_EXPONENT, RSA_MODULUS_SIZE, RsaPublicKey

SERIAL_SIZE = 8


def _hex_of(value: str, size: int, what: str) -> str:
    """``value`` if it is ``size`` bytes of hex (spaces allowed), upper-cased; else ValueError."""
    text = value.replace(" ", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} is not hex") from None
    if len(raw) != size:
        raise ValueError(f"{what} is {size} bytes, not {len(raw)}")
    return text.upper()


class RootKeyFile(BaseModel):
    """A trusted root public key: its 29-byte reference, its RSA-2048 modulus and exponent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_material: bool = False
    key_reference: str
    modulus: str
    exponent: int = RSA_EXPONENT

    @field_validator("key_reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        return _hex_of(value, KEY_REFERENCE_SIZE, "a key reference")

    @field_validator("modulus")
    @classmethod
    def _modulus(cls, value: str) -> str:
        text = _hex_of(value, RSA_MODULUS_SIZE, "an RSA-2048 modulus")
        if not bytes.fromhex(text)[0] & 0x80:
            raise ValueError("an RSA-2048 modulus has its top bit set")
        return text

    @field_validator("exponent")
    @classmethod
    def _exponent(cls, value: int) -> int:
        if value != RSA_EXPONENT:
            raise ValueError(f"Calypso keys use the public exponent {RSA_EXPONENT}")
        return value

    def reference(self) -> KeyReference:
        """The root's key reference."""
        return KeyReference(bytes.fromhex(self.key_reference))

    def root(self) -> TrustedRoot:
        """The root as the chain of trust takes it."""
        key = RsaPublicKey.from_modulus(bytes.fromhex(self.modulus), self.exponent)
        return TrustedRoot(self.reference(), key)


class RevokedCertificate(BaseModel):
    """One card certificate revoked: the card serial and the certificate's index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serial: str
    index: int = Field(ge=0, le=0xFFFFFFFF)

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str) -> str:
        return _hex_of(value, SERIAL_SIZE, "a card serial")


class RevocationFile(BaseModel):
    """The revocation list: CA keys, card serials and card certificates no longer trusted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_references: list[str] = Field(default_factory=list)
    card_serials: list[str] = Field(default_factory=list)
    card_certificates: list[RevokedCertificate] = Field(default_factory=list)

    @field_validator("ca_references")
    @classmethod
    def _references(cls, values: list[str]) -> list[str]:
        return [_hex_of(v, KEY_REFERENCE_SIZE, "a CA key reference") for v in values]

    @field_validator("card_serials")
    @classmethod
    def _serials(cls, values: list[str]) -> list[str]:
        return [_hex_of(v, SERIAL_SIZE, "a card serial") for v in values]

    def revocations(self) -> Revocations:
        """The list as the chain policy takes it."""
        return Revocations(
            ca_references=frozenset(bytes.fromhex(r) for r in self.ca_references),
            card_serials=frozenset(bytes.fromhex(s) for s in self.card_serials),
            card_certificates=frozenset(
                (bytes.fromhex(c.serial), c.index) for c in self.card_certificates
            ),
        )
