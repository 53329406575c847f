# SPDX-License-Identifier: Apache-2.0
"""What a PKI validator trusts, and the card keys it has verified (docs/pki.md, "At the gate").

``CardTrust`` holds the trusted roots and the CA cache (``calypso.pki.chain.TrustStore``: a CA
certificate is verified once, then known by its reference: no Get Data for it again), the
chain policy (dates, scopes, revocations; ``policy_on`` gives it for the tap's day: the engine
reads no clock), and a bounded cache of verified card certificates by card serial: a returning
card costs no certificate APDU, its cached verification is re-checked against the day's policy
(dates, revocations: no cryptography), and its key must still sign the session.

Certificates are read before the session opens (Get Data is refused inside one,
calypso-protocol 1.11). Every refusal is a ``CertificateRefusedError`` carrying the chain's
reason code (``certificate_expired``, ``unknown_issuer``...), journaled as the tap's reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from calypso.commands.pki import (
    Certificate,
    get_data_certificate,
    join_certificate,
    parse_get_data_certificate,
)
from calypso.commands.select import ApplicationInfo
from calypso.errors import CardCommandError, CardResponseError
from calypso.pki.certificates import CardCertificate, parse_card_certificate
from calypso.pki.chain import (
    ChainPolicy,
    DatePolicy,
    Revocations,
    TrustedRoot,
    TrustStore,
    VerifiedCa,
    VerifiedCard,
    recheck,
)
from calypso.pki.errors import CertificateError
from calypso.pki.fields import PRODUCTION_SCOPES, CaScope
from readers.channel import ApduChannel
from validator.engine.session_types import SessionError

DEFAULT_CARD_CACHE = 10_000  # verified card certificates kept (about 1 KiB each)


class CertificateRefusedError(SessionError):
    """The card's certificate or its chain is refused: the gate stays shut, nothing is opened.

    ``reason`` is the chain's code (calypso.pki.errors), or ``certificate_missing`` for a card
    that announces PKI mode and answers no certificate.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The chain policy of the settings, for any day."""

    expired: DatePolicy = DatePolicy.REJECT
    not_yet_valid: DatePolicy = DatePolicy.REJECT
    scopes: frozenset[CaScope] = PRODUCTION_SCOPES
    revocations: Revocations = Revocations()

    def on(self, day: dt.date) -> ChainPolicy:
        """The policy certificates are checked with on ``day``."""
        return ChainPolicy(day, self.expired, self.not_yet_valid, self.scopes, self.revocations)


@dataclass(frozen=True, slots=True)
class CardKey:
    """A card's verified certificate, and whether this tap read it or found it cached."""

    verified: VerifiedCard
    cached: bool
    ca_read: bool = False

    @property
    def evidence(self) -> dict[str, object]:
        """What the journal keeps of the chain (certificates by reference; the trace holds
        them in full whenever they were read): replay finds them by these references."""
        certificate = self.verified.certificate
        return {
            "ca": certificate.issuer_reference.hex(),
            "card_certificate": certificate_id(certificate.raw),
            "certificate_index": certificate.index,
            "cached": self.cached,
            "notices": [f"{n.kind} {n.reason} {n.date}" for n in self.verified.notices],
        }


def certificate_id(raw: bytes) -> str:
    """A certificate's reference in the journal: the first 16 bytes of its SHA-256, hex."""
    return hashlib.sha256(raw).digest()[:16].hex().upper()


def read_certificate(card: ApduChannel, which: Certificate) -> bytes:
    """Both Get Data parts of a certificate, joined (the second only when the first is short).

    Raises:
        CertificateRefusedError: the card holds no such certificate (certificate_missing) or
            answers one of the wrong size or header (certificate_malformed).
    """
    try:
        command = get_data_certificate(which)
        first = parse_get_data_certificate(card.transmit(command), command)
        second = None
        if len(first.data) < which.size:
            command = get_data_certificate(which, second_part=True)
            second = parse_get_data_certificate(card.transmit(command), command)
        return join_certificate(first, second)
    except CardCommandError as exc:
        raise CertificateRefusedError(
            "certificate_missing", f"{which.name} certificate not given: {exc}"
        ) from exc
    except CardResponseError as exc:
        raise CertificateRefusedError(
            "certificate_malformed", f"{which.name} certificate: {exc}"
        ) from exc


@dataclass
class CardTrust:
    """The trusted roots, the CA cache, the policy and the verified card keys by serial."""

    roots: Iterable[TrustedRoot]
    policy: TrustPolicy = TrustPolicy()
    cache_size: int = DEFAULT_CARD_CACHE
    rng: Callable[[int], bytes] = os.urandom  # the terminal challenge of each PKI Open
    store: TrustStore = field(init=False)
    _cards: OrderedDict[bytes, VerifiedCard] = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.roots = tuple(self.roots)
        self.store = TrustStore.of(self.roots)

    @property
    def cached_cards(self) -> int:
        """Card certificates in the cache."""
        return len(self._cards)

    @property
    def cached_cas(self) -> tuple[VerifiedCa, ...]:
        """The CA certificates verified so far."""
        return tuple(self.store.cas.values())

    def card_key(self, card: ApduChannel, app: ApplicationInfo, day: dt.date) -> CardKey:
        """The selected card's verified key: cached (no APDU), or read and verified now.

        Raises:
            CertificateRefusedError: the certificate, its CA or the chain is refused today.
        """
        policy = self.policy.on(day)
        cached = self._cards.get(app.serial)
        try:
            if cached is not None:
                self._cards.move_to_end(app.serial)
                return CardKey(recheck(cached, policy), cached=True)
            certificate = self._card_certificate(card)
            ca_read = not self.store.knows(certificate.issuer_reference)
            if ca_read:
                self.store.add_ca(read_certificate(card, Certificate.CA), policy)
            verified = self.store.verify_card(
                certificate, policy, serial=app.serial, aid=app.df_name
            )
        except CertificateError as exc:
            if cached is not None:
                self.forget(app.serial)  # revoked or expired since: read afresh next time
            raise CertificateRefusedError(exc.reason, str(exc)) from exc
        self._remember(app.serial, verified)
        return CardKey(verified, cached=False, ca_read=ca_read)

    def forget(self, serial: bytes) -> None:
        """Drop a card's cached certificate (its key failed to sign: it may have been replaced)."""
        self._cards.pop(serial, None)

    def _card_certificate(self, card: ApduChannel) -> CardCertificate:
        raw = read_certificate(card, Certificate.CARD)
        return parse_card_certificate(raw)  # CertificateFormatError: a CertificateError

    def _remember(self, serial: bytes, verified: VerifiedCard) -> None:
        if self.cache_size <= 0:
            return
        self._cards[serial] = verified
        self._cards.move_to_end(serial)
        while len(self._cards) > self.cache_size:
            self._cards.popitem(last=False)  # the card seen least recently
