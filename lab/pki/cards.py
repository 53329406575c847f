# SPDX-License-Identifier: Apache-2.0
"""PKI card emulators for tests and the reliability campaign: honest ones, and hostile ones.

TEST MATERIAL. Cards are certified by the shipped test PKI (``config/pki``, read once), from
an ordinary profile: the PKI bit set, a fresh P-256 key, a certificate issued for the card's
AID and serial. The hostile variants change one thing each: a card that signs with another key
than its certified one (a forged signature), a certificate for another serial, one issued
under a CA reference the chain does not know (a wrong key reference), one issued by a CA whose
own certificate is out of its dates (an expired CA), or by a CA the revocation list names
(``REVOKED_CA_REFERENCE``, a revoked CA). The two extra CAs are made once per process.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, PkiProfile
from calypso.pki.fields import KeyReference
from calypso.pki.session import CardPublicKey
from calypso.pki.testpki import (
    TEST_END,
    TEST_START,
    Authority,
    generate_authority,
    generate_card_key,
    issue_ca,
    issue_card,
    private_scalar,
)
from lab.paths import CONFIG
from lab.pki.material import TestPki, load_test_pki

# A CA reference no root certified: a card certificate naming it has an unknown issuer.
UNKNOWN_CA_REFERENCE = KeyReference.build(b"TESTPKIOTHER", bytes(7) + b"\x09", b"\x00\x00\x00\x09")
EXPIRED_CA_END = dt.date(2025, 12, 31)  # before the campaign's and the tests' dates (2026)
EXPIRED_CA_REFERENCE = KeyReference.build(b"TESTPKICAOLD", bytes(7) + b"\x02", bytes(3) + b"\x01")
REVOKED_CA_REFERENCE = KeyReference.build(b"TESTPKICAREV", bytes(7) + b"\x03", bytes(3) + b"\x01")


@cache
def shipped_pki() -> TestPki:
    """The shipped test PKI (config/pki): its root and CA private keys, the CA certificate."""
    return load_test_pki(CONFIG / "pki")


@dataclass(frozen=True)
class PkiCard:
    """How to personalise one PKI card: what is certified, what the card holds."""

    base: Path  # the ordinary profile the card's files come from
    serial: bytes
    certified_serial: bytes | None = None  # the serial in its certificate (default: its own)
    forged: bool = False  # the card signs with a key other than the certified one
    issuer: KeyReference | None = None  # the issuer its certificate names (default: the CA's)
    ca: tuple[Authority, bytes] | None = None  # another CA (its key, its certificate) issues it
    start: dt.date | None = TEST_START
    end: dt.date | None = TEST_END
    pki: TestPki = field(default_factory=shipped_pki, repr=False)

    def profile(self) -> CardProfile:
        """The card's profile (a fresh card key each time)."""
        document: dict[str, Any] = yaml.safe_load(self.base.read_text(encoding="utf-8"))
        startup = bytearray(bytes.fromhex(document.get("startup_info", "0A3C2005141001")))
        startup[2] |= 0x10  # the PKI bit of the application type
        aid = bytes.fromhex(document.get("aid", "315449432E49434131"))
        key = generate_card_key()
        certified = generate_card_key() if self.forged else key
        ca, ca_certificate = self.ca or (self.pki.ca, self.pki.ca_certificate)
        if self.issuer is not None:
            ca = Authority(self.issuer, ca.private_key)
        certificate = issue_card(
            ca,
            aid=aid,
            serial=self.certified_serial or self.serial,
            public_key=CardPublicKey.of(certified),
            startup_info=bytes(startup),
            start=self.start,
            end=self.end,
        )
        document.update(
            serial=self.serial.hex().upper(),
            startup_info=startup.hex().upper(),
            pki={
                "private_key": private_scalar(key).hex().upper(),
                "card_certificate": certificate.hex().upper(),
                "ca_certificate": ca_certificate.hex().upper(),
            },
        )
        return CardProfile.model_validate(document)

    def card(self, rng: Callable[[int], bytes] | None = None) -> CardEmulator:
        """A card emulator of this personalisation."""
        return CardEmulator(self.profile(), rng=rng or random.Random(0).randbytes)  # noqa: S311

    def but(self, **changes: Any) -> PkiCard:
        """The same card with some fields changed."""
        return replace(self, **changes)


@cache
def expired_ca() -> tuple[Authority, bytes]:
    """A second test CA, certified by the test root until a date already past."""
    ca = generate_authority(EXPIRED_CA_REFERENCE)
    return ca, issue_ca(shipped_pki().root, ca, start=TEST_START, end=EXPIRED_CA_END)


@cache
def revoked_ca() -> tuple[Authority, bytes]:
    """A third test CA, validly certified: revoke REVOKED_CA_REFERENCE to refuse its cards."""
    ca = generate_authority(REVOKED_CA_REFERENCE)
    return ca, issue_ca(shipped_pki().root, ca)


def hostile_pki_cards(base: Path, serial: bytes) -> dict[str, PkiCard]:
    """The campaign's hostile PKI cards, by name: each must leave the gate shut."""
    honest = PkiCard(base, serial)
    other = bytes(serial[:-1]) + bytes(((serial[-1] + 1) & 0xFF,))
    return {
        "pki_forged_signature": honest.but(forged=True),
        "pki_other_serial": honest.but(certified_serial=other),
        "pki_wrong_key_reference": honest.but(issuer=UNKNOWN_CA_REFERENCE),
        "pki_expired_ca": honest.but(ca=expired_ca()),
        "pki_revoked_ca": honest.but(ca=revoked_ca()),
    }


def recertified(profile: CardProfile, serial: bytes) -> CardProfile:
    """A PKI card profile for another serial: a fresh key, its certificate by the test CA."""
    pki = shipped_pki()
    key = generate_card_key()
    certificate = issue_card(
        pki.ca,
        aid=profile.aid,
        serial=serial,
        public_key=CardPublicKey.of(key),
        startup_info=profile.startup_info,
    )
    section = {
        "private_key": private_scalar(key).hex().upper(),
        "card_certificate": certificate.hex().upper(),
        "ca_certificate": pki.ca_certificate.hex().upper(),
    }
    return profile.model_copy(update={"serial": serial, "pki": PkiProfile.model_validate(section)})
