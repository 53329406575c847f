# SPDX-License-Identifier: Apache-2.0
"""The chain of trust: root (PCA) key -> CA certificate -> card certificate -> card public key.

What is checked (reference/calypso-pki.md; Keyple's CA and card certificate adapters):

- the issuer is known: a trusted root, or a CA already verified (``TrustStore``);
- the issuer may sign this kind of certificate (CA rights b0 for CA, b2 for card certificates);
- the ISO/IEC 9796-2 signature verifies with the issuer's key (the CA key or the card's ECC key
  comes out of it);
- the CA scope is one the policy accepts (production 00h, test 01h, both FFh);
- the dates: today before the start date, or after the end date, is refused or accepted as the
  policy says (Keyple refuses the first and only warns on the second: here the operator
  chooses); an accepted date problem is kept as a ``Notice`` for the journal;
- no revocation names the CA reference, the card serial or the card certificate (serial, index);
- the AID: a CA with a target AID covers exactly that AID (or the AIDs it prefixes, operating
  mode b0); the card certificate is for the selected application's serial (and AID).

Every refusal is a typed ``CertificateError`` (``calypso.pki.errors``). Verification is pure:
``policy.today`` is given by the caller, nothing here reads a clock or a file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from calypso.pki.certificates import (
    CA,
    CARD,
    CaCertificate,
    CardCertificate,
    CardCertificateContent,
    parse_ca_certificate,
    parse_card_certificate,
    recover_ca_public_key,
    recover_card_content,
)
from calypso.pki.errors import (
    CertificateExpiredError,
    CertificateMismatchError,
    CertificateNotYetValidError,
    CertificateRevokedError,
    CertificateRightsError,
    CertificateScopeError,
    UnknownIssuerError,
)
from calypso.pki.fields import PRODUCTION_SCOPES, BcdDate, CaScope, KeyReference
from calypso.pki.iso9796 import RsaPublicKey
from calypso.pki.session import CardPublicKey


class DatePolicy(StrEnum):
    """What to do with a certificate outside its dates."""

    REJECT = "reject"
    ACCEPT = "accept"  # accepted, with a Notice


@dataclass(frozen=True, slots=True)
class Revocations:
    """Revoked CA key references, card serials and card certificates (serial, index)."""

    ca_references: frozenset[bytes] = frozenset()
    card_serials: frozenset[bytes] = frozenset()
    card_certificates: frozenset[tuple[bytes, int]] = frozenset()


@dataclass(frozen=True, slots=True)
class ChainPolicy:
    """How strict the chain verification is; ``today`` is the date certificates are checked at."""

    today: dt.date
    expired: DatePolicy = DatePolicy.REJECT
    not_yet_valid: DatePolicy = DatePolicy.REJECT
    scopes: frozenset[CaScope] = PRODUCTION_SCOPES
    revocations: Revocations = Revocations()


@dataclass(frozen=True, slots=True)
class Notice:
    """A date problem the policy accepted: which certificate, why, and the date at stake."""

    kind: str  # "CA" or "card"
    reason: str  # "certificate_expired" or "certificate_not_yet_valid"
    date: BcdDate


@dataclass(frozen=True, slots=True)
class TrustedRoot:
    """A root (PCA) public key the operator trusts, named by its 29-byte reference."""

    reference: KeyReference
    public_key: RsaPublicKey
    may_sign_ca: bool = True
    may_sign_card: bool = True
    aid: bytes | None = None
    aid_truncated: bool = False


@dataclass(frozen=True, slots=True)
class VerifiedCa:
    """A CA certificate whose signature, rights, scope, dates and revocation were checked."""

    certificate: CaCertificate
    public_key: RsaPublicKey
    issuer: TrustedRoot | VerifiedCa
    notices: tuple[Notice, ...] = ()

    @property
    def reference(self) -> KeyReference:
        """The CA key's reference (what card certificates name as their issuer)."""
        return self.certificate.target_reference

    @property
    def may_sign_ca(self) -> bool:
        """Rights b0."""
        return self.certificate.rights.may_sign_ca

    @property
    def may_sign_card(self) -> bool:
        """Rights b2."""
        return self.certificate.rights.may_sign_card

    @property
    def aid(self) -> bytes | None:
        """The target AID restriction, None for none."""
        return self.certificate.aid

    @property
    def aid_truncated(self) -> bool:
        """Whether the AID restriction is a prefix."""
        return self.certificate.aid_truncated


Issuer = TrustedRoot | VerifiedCa


@dataclass(frozen=True, slots=True)
class VerifiedCard:
    """A card certificate verified up to a trusted root: the card's public key is trusted."""

    certificate: CardCertificate
    content: CardCertificateContent
    issuer: Issuer
    notices: tuple[Notice, ...] = ()

    @property
    def public_key(self) -> CardPublicKey:
        """The card's ECC public key, which must sign every PKI session of this card."""
        return self.content.public_key

    @property
    def serial(self) -> bytes:
        """The card serial the certificate is for."""
        return self.certificate.serial


def _check_dates(kind: str, start: BcdDate, end: BcdDate, policy: ChainPolicy) -> list[Notice]:
    """Apply the date policy (00000000 means no date, as Keyple)."""
    today = BcdDate.of(policy.today)
    notices = []
    if start.present and today < start:
        if policy.not_yet_valid is DatePolicy.REJECT:
            raise CertificateNotYetValidError(kind, f"not valid before {start}")
        notices.append(Notice(kind, CertificateNotYetValidError.reason, start))
    if end.present and today > end:
        if policy.expired is DatePolicy.REJECT:
            raise CertificateExpiredError(kind, f"expired on {end}")
        notices.append(Notice(kind, CertificateExpiredError.reason, end))
    return notices


def _aid_covered(kind: str, aid: bytes | None, issuer: Issuer) -> None:
    """Keyple's isAidValidForIssuer: an issuer's AID restriction covers the certificate's AID."""
    if issuer.aid is None:
        return
    if aid is not None and (
        aid[: len(issuer.aid)] == issuer.aid if issuer.aid_truncated else aid == issuer.aid
    ):
        return
    shown = "no AID restriction" if aid is None else f"AID {aid.hex().upper()}"
    raise CertificateMismatchError(kind, f"{shown} outside its issuer's {issuer.aid.hex().upper()}")


def _issuer_chain(issuer: Issuer) -> Iterable[VerifiedCa]:
    node: Issuer = issuer
    while isinstance(node, VerifiedCa):
        yield node
        node = node.issuer


def _check_ca_standing(ca: VerifiedCa, policy: ChainPolicy) -> list[Notice]:
    """Dates, scope and revocation of a verified CA, again (a cached CA can expire)."""
    if ca.reference.raw in policy.revocations.ca_references:
        raise CertificateRevokedError(CA, f"CA {ca.reference} is revoked")
    if ca.certificate.scope not in policy.scopes:
        raise CertificateScopeError(CA, f"scope {ca.certificate.scope.name} is not accepted")
    return _check_dates(CA, ca.certificate.start, ca.certificate.end, policy)


def verify_ca_certificate(
    certificate: CaCertificate, issuer: Issuer, policy: ChainPolicy
) -> VerifiedCa:
    """Verify a CA certificate issued by ``issuer`` (a root or a verified CA).

    Raises:
        UnknownIssuerError: ``issuer`` is not the key the certificate names.
        CertificateRightsError, CertificateSignatureError, CertificateScopeError,
        CertificateValidityError, CertificateRevokedError, CertificateMismatchError,
        CertificateFormatError: see the module docstring.
    """
    if certificate.issuer_reference != issuer.reference:
        raise UnknownIssuerError(CA, f"issued by {certificate.issuer_reference}, not this key")
    if not issuer.may_sign_ca:
        raise CertificateRightsError(CA, f"issuer {issuer.reference} may not sign CA certificates")
    public_key = recover_ca_public_key(certificate, issuer.public_key)
    _aid_covered(CA, certificate.aid, issuer)
    notices: list[Notice] = []
    for parent in _issuer_chain(issuer):
        notices += _check_ca_standing(parent, policy)
    ca = VerifiedCa(certificate, public_key, issuer)
    notices += _check_ca_standing(ca, policy)
    return VerifiedCa(certificate, public_key, issuer, tuple(notices))


def _check_card_standing(
    certificate: CardCertificate, content: CardCertificateContent, policy: ChainPolicy
) -> list[Notice]:
    revoked = policy.revocations
    if certificate.serial in revoked.card_serials or (
        (certificate.serial, certificate.index) in revoked.card_certificates
    ):
        raise CertificateRevokedError(
            CARD, f"card {certificate.serial.hex().upper()} index {certificate.index} is revoked"
        )
    return _check_dates(CARD, content.start, content.end, policy)


def verify_card_certificate(
    certificate: CardCertificate,
    issuer: Issuer,
    policy: ChainPolicy,
    *,
    serial: bytes,
    aid: bytes | None = None,
) -> VerifiedCard:
    """Verify a card certificate against its issuer, for the card of ``serial`` (and ``aid``).

    ``serial`` is the selected application's serial number: a certificate copied from another
    card is refused. ``aid``, when given, is the selected DF name, checked the same way.

    Raises:
        UnknownIssuerError, CertificateRightsError, CertificateSignatureError,
        CertificateFormatError, CertificateValidityError, CertificateRevokedError,
        CertificateScopeError, CertificateMismatchError: see the module docstring.
    """
    if certificate.issuer_reference != issuer.reference:
        raise UnknownIssuerError(CARD, f"issued by {certificate.issuer_reference}, not this key")
    if not issuer.may_sign_card:
        raise CertificateRightsError(
            CARD, f"issuer {issuer.reference} may not sign card certificates"
        )
    if certificate.serial != serial:
        raise CertificateMismatchError(
            CARD, f"for serial {certificate.serial.hex().upper()}, not {serial.hex().upper()}"
        )
    if aid is not None and certificate.aid != aid:
        raise CertificateMismatchError(
            CARD, f"for AID {certificate.aid.hex().upper()}, not {aid.hex().upper()}"
        )
    content = recover_card_content(certificate, issuer.public_key)
    _aid_covered(CARD, certificate.aid, issuer)
    notices: list[Notice] = []
    for parent in _issuer_chain(issuer):
        notices += _check_ca_standing(parent, policy)
    notices += _check_card_standing(certificate, content, policy)
    return VerifiedCard(certificate, content, issuer, tuple(notices))


def recheck(verified: VerifiedCard, policy: ChainPolicy) -> VerifiedCard:
    """Apply today's policy to a card verified earlier (no cryptography: for a cached card).

    Dates, scope and revocations of the card and every CA above it are checked again.
    """
    notices: list[Notice] = []
    for parent in _issuer_chain(verified.issuer):
        notices += _check_ca_standing(parent, policy)
    notices += _check_card_standing(verified.certificate, verified.content, policy)
    return VerifiedCard(verified.certificate, verified.content, verified.issuer, tuple(notices))


@dataclass
class TrustStore:
    """Trusted roots and the CAs verified so far, by key reference (the CA cache).

    A CA enters only through ``add_ca`` (verified against a root or a CA already in the store);
    a card certificate is verified against whichever issuer it names.
    """

    roots: dict[bytes, TrustedRoot] = field(default_factory=dict)
    cas: dict[bytes, VerifiedCa] = field(default_factory=dict)

    @classmethod
    def of(cls, roots: Iterable[TrustedRoot]) -> TrustStore:
        """A store trusting these roots, with no CA yet."""
        return cls({root.reference.raw: root for root in roots})

    def issuer(self, reference: KeyReference, kind: str = CARD) -> Issuer:
        """The root or verified CA of this reference.

        Raises:
            UnknownIssuerError: neither a trusted root nor a CA in the store.
        """
        found = self.roots.get(reference.raw) or self.cas.get(reference.raw)
        if found is None:
            raise UnknownIssuerError(kind, f"issuer {reference} is not trusted")
        return found

    def knows(self, reference: KeyReference) -> bool:
        """Whether a certificate issued by this reference can be verified without fetching."""
        return reference.raw in self.roots or reference.raw in self.cas

    def add_ca(self, raw: bytes, policy: ChainPolicy) -> VerifiedCa:
        """Parse and verify a CA certificate against its issuer in the store, then keep it."""
        certificate = parse_ca_certificate(raw)
        issuer = self.issuer(certificate.issuer_reference, CA)
        verified = verify_ca_certificate(certificate, issuer, policy)
        self.cas[verified.reference.raw] = verified
        return verified

    def verify_card(
        self,
        certificate: CardCertificate | bytes,
        policy: ChainPolicy,
        *,
        serial: bytes,
        aid: bytes | None = None,
    ) -> VerifiedCard:
        """Verify a card certificate (raw or parsed) against the issuer it names in the store."""
        if isinstance(certificate, bytes):
            certificate = parse_card_certificate(certificate)
        issuer = self.issuer(certificate.issuer_reference, CARD)
        return verify_card_certificate(certificate, issuer, policy, serial=serial, aid=aid)


def verify_chain(
    card_certificate: bytes,
    ca_certificates: Iterable[bytes],
    roots: Iterable[TrustedRoot],
    policy: ChainPolicy,
    *,
    serial: bytes,
    aid: bytes | None = None,
) -> VerifiedCard:
    """The whole chain at once (replay, inspect): roots -> CA certificates -> card certificate.

    CA certificates are added in the order given (a root's CA first).
    """
    store = TrustStore.of(roots)
    for raw in ca_certificates:
        store.add_ca(raw, policy)
    return store.verify_card(card_certificate, policy, serial=serial, aid=aid)
