# SPDX-License-Identifier: Apache-2.0
"""``validator inspect`` of a PKI card: its certificates, and whether the chain verifies.

The card and CA certificates are read with Get Data outside any session (as the gate reads
them) and shown field by field: type, references (AID, serial, key id), dates, rights, scope,
AID and the keys. What a certificate's signature holds (the CA's modulus, the card's dates,
rights and ECC key) can only be recovered with its issuer's key: with a trusted root (the
settings' ``pki.roots``) every field is shown, and the chain is then judged by the settings'
policy on the day given: "verifies", or refused with the chain's reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from calypso.commands.pki import Certificate
from calypso.commands.select import ApplicationInfo
from calypso.pki.certificates import (
    CaCertificate,
    CardCertificate,
    CardCertificateContent,
    parse_ca_certificate,
    parse_card_certificate,
)
from calypso.pki.chain import ChainPolicy, DatePolicy, VerifiedCa, verify_chain
from calypso.pki.errors import CertificateError
from calypso.pki.fields import CaScope, KeyReference
from readers.channel import ApduChannel
from validator.engine.pki.trust import CardTrust, CertificateRefusedError, read_certificate


@dataclass
class CertificatesView:
    """What inspect learnt of a PKI card's certificates."""

    card: CardCertificate | None = None
    ca: CaCertificate | None = None
    content: CardCertificateContent | None = None  # recovered with the CA's key
    ca_modulus: bytes | None = None  # recovered with the root's key
    verdict: str = "not checked: no trusted root in the settings (pki.roots)"
    verified: bool = False
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_certificates(
    channel: ApduChannel, app: ApplicationInfo, trust: CardTrust | None, today: dt.date
) -> CertificatesView:
    """Read both certificates, decode them, and verify the chain with ``trust`` at ``today``."""
    view = CertificatesView()
    raw: dict[Certificate, bytes] = {}
    for which in (Certificate.CARD, Certificate.CA):
        try:
            raw[which] = read_certificate(channel, which)
        except CertificateRefusedError as exc:
            view.errors.append(str(exc))
    try:
        if Certificate.CARD in raw:
            view.card = parse_card_certificate(raw[Certificate.CARD])
        if Certificate.CA in raw:
            view.ca = parse_ca_certificate(raw[Certificate.CA])
    except CertificateError as exc:
        view.errors.append(str(exc))
    if trust is None or view.card is None or view.ca is None:
        if view.card is None or view.ca is None:
            view.verdict = "not checked: a certificate could not be read"
        return view
    card, ca = raw[Certificate.CARD], raw[Certificate.CA]
    roots = tuple(trust.roots)
    # What the signatures hold, with no policy at all; then the settings' verdict.
    lenient = ChainPolicy(today, DatePolicy.ACCEPT, DatePolicy.ACCEPT, frozenset(CaScope))
    try:
        recovered = verify_chain(card, [ca], roots, lenient, serial=app.serial)
    except CertificateError as exc:
        view.verdict = f"REFUSED ({exc.reason}): {exc}"
        return view
    view.content = recovered.content
    if isinstance(recovered.issuer, VerifiedCa):
        view.ca_modulus = recovered.issuer.public_key.modulus_bytes()
    try:
        verified = verify_chain(
            card, [ca], roots, trust.policy.on(today), serial=app.serial, aid=app.df_name
        )
    except CertificateError as exc:
        view.verdict = f"REFUSED ({exc.reason}): {exc}"
        return view
    view.verified = True
    view.notices = [f"{n.kind} {n.reason} {n.date}" for n in verified.notices]
    view.verdict = f"verifies to a trusted root on {today.isoformat()}"
    return view


def _reference(reference: KeyReference) -> dict[str, str]:
    """A key reference and its parts; the AID also as text when it is printable ASCII."""
    aid = reference.aid
    shown = aid.hex().upper()
    if aid.isascii() and aid.decode("ascii").isprintable():
        shown += f" ({aid.decode('ascii')})"
    return {
        "reference": reference.hex(),
        "aid": shown,
        "serial": reference.serial.hex().upper(),
        "key_id": reference.key_id.hex().upper(),
    }


def certificates_json(view: CertificatesView) -> dict[str, Any]:
    """The certificates and the chain's verdict as JSON (every field public)."""
    card: dict[str, Any] | None = None
    if view.card is not None:
        card = {
            "type": "91h card certificate",
            "issuer": _reference(view.card.issuer_reference),
            "aid": view.card.aid.hex().upper(),
            "serial": view.card.serial.hex().upper(),
            "index": view.card.index,
        }
        content = view.content
        if content is not None:
            card.update(
                start=str(content.start),
                end=str(content.end),
                rights=f"{content.rights:02X}",
                startup_info=content.startup_info.hex().upper(),
                public_key=content.public_key.hex(),
            )
    ca: dict[str, Any] | None = None
    if view.ca is not None:
        rights = view.ca.rights
        ca = {
            "type": "90h CA certificate",
            "issuer": _reference(view.ca.issuer_reference),
            "target": _reference(view.ca.target_reference),
            "start": str(view.ca.start),
            "end": str(view.ca.end),
            "rights": {
                "raw": f"{rights.raw:02X}",
                "may_sign_ca": rights.may_sign_ca,
                "may_sign_card": rights.may_sign_card,
            },
            "scope": view.ca.scope.name.lower(),
            "aid": view.ca.aid.hex().upper() if view.ca.aid is not None else None,
            "aid_is_prefix": view.ca.aid_truncated,
            "public_key": (
                f"RSA-2048 modulus {view.ca_modulus.hex().upper()}"
                if view.ca_modulus is not None
                else f"RSA-2048, modulus starting {view.ca.modulus_header.hex().upper()}"
            ),
        }
    return {
        "card": card,
        "ca": ca,
        "chain": {"verified": view.verified, "verdict": view.verdict, "notices": view.notices},
        "errors": view.errors,
    }
