# SPDX-License-Identifier: Apache-2.0
"""Test PKI material: a root (PCA) key, a CA and card certificates in the exact Calypso formats.

TEST MATERIAL ONLY. The references spell ``TEST PKI`` in ASCII so that a log, a journal or
``inspect`` shows at a glance that a card was certified by this test root; the CA's scope is
test (01h), refused by the default (production) chain policy. The keys are generated here; the
lab tool (``python -m lab.pki``) writes them and the shipped fixtures under ``config/pki/``.
Nothing in this module reads or writes a file, or prints a key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from calypso.pki.certificates import (
    CaCertificateSpec,
    CardCertificateSpec,
    build_ca_certificate,
    build_card_certificate,
)
from calypso.pki.chain import TrustedRoot
from calypso.pki.fields import BcdDate, CaRights, CaScope, KeyReference
from calypso.pki.iso9796 import RSA_EXPONENT, RsaPublicKey
from calypso.pki.session import CardPublicKey

# ASCII "TESTPKIROOT" / "TESTPKICA", serial 00..01, key id 00000001: visibly test references.
TEST_ROOT_REFERENCE = KeyReference.build(b"TESTPKIROOT", bytes(7) + b"\x01", b"\x00\x00\x00\x01")
TEST_CA_REFERENCE = KeyReference.build(b"TESTPKICA", bytes(7) + b"\x01", b"\x00\x00\x00\x01")
TEST_START = dt.date(2025, 1, 1)
TEST_END = dt.date(2045, 12, 31)


@dataclass(frozen=True)
class Authority:
    """A signing authority of the test PKI: its reference and its RSA-2048 private key."""

    reference: KeyReference
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def public_key(self) -> RsaPublicKey:
        """The authority's public key."""
        return RsaPublicKey.of(self.private_key)

    def as_root(self) -> TrustedRoot:
        """The authority as a trusted root (what a validator installs)."""
        return TrustedRoot(self.reference, self.public_key)


def generate_authority(reference: KeyReference) -> Authority:
    """A fresh RSA-2048 key (exponent 65537) under this reference."""
    return Authority(reference, rsa.generate_private_key(RSA_EXPONENT, 2048))


def issue_ca(
    root: Authority,
    ca: Authority,
    *,
    start: dt.date | None = TEST_START,
    end: dt.date | None = TEST_END,
    scope: CaScope = CaScope.TEST,
    rights: CaRights | None = None,
    aid: bytes | None = None,
    aid_truncated: bool = False,
) -> bytes:
    """The CA certificate of ``ca`` signed by ``root`` (by default: may sign card certificates,
    may not sign CA certificates, test scope, no AID restriction)."""
    spec = CaCertificateSpec(
        issuer_reference=root.reference,
        target_reference=ca.reference,
        public_key=ca.public_key,
        start=BcdDate.of(start),
        end=BcdDate.of(end),
        rights=rights if rights is not None else CaRights.of(sign_ca=False, sign_card=True),
        scope=scope,
        aid=aid,
        aid_truncated=aid_truncated,
    )
    return build_ca_certificate(spec, root.private_key)


def generate_card_key() -> ec.EllipticCurvePrivateKey:
    """A fresh card key pair on P-256 (secp256r1)."""
    return ec.generate_private_key(ec.SECP256R1())


def private_scalar(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The 32-byte scalar of a P-256 private key (to store test material)."""
    return key.private_numbers().private_value.to_bytes(32, "big")


def issue_card(
    ca: Authority,
    *,
    aid: bytes,
    serial: bytes,
    public_key: CardPublicKey,
    startup_info: bytes = bytes(7),
    index: int = 1,
    start: dt.date | None = TEST_START,
    end: dt.date | None = TEST_END,
) -> bytes:
    """The card certificate for (``aid``, ``serial``, ``public_key``) signed by ``ca``."""
    spec = CardCertificateSpec(
        issuer_reference=ca.reference,
        aid=aid,
        serial=serial,
        public_key=public_key,
        index=index,
        start=BcdDate.of(start),
        end=BcdDate.of(end),
        startup_info=startup_info,
    )
    return build_card_certificate(spec, ca.private_key)
