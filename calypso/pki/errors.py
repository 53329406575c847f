# SPDX-License-Identifier: Apache-2.0
"""Typed errors of the PKI chain: one class per reason a certificate is refused.

Each error names the certificate it is about (``CA`` or ``card``) and carries a short reason code
(``reason``) that a caller can put in a journal or a metric without parsing the message. No
message ever holds key material: references and public fields only.
"""

from __future__ import annotations


class PkiError(Exception):
    """Anything the PKI layer refuses."""

    reason = "pki_error"


class SignatureRecoveryError(PkiError):
    """An ISO/IEC 9796-2 signature does not verify (trailer, padding, hash or size)."""

    reason = "certificate_signature"


class CertificateError(PkiError):
    """A certificate is refused; ``kind`` is ``"CA"`` or ``"card"``."""

    reason = "certificate_error"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind} certificate: {message}")
        self.kind = kind


class CertificateFormatError(CertificateError):
    """Malformed bytes: length, type, version, AID size, BCD date, key not on the curve."""

    reason = "certificate_malformed"


class CertificateSignatureError(CertificateError):
    """The issuer's key does not verify the certificate's ISO/IEC 9796-2 signature."""

    reason = "certificate_signature"


class UnknownIssuerError(CertificateError):
    """The issuer key reference is neither a trusted root nor a known CA."""

    reason = "unknown_issuer"


class CertificateRightsError(CertificateError):
    """The issuer may not sign this kind of certificate (CA rights b0 / b2)."""

    reason = "certificate_rights"


class CertificateScopeError(CertificateError):
    """The CA scope (production, test) is not one the policy accepts."""

    reason = "certificate_scope"


class CertificateValidityError(CertificateError):
    """The certificate is outside its validity dates and the policy refuses that."""

    reason = "certificate_validity"


class CertificateExpiredError(CertificateValidityError):
    """Today is after the end date."""

    reason = "certificate_expired"


class CertificateNotYetValidError(CertificateValidityError):
    """Today is before the start date."""

    reason = "certificate_not_yet_valid"


class CertificateRevokedError(CertificateError):
    """The revocation list names this CA reference, card serial or card certificate."""

    reason = "certificate_revoked"


class CertificateMismatchError(CertificateError):
    """The certificate is for another card or application (serial, AID, CA AID restriction)."""

    reason = "certificate_mismatch"
