# SPDX-License-Identifier: Apache-2.0
"""The test PKI's files: what they hold, how they are written and read back (TEST MATERIAL).

A test PKI is a folder (the shipped one is ``config/pki/``)::

    test_pki_root.yaml          the root (PCA) public key and its reference: what a simulation
                                validator trusts
    test_pki_root.private.yaml  the root's private key (to certify other test CAs)
    test_pki_ca.yaml            the CA certificate (384 bytes) and the CA's reference
    test_pki_ca.private.yaml    the CA's private key (to certify test cards)

and PKI card profiles (the shipped ones are ``config/cards/pki/test_pki_*.yaml``) made from
ordinary profiles: the PKI bit in the application type, a card key and its two certificates.
Every file says ``test_material: true`` in its header and fields; private keys are PKCS #8 PEM
(unencrypted: anyone may read this test material) and never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from calypso.emulator.profile import CardProfile
from calypso.pki.fields import KeyReference
from calypso.pki.iso9796 import RsaPublicKey
from calypso.pki.session import CardPublicKey
from calypso.pki.testpki import (
    TEST_CA_REFERENCE,
    TEST_ROOT_REFERENCE,
    Authority,
    generate_authority,
    generate_card_key,
    issue_ca,
    issue_card,
    private_scalar,
)
from yamlconfig import load_model

ROOT_FILE = "test_pki_root.yaml"
ROOT_PRIVATE_FILE = "test_pki_root.private.yaml"
CA_FILE = "test_pki_ca.yaml"
CA_PRIVATE_FILE = "test_pki_ca.private.yaml"
WARNING = (
    "# TEST MATERIAL (docs/pki.md): made by `python -m lab.pki`; public, never for production.\n"
    "# A validator accepts it only when the operator installs this test root on purpose.\n"
)


class RootKeyFile(BaseModel):
    """A trusted root public key: its 29-byte reference, its RSA modulus and exponent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_material: bool = False
    key_reference: str
    modulus: str
    exponent: int = 65537

    @field_validator("key_reference", "modulus")
    @classmethod
    def _hex(cls, value: str) -> str:
        bytes.fromhex(value)
        return value

    def reference(self) -> KeyReference:
        """The root's reference."""
        return KeyReference(bytes.fromhex(self.key_reference))

    def public_key(self) -> RsaPublicKey:
        """The root's public key."""
        return RsaPublicKey.from_modulus(bytes.fromhex(self.modulus), self.exponent)


class PrivateKeyFile(BaseModel):
    """A test authority's private key (PKCS #8 PEM) and its reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_material: bool
    key_reference: str
    private_key_pem: SecretStr = Field(repr=False)

    def authority(self) -> Authority:
        """The authority this file holds."""
        key = serialization.load_pem_private_key(
            self.private_key_pem.get_secret_value().encode(), password=None
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key")
        return Authority(KeyReference(bytes.fromhex(self.key_reference)), key)


class CaCertificateFile(BaseModel):
    """A CA certificate (384 bytes, hex) with the references it links."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_material: bool = False
    key_reference: str
    issuer_reference: str
    certificate: str

    def raw(self) -> bytes:
        """The certificate bytes."""
        return bytes.fromhex(self.certificate)


@dataclass(frozen=True)
class TestPki:
    """A test PKI in memory: the root, the CA and the CA's certificate."""

    root: Authority
    ca: Authority
    ca_certificate: bytes


def make_test_pki() -> TestPki:
    """Fresh keys: a root, a CA, and the CA certificate the root signs (test scope)."""
    root = generate_authority(TEST_ROOT_REFERENCE)
    ca = generate_authority(TEST_CA_REFERENCE)
    return TestPki(root, ca, issue_ca(root, ca))


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = WARNING + yaml.safe_dump(document, sort_keys=False, width=100)
    path.write_text(text, encoding="utf-8")
    return path


def save_test_pki(pki: TestPki, folder: Path) -> list[Path]:
    """Write the four files of a test PKI into ``folder``; the paths written."""
    root, ca = pki.root, pki.ca
    return [
        _write(
            folder / ROOT_FILE,
            {
                "test_material": True,
                "key_reference": root.reference.hex(),
                "modulus": root.public_key.modulus_bytes().hex().upper(),
                "exponent": root.public_key.exponent,
            },
        ),
        _write(
            folder / ROOT_PRIVATE_FILE,
            {
                "test_material": True,
                "key_reference": root.reference.hex(),
                "private_key_pem": _pem(root.private_key),
            },
        ),
        _write(
            folder / CA_FILE,
            {
                "test_material": True,
                "key_reference": ca.reference.hex(),
                "issuer_reference": root.reference.hex(),
                "certificate": pki.ca_certificate.hex().upper(),
            },
        ),
        _write(
            folder / CA_PRIVATE_FILE,
            {
                "test_material": True,
                "key_reference": ca.reference.hex(),
                "private_key_pem": _pem(ca.private_key),
            },
        ),
    ]


def load_test_pki(folder: Path) -> TestPki:
    """Read a test PKI folder back (ConfigError, naming the file, when one is wrong)."""
    root = load_model(folder / ROOT_PRIVATE_FILE, PrivateKeyFile).authority()
    ca = load_model(folder / CA_PRIVATE_FILE, PrivateKeyFile).authority()
    certificate = load_model(folder / CA_FILE, CaCertificateFile).raw()
    return TestPki(root, ca, certificate)


def load_root(path: Path) -> RootKeyFile:
    """Read a root public key file."""
    return load_model(path, RootKeyFile)


def pki_card_profile(base: Path, pki: TestPki, *, serial: bytes, index: int = 1) -> dict[str, Any]:
    """A PKI card profile document from an ordinary one: new serial, PKI bit, key, certificates.

    The card's own key is fresh; its certificate is issued by the test CA for the profile's AID
    and ``serial``, with the card's startup information.
    """
    document: dict[str, Any] = yaml.safe_load(base.read_text(encoding="utf-8"))
    startup = bytearray(bytes.fromhex(document.get("startup_info", "0A3C2005141001")))
    if startup[2] < 0x20:
        raise ValueError(f"{base}: a PKI card is a Rev3 card (application type 20h or more)")
    startup[2] |= 0x10
    aid = bytes.fromhex(document.get("aid", "315449432E49434131"))
    card_key = generate_card_key()
    certificate = issue_card(
        pki.ca,
        aid=aid,
        serial=serial,
        public_key=CardPublicKey.of(card_key),
        startup_info=bytes(startup),
        index=index,
    )
    document["description"] = f"TEST PKI card: {document.get('description', base.stem)}"
    document["serial"] = serial.hex().upper()
    document["startup_info"] = startup.hex().upper()
    document["pki"] = {
        "private_key": private_scalar(card_key).hex().upper(),
        "card_certificate": certificate.hex().upper(),
        "ca_certificate": pki.ca_certificate.hex().upper(),
    }
    CardProfile.model_validate(document)  # what the emulator will load
    return document


def save_card_profile(document: dict[str, Any], path: Path) -> Path:
    """Write a PKI card profile with the test-material header."""
    return _write(path, document)
