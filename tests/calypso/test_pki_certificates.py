# SPDX-License-Identifier: Apache-2.0
"""CA and card certificates: byte layouts, ISO/IEC 9796-2 scheme 2, parse and recover."""

from __future__ import annotations

import hashlib

import pytest
from pki_material import AID, SERIAL, pki

from calypso.pki.certificates import (
    CA_CERTIFICATE_SIZE,
    CARD_CERTIFICATE_SIZE,
    parse_ca_certificate,
    parse_card_certificate,
    recover_ca_public_key,
    recover_card_content,
)
from calypso.pki.errors import (
    CertificateFormatError,
    CertificateSignatureError,
    SignatureRecoveryError,
)
from calypso.pki.fields import BcdDate, CaRights, CaScope, KeyReference
from calypso.pki.iso9796 import RsaPublicKey, recover_message, sign_with_recovery
from calypso.pki.testpki import TEST_CA_REFERENCE, TEST_ROOT_REFERENCE, issue_ca


def reference_steps(certificate: bytes, clear_size: int, key: RsaPublicKey) -> bytes:
    """calypso-pki.md's four verification steps, written out independently of iso9796.py."""
    signature = int.from_bytes(certificate[clear_size:], "big")
    block = pow(signature, key.exponent, key.modulus).to_bytes(256, "big")  # step 1
    db, digest, trailer = block[:223], block[223:255], block[255]  # step 2
    assert trailer == 0xBC
    mask = b"".join(hashlib.sha256(digest + i.to_bytes(4, "big")).digest() for i in range(7))
    unmasked = bytes(a ^ b for a, b in zip(db, mask, strict=False))  # step 3
    unmasked = bytes([unmasked[0] & 0x7F]) + unmasked[1:]
    assert unmasked[0] == 0x01  # the separator: M1 fills the block
    m1, m2 = unmasked[1:], certificate[:clear_size]
    assert len(m1) == 222
    expected = hashlib.sha256(
        (8 * 222).to_bytes(8, "big") + m1 + hashlib.sha256(m2).digest()
    ).digest()
    assert digest == expected  # step 4
    return m1


class TestIso9796:
    """Scheme 2, SHA-256, no salt, implicit trailer: the reference's steps, both ways."""

    def test_card_certificate_follows_the_reference_steps(self) -> None:
        """A built card certificate verifies by the reference's steps; M1 holds the key at 34."""
        material = pki()
        raw = material.card_certificate()
        m1 = reference_steps(raw, 60, material.ca.public_key)
        assert m1[34:98] == material.card_public.raw

    def test_ca_certificate_carries_the_modulus(self) -> None:
        """A CA certificate: clear header (34 bytes at 94) + recovered 222 = the CA modulus."""
        material = pki()
        raw = material.ca_certificate
        m1 = reference_steps(raw, 128, material.root.public_key)
        assert raw[94:128] + m1 == material.ca.public_key.modulus_bytes()

    def test_round_trip_and_tamper(self) -> None:
        """Recovering gives M1 back; one flipped bit of M2 or of the signature fails."""
        key = pki().root
        signature = sign_with_recovery(bytes(range(222)), b"clear part", key.private_key)
        assert recover_message(signature, key.public_key, b"clear part") == bytes(range(222))
        with pytest.raises(SignatureRecoveryError, match="hash mismatch"):
            recover_message(signature, key.public_key, b"clear parT")
        flipped = signature[:-1] + bytes([signature[-1] ^ 1])
        with pytest.raises(SignatureRecoveryError):
            recover_message(flipped, key.public_key, b"clear part")

    def test_wrong_key(self) -> None:
        """Another key finds no trailer (or no valid block): a typed refusal, never garbage."""
        material = pki()
        certificate = parse_ca_certificate(material.ca_certificate)
        with pytest.raises(CertificateSignatureError):
            recover_ca_public_key(certificate, material.other.public_key)


class TestCaCertificate:
    """Type 90h, 384 bytes: clear fields at their offsets."""

    def test_fields(self) -> None:
        """Parse gives back what was issued: references, dates, rights, scope, AID, header."""
        material = pki()
        raw = issue_ca(
            material.root,
            material.ca,
            scope=CaScope.ANY,
            aid=AID[:5],
            aid_truncated=True,
            rights=CaRights.of(sign_ca=True, sign_card=True),
        )
        assert len(raw) == CA_CERTIFICATE_SIZE and raw[:2] == b"\x90\x01"
        ca = parse_ca_certificate(raw)
        assert ca.issuer_reference == TEST_ROOT_REFERENCE
        assert ca.target_reference == TEST_CA_REFERENCE
        assert raw[60:64] == bytes.fromhex("20250101") and raw[70:74] == bytes.fromhex("20451231")
        assert str(ca.start) == "2025-01-01" and str(ca.end) == "2045-12-31"
        assert ca.rights.raw == 0x0A and ca.rights.may_sign_ca and ca.rights.may_sign_card
        assert ca.scope is CaScope.ANY and raw[69] == 0xFF
        assert ca.aid == AID[:5] and ca.aid_truncated and raw[74] == 5 and raw[91] == 0x01
        assert ca.modulus_header == material.ca.public_key.modulus_bytes()[:34]
        assert recover_ca_public_key(ca, material.root.public_key) == material.ca.public_key

    def test_no_aid_restriction(self) -> None:
        """Target AID size FFh: no restriction (None)."""
        ca = parse_ca_certificate(pki().ca_certificate)
        assert ca.raw[74] == 0xFF and ca.aid is None

    @pytest.mark.parametrize(
        ("offset", "value", "what"),
        [(0, 0x91, "type"), (1, 0x02, "version"), (69, 0x02, "scope"), (74, 0x04, "AID size")],
    )
    def test_malformed(self, offset: int, value: int, what: str) -> None:
        """A wrong type, version, scope or AID size is a CertificateFormatError naming the CA."""
        raw = bytearray(pki().ca_certificate)
        raw[offset] = value
        with pytest.raises(CertificateFormatError, match="CA certificate"):
            parse_ca_certificate(bytes(raw))

    def test_truncated(self) -> None:
        """383 bytes are not a CA certificate."""
        with pytest.raises(CertificateFormatError, match="383 bytes"):
            parse_ca_certificate(pki().ca_certificate[:-1])

    def test_bad_bcd_date(self) -> None:
        """A date with a nibble above 9, or month 13, is malformed."""
        for date in ("2025A101", "20251301"):
            raw = bytearray(pki().ca_certificate)
            raw[60:64] = bytes.fromhex(date)
            with pytest.raises(CertificateFormatError, match="start date"):
                parse_ca_certificate(bytes(raw))


class TestCardCertificate:
    """Type 91h, 316 bytes: clear identity, recovered dates, rights, startup info, key."""

    def test_fields(self) -> None:
        """Parse and recover give back the issued fields."""
        material = pki()
        startup = bytes.fromhex("0A3C3005141001")
        raw = material.card_certificate(index=7, startup_info=startup)
        assert len(raw) == CARD_CERTIFICATE_SIZE and raw[:2] == b"\x91\x01"
        card = parse_card_certificate(raw)
        assert card.issuer_reference == TEST_CA_REFERENCE
        assert card.aid == AID and raw[31] == len(AID) and raw[48:56] == SERIAL
        assert card.serial == SERIAL and card.index == 7 and raw[56:60] == b"\x00\x00\x00\x07"
        content = recover_card_content(card, material.ca.public_key)
        assert content.start == BcdDate(20250101) and content.end == BcdDate(20451231)
        assert content.startup_info == startup and content.rights == 0
        assert content.public_key == material.card_public

    def test_altered_serial_breaks_the_signature(self) -> None:
        """The serial is signed (M2): changing it makes the signature fail."""
        material = pki()
        raw = bytearray(material.card_certificate())
        raw[55] ^= 0x01
        with pytest.raises(CertificateSignatureError, match="card certificate"):
            recover_card_content(parse_card_certificate(bytes(raw)), material.ca.public_key)

    def test_truncated_and_wrong_type(self) -> None:
        """A short certificate or a CA certificate passed as a card one: format errors."""
        material = pki()
        with pytest.raises(CertificateFormatError, match="315 bytes"):
            parse_card_certificate(material.card_certificate()[:-1])
        with pytest.raises(CertificateFormatError, match="384 bytes"):
            parse_card_certificate(material.ca_certificate)


class TestKeyReference:
    """29 bytes: AID size, AID padded to 16, serial, key id."""

    def test_parts(self) -> None:
        """The test root's reference spells TESTPKIROOT and shows its parts."""
        ref = TEST_ROOT_REFERENCE
        assert len(ref.raw) == 29 and ref.raw[0] == 11 and ref.aid == b"TESTPKIROOT"
        assert ref.serial == bytes(7) + b"\x01" and ref.key_id == b"\x00\x00\x00\x01"
        with pytest.raises(ValueError, match="29 bytes"):
            KeyReference(bytes(28))
