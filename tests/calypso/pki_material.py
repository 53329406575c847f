# SPDX-License-Identifier: Apache-2.0
"""Test helpers: one test PKI per test session (generating RSA-2048 keys takes a while)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ec

from calypso.pki.chain import ChainPolicy
from calypso.pki.fields import TEST_SCOPES, KeyReference
from calypso.pki.session import CardPublicKey
from calypso.pki.testpki import (
    TEST_CA_REFERENCE,
    TEST_ROOT_REFERENCE,
    Authority,
    generate_authority,
    generate_card_key,
    issue_ca,
    issue_card,
)

AID = bytes.fromhex("315449432E49434131")  # 1TIC.ICA1
SERIAL = bytes.fromhex("00000000C0FFEE02")
TODAY = dt.date(2026, 3, 2)
OTHER_REFERENCE = KeyReference.build(b"OTHERROOT", bytes(8), bytes(4))


@dataclass(frozen=True)
class Pki:
    """A root, a CA certified by it, another root, and one card key."""

    root: Authority
    ca: Authority
    other: Authority
    ca_certificate: bytes
    card_key: ec.EllipticCurvePrivateKey

    @property
    def card_public(self) -> CardPublicKey:
        """The card's public key."""
        return CardPublicKey.of(self.card_key)

    def card_certificate(self, **changes: object) -> bytes:
        """A certificate for the card (AID, SERIAL, its key) by the CA, with changed fields."""
        fields: dict[str, object] = {"aid": AID, "serial": SERIAL, "public_key": self.card_public}
        fields.update(changes)
        return issue_card(self.ca, **fields)  # type: ignore[arg-type]


@cache
def pki() -> Pki:
    """The session's test PKI."""
    root = generate_authority(TEST_ROOT_REFERENCE)
    ca = generate_authority(TEST_CA_REFERENCE)
    other = generate_authority(OTHER_REFERENCE)
    return Pki(root, ca, other, issue_ca(root, ca), generate_card_key())


def sim_policy(**changes: object) -> ChainPolicy:
    """The policy of a simulation validator: test scope accepted, dates checked at TODAY."""
    fields: dict[str, object] = {"today": TODAY, "scopes": TEST_SCOPES}
    fields.update(changes)
    return ChainPolicy(**fields)  # type: ignore[arg-type]
