# SPDX-License-Identifier: Apache-2.0
"""The chain of trust: root -> CA -> card -> card key, and every typed refusal."""

from __future__ import annotations

import datetime as dt

import pytest
from pki_material import AID, SERIAL, TODAY, pki, sim_policy

from calypso.pki.chain import (
    DatePolicy,
    Revocations,
    TrustedRoot,
    TrustStore,
    recheck,
    verify_chain,
)
from calypso.pki.errors import (
    CertificateExpiredError,
    CertificateMismatchError,
    CertificateNotYetValidError,
    CertificateRevokedError,
    CertificateRightsError,
    CertificateScopeError,
    CertificateSignatureError,
    UnknownIssuerError,
)
from calypso.pki.fields import PRODUCTION_SCOPES, CaRights, CaScope
from calypso.pki.testpki import TEST_CA_REFERENCE, Authority, issue_ca, issue_card


def store() -> TrustStore:
    """A store trusting the test root, with the test CA added."""
    material = pki()
    trust = TrustStore.of([material.root.as_root()])
    trust.add_ca(material.ca_certificate, sim_policy())
    return trust


class TestChain:
    """A good chain gives the card's key; the CA is cached by reference."""

    def test_good_chain(self) -> None:
        """Root -> test CA -> card certificate: the card's public key, no notice."""
        material = pki()
        verified = verify_chain(
            material.card_certificate(),
            [material.ca_certificate],
            [material.root.as_root()],
            sim_policy(),
            serial=SERIAL,
            aid=AID,
        )
        assert verified.public_key == material.card_public and verified.notices == ()
        assert verified.issuer.reference == TEST_CA_REFERENCE

    def test_ca_cached_by_reference(self) -> None:
        """After add_ca the store knows the CA: a card certificate needs no CA certificate."""
        trust = store()
        assert trust.knows(TEST_CA_REFERENCE)
        verified = trust.verify_card(pki().card_certificate(), sim_policy(), serial=SERIAL)
        assert verified.serial == SERIAL

    def test_unknown_ca(self) -> None:
        """A card certificate whose CA is not in the store: UnknownIssuerError (fetch the CA)."""
        trust = TrustStore.of([pki().root.as_root()])
        assert not trust.knows(TEST_CA_REFERENCE)
        with pytest.raises(UnknownIssuerError, match="card certificate"):
            trust.verify_card(pki().card_certificate(), sim_policy(), serial=SERIAL)

    def test_untrusted_root(self) -> None:
        """A CA certificate from a root the operator did not install: UnknownIssuerError."""
        trust = TrustStore.of([pki().other.as_root()])
        with pytest.raises(UnknownIssuerError, match="CA certificate"):
            trust.add_ca(pki().ca_certificate, sim_policy())

    def test_root_under_the_wrong_key(self) -> None:
        """A root installed under the test reference with another key: signature refused."""
        material = pki()
        impostor = TrustedRoot(material.root.reference, material.other.public_key)
        with pytest.raises(CertificateSignatureError):
            TrustStore.of([impostor]).add_ca(material.ca_certificate, sim_policy())


class TestCardChecks:
    """The card certificate is for this card and signed by its CA."""

    def test_forged_by_another_key(self) -> None:
        """A card certificate naming the test CA but signed with another key: refused."""
        material = pki()
        forged = issue_card_by(material.other)
        with pytest.raises(CertificateSignatureError):
            store().verify_card(forged, sim_policy(), serial=SERIAL)

    def test_certificate_of_another_card(self) -> None:
        """A genuine certificate copied onto a card of another serial: CertificateMismatchError."""
        with pytest.raises(CertificateMismatchError, match="not 00000000C0FFEE03"):
            store().verify_card(
                pki().card_certificate(), sim_policy(), serial=bytes.fromhex("00000000C0FFEE03")
            )

    def test_certificate_for_another_application(self) -> None:
        """The AID given (the selected DF name) must be the certificate's."""
        with pytest.raises(CertificateMismatchError, match="AID"):
            store().verify_card(
                pki().card_certificate(), sim_policy(), serial=SERIAL, aid=b"OTHERAID"
            )

    def test_ca_aid_restriction(self) -> None:
        """A CA restricted to an AID covers it exactly, or as a prefix when truncated."""
        material = pki()
        root = material.root.as_root()
        cases = ((AID, False, True), (AID[:6], True, True), (AID[:6], False, False))
        for aid, truncated, ok in cases:
            ca = issue_ca(material.root, material.ca, aid=aid, aid_truncated=truncated)
            trust = TrustStore.of([root])
            trust.add_ca(ca, sim_policy())
            if ok:
                trust.verify_card(material.card_certificate(), sim_policy(), serial=SERIAL)
            else:
                with pytest.raises(CertificateMismatchError, match="outside"):
                    trust.verify_card(material.card_certificate(), sim_policy(), serial=SERIAL)

    def test_ca_may_not_sign_cards(self) -> None:
        """CA rights b2 set (01: shall not sign card certificates): CertificateRightsError."""
        material = pki()
        ca = issue_ca(material.root, material.ca, rights=CaRights.of(sign_ca=True, sign_card=False))
        trust = TrustStore.of([material.root.as_root()])
        trust.add_ca(ca, sim_policy())
        with pytest.raises(CertificateRightsError, match="card certificates"):
            trust.verify_card(material.card_certificate(), sim_policy(), serial=SERIAL)


def issue_card_by(signer: Authority) -> bytes:
    """A card certificate with the test CA's reference, signed by ``signer``'s key."""
    return issue_card(
        Authority(TEST_CA_REFERENCE, signer.private_key),
        aid=AID,
        serial=SERIAL,
        public_key=pki().card_public,
    )


class TestPolicy:
    """Dates, scope and revocation: the operator's choices."""

    def test_expired_card_rejected_or_noticed(self) -> None:
        """An expired card certificate: refused by default, accepted with a notice if chosen."""
        old = pki().card_certificate(end=TODAY - dt.timedelta(days=1))
        with pytest.raises(CertificateExpiredError, match="expired on 2026-03-01"):
            store().verify_card(old, sim_policy(), serial=SERIAL)
        verified = store().verify_card(old, sim_policy(expired=DatePolicy.ACCEPT), serial=SERIAL)
        assert [(n.kind, n.reason) for n in verified.notices] == [("card", "certificate_expired")]

    def test_last_day_is_valid(self) -> None:
        """A certificate ending today, or starting today, is valid today."""
        card = pki().card_certificate(start=TODAY, end=TODAY)
        assert store().verify_card(card, sim_policy(), serial=SERIAL).notices == ()

    def test_not_yet_valid_ca(self) -> None:
        """A CA starting tomorrow: CertificateNotYetValidError, or a notice if accepted."""
        material = pki()
        ca = issue_ca(material.root, material.ca, start=TODAY + dt.timedelta(days=1))
        with pytest.raises(CertificateNotYetValidError, match="CA certificate"):
            TrustStore.of([material.root.as_root()]).add_ca(ca, sim_policy())
        policy = sim_policy(not_yet_valid=DatePolicy.ACCEPT)
        verified = TrustStore.of([material.root.as_root()]).add_ca(ca, policy)
        assert [n.reason for n in verified.notices] == ["certificate_not_yet_valid"]

    def test_no_dates(self) -> None:
        """Dates 00000000 mean none: never expired, never early."""
        card = pki().card_certificate(start=None, end=None)
        assert store().verify_card(card, sim_policy(), serial=SERIAL).notices == ()

    def test_test_ca_refused_in_production(self) -> None:
        """The test CA (scope 01h) is refused by a production policy; scope FFh is accepted."""
        material = pki()
        trust = TrustStore.of([material.root.as_root()])
        production = sim_policy(scopes=PRODUCTION_SCOPES)
        with pytest.raises(CertificateScopeError, match="TEST"):
            trust.add_ca(material.ca_certificate, production)
        trust.add_ca(issue_ca(material.root, material.ca, scope=CaScope.ANY), production)

    def test_revoked_ca_refused_even_when_cached(self) -> None:
        """A CA revoked after it was cached: its cards are refused from then on."""
        trust = store()
        revocations = Revocations(ca_references=frozenset({TEST_CA_REFERENCE.raw}))
        revoked = sim_policy(revocations=revocations)
        with pytest.raises(CertificateRevokedError, match="CA"):
            trust.verify_card(pki().card_certificate(), revoked, serial=SERIAL)
        with pytest.raises(CertificateRevokedError):
            TrustStore.of([pki().root.as_root()]).add_ca(pki().ca_certificate, revoked)

    def test_revoked_card(self) -> None:
        """A revoked serial, or one revoked (serial, index), is refused; another index is not."""
        trust = store()
        by_serial = sim_policy(revocations=Revocations(card_serials=frozenset({SERIAL})))
        with pytest.raises(CertificateRevokedError, match="card"):
            trust.verify_card(pki().card_certificate(), by_serial, serial=SERIAL)
        by_index = sim_policy(revocations=Revocations(card_certificates=frozenset({(SERIAL, 1)})))
        with pytest.raises(CertificateRevokedError):
            trust.verify_card(pki().card_certificate(index=1), by_index, serial=SERIAL)
        trust.verify_card(pki().card_certificate(index=2), by_index, serial=SERIAL)

    def test_recheck_of_a_cached_card(self) -> None:
        """A card verified yesterday is refused today once revoked or expired (no crypto)."""
        trust = store()
        card = pki().card_certificate(end=TODAY)
        verified = trust.verify_card(card, sim_policy(), serial=SERIAL)
        assert recheck(verified, sim_policy()).public_key == verified.public_key
        with pytest.raises(CertificateExpiredError):
            recheck(verified, sim_policy(today=TODAY + dt.timedelta(days=1)))
        revoked = sim_policy(revocations=Revocations(card_serials=frozenset({SERIAL})))
        with pytest.raises(CertificateRevokedError):
            recheck(verified, revoked)

    def test_reason_codes(self) -> None:
        """Each refusal carries a stable reason code for journals and metrics."""
        with pytest.raises(CertificateMismatchError) as caught:
            store().verify_card(pki().card_certificate(), sim_policy(), serial=bytes(8))
        assert caught.value.reason == "certificate_mismatch" and caught.value.kind == "card"
