# SPDX-License-Identifier: Apache-2.0
"""The Calypso CA and card certificates: exact byte layouts, parse, signature recovery, build.

Layouts (reference/calypso-pki.md, "Certificates"; Keyple's CalypsoCaCertificateV1Adapter and
CalypsoCardCertificateV1Adapter, the CNA generator's CaCertificate and CardCertificate):

CA certificate, 384 bytes = clear part 128 + signature 256::

    0   type 90h            1   version 01h        2   issuer key reference (29)
    31  target key reference (29)                  60  start date (BCD, 4)
    64  RFU (4)             68  rights (1)         69  scope (1)
    70  end date (BCD, 4)   74  target AID size (FFh: none) + AID padded to 16
    91  operating mode (b0: the AID is a truncated prefix)   92  RFU (2)
    94  first 34 bytes of the CA's RSA modulus
    recovered (222): the other 222 bytes of the modulus

Card certificate, 316 bytes = clear part 60 + signature 256::

    0   type 91h            1   version 01h        2   issuer key reference (29)
    31  card AID size + AID padded to 16           48  card serial (8)   56  card index (4)
    recovered (222): start date (4), end date (4), rights (1), startup information (7),
    RFU (18), ECC public key X || Y (64), RFU (124)

Parsing reads the clear part only (no key needed: the issuer reference says which key verifies
it); ``recover_*`` checks the ISO/IEC 9796-2 signature with the issuer's key and returns what
the signature holds. Policy (dates, rights, scope, revocation, serial) is in ``chain``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from calypso.pki.errors import (
    CertificateFormatError,
    CertificateSignatureError,
    SignatureRecoveryError,
)
from calypso.pki.fields import (
    BcdDate,
    CaRights,
    CaScope,
    KeyReference,
    decode_aid,
    decode_scope,
    decode_target_aid,
    encode_aid,
    encode_target_aid,
)
from calypso.pki.iso9796 import (
    RSA_EXPONENT,
    RSA_MODULUS_SIZE,
    RsaPublicKey,
    recover_message,
    sign_with_recovery,
)
from calypso.pki.session import CardPublicKey

CA_CERTIFICATE_TYPE = 0x90
CARD_CERTIFICATE_TYPE = 0x91
CERTIFICATE_VERSION = 0x01
SIGNATURE_SIZE = 256
RECOVERED_SIZE = 222
CA_CLEAR_SIZE = 128
CARD_CLEAR_SIZE = 60
CA_CERTIFICATE_SIZE = CA_CLEAR_SIZE + SIGNATURE_SIZE  # 384
CARD_CERTIFICATE_SIZE = CARD_CLEAR_SIZE + SIGNATURE_SIZE  # 316
MODULUS_HEADER_SIZE = RSA_MODULUS_SIZE - RECOVERED_SIZE  # 34
STARTUP_INFO_SIZE = 7
CA, CARD = "CA", "card"


def _check_header(kind: str, raw: bytes, size: int, cert_type: int) -> None:
    if len(raw) != size:
        raise CertificateFormatError(kind, f"{len(raw)} bytes, expected {size}")
    if raw[0] != cert_type:
        raise CertificateFormatError(kind, f"type {raw[0]:02X}h, expected {cert_type:02X}h")
    if raw[1] != CERTIFICATE_VERSION:
        raise CertificateFormatError(kind, f"structure version {raw[1]:02X}h is not 01h")


def _date(kind: str, raw: bytes, what: str) -> BcdDate:
    try:
        return BcdDate.decode(raw)
    except ValueError as exc:
        raise CertificateFormatError(kind, f"{what}: {exc}") from None


def _recover(kind: str, raw: bytes, clear_size: int, issuer_key: RsaPublicKey) -> bytes:
    try:
        recovered = recover_message(raw[clear_size:], issuer_key, raw[:clear_size])
    except SignatureRecoveryError as exc:
        raise CertificateSignatureError(kind, str(exc)) from None
    if len(recovered) != RECOVERED_SIZE:
        raise CertificateSignatureError(
            kind, f"{len(recovered)} recovered bytes, expected {RECOVERED_SIZE}"
        )
    return recovered


@dataclass(frozen=True, slots=True)
class CaCertificate:
    """The clear part of a CA certificate (type 90h), parsed but not yet verified."""

    raw: bytes
    issuer_reference: KeyReference
    target_reference: KeyReference
    start: BcdDate
    rights: CaRights
    scope: CaScope
    end: BcdDate
    aid: bytes | None  # None: no AID restriction (size FFh)
    aid_truncated: bool  # operating mode b0: the AID is a prefix of the AIDs it covers
    modulus_header: bytes  # the first 34 bytes of the CA's modulus

    @property
    def reference(self) -> KeyReference:
        """The reference of the CA key this certificate carries (its target reference)."""
        return self.target_reference


def parse_ca_certificate(raw: bytes) -> CaCertificate:
    """Parse the 384-byte CA certificate's clear part.

    Raises:
        CertificateFormatError: size, type, version, dates, scope or AID size malformed.
    """
    _check_header(CA, raw, CA_CERTIFICATE_SIZE, CA_CERTIFICATE_TYPE)
    try:
        aid = decode_target_aid(raw[74:91])
        scope = decode_scope(raw[69])
    except ValueError as exc:
        raise CertificateFormatError(CA, str(exc)) from None
    return CaCertificate(
        raw=bytes(raw),
        issuer_reference=KeyReference(raw[2:31]),
        target_reference=KeyReference(raw[31:60]),
        start=_date(CA, raw[60:64], "start date"),
        rights=CaRights(raw[68]),
        scope=scope,
        end=_date(CA, raw[70:74], "end date"),
        aid=aid,
        aid_truncated=bool(raw[91] & 0x01),
        modulus_header=raw[94:128],
    )


def recover_ca_public_key(certificate: CaCertificate, issuer_key: RsaPublicKey) -> RsaPublicKey:
    """Verify the CA certificate with its issuer's key; the CA's RSA key (header + recovered).

    Raises:
        CertificateSignatureError: the issuer's key does not verify the signature.
        CertificateFormatError: the recovered modulus is not a 2048-bit one.
    """
    recovered = _recover(CA, certificate.raw, CA_CLEAR_SIZE, issuer_key)
    key = RsaPublicKey.from_modulus(certificate.modulus_header + recovered, RSA_EXPONENT)
    if key.modulus.bit_length() != 8 * RSA_MODULUS_SIZE:
        raise CertificateFormatError(CA, "the CA modulus is not 2048 bits")
    return key


@dataclass(frozen=True, slots=True)
class CardCertificate:
    """The clear part of a card certificate (type 91h), parsed but not yet verified."""

    raw: bytes
    issuer_reference: KeyReference
    aid: bytes
    serial: bytes
    index: int


def parse_card_certificate(raw: bytes) -> CardCertificate:
    """Parse the 316-byte card certificate's clear part.

    Raises:
        CertificateFormatError: size, type, version or AID size malformed.
    """
    _check_header(CARD, raw, CARD_CERTIFICATE_SIZE, CARD_CERTIFICATE_TYPE)
    try:
        aid = decode_aid(raw[31:48])
    except ValueError as exc:
        raise CertificateFormatError(CARD, str(exc)) from None
    return CardCertificate(
        raw=bytes(raw),
        issuer_reference=KeyReference(raw[2:31]),
        aid=aid,
        serial=raw[48:56],
        index=int.from_bytes(raw[56:60], "big"),
    )


@dataclass(frozen=True, slots=True)
class CardCertificateContent:
    """What a card certificate's signature holds, once verified."""

    start: BcdDate
    end: BcdDate
    rights: int
    startup_info: bytes  # the card's startup information (7 bytes)
    public_key: CardPublicKey


def recover_card_content(
    certificate: CardCertificate, issuer_key: RsaPublicKey
) -> CardCertificateContent:
    """Verify the card certificate with its CA's key and decode the recovered part.

    Raises:
        CertificateSignatureError: the CA key does not verify the signature.
        CertificateFormatError: a date is not BCD, or the public key is not on P-256.
    """
    recovered = _recover(CARD, certificate.raw, CARD_CLEAR_SIZE, issuer_key)
    try:
        public_key = CardPublicKey(recovered[34:98])
    except ValueError as exc:
        raise CertificateFormatError(CARD, f"ECC public key: {exc}") from None
    return CardCertificateContent(
        start=_date(CARD, recovered[0:4], "start date"),
        end=_date(CARD, recovered[4:8], "end date"),
        rights=recovered[8],
        startup_info=recovered[9:16],
        public_key=public_key,
    )


# --- building (test material: the emulator's cards, the test PKI) ----------------------------


@dataclass(frozen=True, slots=True)
class CaCertificateSpec:
    """The fields of a CA certificate to issue."""

    issuer_reference: KeyReference
    target_reference: KeyReference
    public_key: RsaPublicKey  # the CA key being certified (2048 bits, e = 65537)
    start: BcdDate = BcdDate(0)
    end: BcdDate = BcdDate(0)
    rights: CaRights = CaRights(0x08)  # may sign card certificates (10), CA ones unspecified
    scope: CaScope = CaScope.TEST
    aid: bytes | None = None
    aid_truncated: bool = False


def build_ca_certificate(spec: CaCertificateSpec, issuer_key: rsa.RSAPrivateKey) -> bytes:
    """The 384-byte CA certificate of ``spec``, signed with the issuer's private key."""
    modulus = spec.public_key.modulus_bytes()
    if len(modulus) != RSA_MODULUS_SIZE or spec.public_key.exponent != RSA_EXPONENT:
        raise ValueError("a CA key is RSA-2048 with exponent 65537")
    clear = (
        bytes((CA_CERTIFICATE_TYPE, CERTIFICATE_VERSION))
        + spec.issuer_reference.raw
        + spec.target_reference.raw
        + spec.start.encode()
        + bytes(4)
        + bytes((spec.rights.raw, spec.scope))
        + spec.end.encode()
        + encode_target_aid(spec.aid)
        + bytes((0x01 if spec.aid_truncated else 0x00,))
        + bytes(2)
        + modulus[:MODULUS_HEADER_SIZE]
    )
    return clear + sign_with_recovery(modulus[MODULUS_HEADER_SIZE:], clear, issuer_key)


@dataclass(frozen=True, slots=True)
class CardCertificateSpec:
    """The fields of a card certificate to issue."""

    issuer_reference: KeyReference
    aid: bytes
    serial: bytes
    public_key: CardPublicKey
    index: int = 1
    start: BcdDate = BcdDate(0)
    end: BcdDate = BcdDate(0)
    rights: int = 0x00
    startup_info: bytes = bytes(STARTUP_INFO_SIZE)


def build_card_certificate(spec: CardCertificateSpec, issuer_key: rsa.RSAPrivateKey) -> bytes:
    """The 316-byte card certificate of ``spec``, signed with the CA's private key."""
    if len(spec.serial) != 8 or len(spec.startup_info) != STARTUP_INFO_SIZE:
        raise ValueError("a card certificate holds an 8-byte serial and 7-byte startup info")
    clear = (
        bytes((CARD_CERTIFICATE_TYPE, CERTIFICATE_VERSION))
        + spec.issuer_reference.raw
        + encode_aid(spec.aid)
        + spec.serial
        + spec.index.to_bytes(4, "big")
    )
    recoverable = (
        spec.start.encode()
        + spec.end.encode()
        + bytes((spec.rights,))
        + spec.startup_info
        + bytes(18)
        + spec.public_key.raw
        + bytes(124)
    )
    return clear + sign_with_recovery(recoverable, clear, issuer_key)
