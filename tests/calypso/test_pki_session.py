# SPDX-License-Identifier: Apache-2.0
"""The PKI session signature against reference/csim1-vectors.txt ("PKI mode session signature")."""

from __future__ import annotations

from calypso_terminal import h

from calypso.pki.session import (
    CardPublicKey,
    SignedStream,
    card_private_key,
    sign_session,
    stream_item,
    verify_session_signature,
)

# The vector's card key: RFC 6979 A.2.5 P-256 private key, and its public X || Y.
VECTOR_SCALAR = h("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
VECTOR_PUBLIC = h(
    "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
    "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
)
OPEN = h("008A0003 09 00 0011223344556677 00")
OPEN_ANSWER = h("08 A000000291FF9101 0000000011223344 00 0304907A1B2C3D4E 00 0000 00 9000")
READ = h("00B2010C01")
READ_ANSWER = h("11 9000")
VECTOR_MESSAGE = h(
    "100E008A0003090000112233445566772008A000000291FF91010000000011223344000304907A1B2C3D4E"
    "0000000090000500B2010C0103119000"
)
VECTOR_SIGNATURE = h(
    "C6AF08C732534655F72A78469FB31390A036DCD73AF3D47BD4C5553066CA461F"
    "DFB79711433595C98E675FDA074DFA4554B3C426B2BF01FAF835097ABCD427E9"
)


def vector_stream() -> SignedStream:
    """The vector's session: Open (no read) and one Read Record."""
    return SignedStream.of([(OPEN, OPEN_ANSWER), (READ, READ_ANSWER)])


class TestSignedStream:
    """The signed data: 10h, then length-prefixed commands (Le dropped) and answers."""

    def test_vector_message(self) -> None:
        """The stream of the vector's exchanges is the vector's signed message, byte for byte."""
        assert vector_stream().message == VECTOR_MESSAGE

    def test_case4_command_loses_le(self) -> None:
        """A case-4 command drops its Le; a case-2 one (Le only) keeps it, answers keep SW."""
        assert stream_item(OPEN, command=True) == OPEN[:-1]
        assert stream_item(READ, command=True) == READ
        assert stream_item(h("0100 9000"), command=False) == h("0100 9000")

    def test_digest_is_sha256_of_message(self) -> None:
        """The running hash equals SHA-256 of the whole message (what ECDSA signs)."""
        import hashlib

        stream = vector_stream()
        assert stream.digest() == hashlib.sha256(VECTOR_MESSAGE).digest()

    def test_item_length_bounds(self) -> None:
        """An empty item or one past 255 bytes cannot be length-prefixed: ValueError."""
        stream = SignedStream()
        for bad in (b"", bytes(256)):
            try:
                stream.add(bad)
            except ValueError:
                continue
            raise AssertionError(f"{len(bad)}-byte item accepted")


class TestSessionSignature:
    """ECDSA P-256 / SHA-256 over the stream, r || s."""

    def test_vector_public_key(self) -> None:
        """The vector's private key gives the vector's public X || Y."""
        assert CardPublicKey.of(card_private_key(VECTOR_SCALAR)).raw == VECTOR_PUBLIC

    def test_card_signs_the_vector(self) -> None:
        """Deterministic signing (RFC 6979) reproduces the vector's r || s."""
        assert sign_session(card_private_key(VECTOR_SCALAR), vector_stream()) == VECTOR_SIGNATURE

    def test_vector_signature_verifies(self) -> None:
        """The vector's signature verifies with the vector's public key."""
        key = CardPublicKey(VECTOR_PUBLIC)
        assert verify_session_signature(key, vector_stream(), VECTOR_SIGNATURE)

    def test_any_changed_byte_fails(self) -> None:
        """A changed answer byte, a changed signature byte or a truncated one: not valid."""
        key = CardPublicKey(VECTOR_PUBLIC)
        altered = SignedStream.of([(OPEN, OPEN_ANSWER), (READ, h("12 9000"))])
        assert not verify_session_signature(key, altered, VECTOR_SIGNATURE)
        forged = bytes([VECTOR_SIGNATURE[0] ^ 1]) + VECTOR_SIGNATURE[1:]
        assert not verify_session_signature(key, vector_stream(), forged)
        assert not verify_session_signature(key, vector_stream(), VECTOR_SIGNATURE[:63])

    def test_zero_or_oversized_halves_fail(self) -> None:
        """r = 0, s = 0 or r at or above the curve order: refused without raising."""
        key = CardPublicKey(VECTOR_PUBLIC)
        for bad in (bytes(32) + VECTOR_SIGNATURE[32:], VECTOR_SIGNATURE[:32] + bytes(32)):
            assert not verify_session_signature(key, vector_stream(), bad)
        assert not verify_session_signature(key, vector_stream(), b"\xff" * 64)

    def test_other_key_fails(self) -> None:
        """Another card's key does not verify the vector's signature."""
        other = CardPublicKey.of(card_private_key(bytes(31) + b"\x07"))
        assert not verify_session_signature(other, vector_stream(), VECTOR_SIGNATURE)

    def test_point_off_the_curve_is_refused(self) -> None:
        """A 64-byte value that is not a P-256 point is not a public key: ValueError."""
        try:
            CardPublicKey(VECTOR_PUBLIC[:63] + bytes([VECTOR_PUBLIC[63] ^ 1]))
        except ValueError:
            return
        raise AssertionError("a point off the curve was accepted")
