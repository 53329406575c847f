# SPDX-License-Identifier: Apache-2.0
"""The PKI session signature: ECDSA P-256 with SHA-256 over the signed stream.

Signed data (reference/calypso-pki.md, "Session"; Keyple's AsymmetricCryptoCardTransactionManager
Adapter): the byte 10h, then for each APDU of the session, from the Open Secure Session command
and its answer onwards, one length byte and the bytes, commands and answers in order; a case-4
command loses its Le byte; answers keep their status word; the Close command is not included.
The card answers Close with the 64-byte signature r || s (r and s big-endian, 32 bytes each).

The stream keeps a running SHA-256, so a verifier never holds the whole session; ``message``
keeps the bytes too, for the journal and for tests (a few hundred bytes per tap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

STREAM_START = 0x10  # the constant first byte of the signed data (Keyple: "requirement R203")
PUBLIC_KEY_SIZE = 64  # X || Y, 32 bytes each
SIGNATURE_SIZE = 64  # r || s
_CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True, slots=True)
class CardPublicKey:
    """A card's ECC P-256 public key, 64 bytes X || Y (ValueError when not on the curve)."""

    raw: bytes
    key: ec.EllipticCurvePublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise ValueError(f"a card public key is {PUBLIC_KEY_SIZE} bytes, not {len(self.raw)}")
        x = int.from_bytes(self.raw[:32], "big")
        y = int.from_bytes(self.raw[32:], "big")
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        object.__setattr__(self, "key", key)

    @classmethod
    def of(cls, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> CardPublicKey:
        """The 64-byte form of a ``cryptography`` P-256 key (its public part)."""
        public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
        numbers = public.public_numbers()
        return cls(numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big"))

    def hex(self) -> str:
        """X || Y in upper-case hex."""
        return self.raw.hex().upper()


def card_private_key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key of a 32-byte scalar (ValueError when out of range)."""
    if len(scalar) != 32:
        raise ValueError("a P-256 private key is 32 bytes")
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


def stream_item(apdu: bytes, *, command: bool) -> bytes:
    """The form of an APDU in the signed stream: a case-4 command loses its Le (Keyple)."""
    if command and len(apdu) > 5 and apdu[4] == len(apdu) - 6:
        return apdu[:-1]
    return apdu


@dataclass
class SignedStream:
    """The data a PKI session signature covers, built as the session runs."""

    _hash: hashlib._Hash = field(default_factory=lambda: hashlib.sha256(bytes((STREAM_START,))))
    _message: bytearray = field(default_factory=lambda: bytearray((STREAM_START,)))

    def add(self, item: bytes) -> None:
        """Append one item (a command already in stream form, or an answer with its SW)."""
        if not 1 <= len(item) <= 255:
            raise ValueError(f"a signed-stream item is 1 to 255 bytes, not {len(item)}")
        chunk = bytes((len(item),)) + item
        self._hash.update(chunk)
        self._message += chunk

    def add_exchange(self, command: bytes, response: bytes) -> None:
        """Append a command (its Le dropped when case 4) and the card's answer (data + SW)."""
        self.add(stream_item(command, command=True))
        self.add(response)

    @classmethod
    def of(cls, exchanges: Iterable[tuple[bytes, bytes]]) -> SignedStream:
        """The stream of a session's exchanges, from the Open to the last before the Close."""
        stream = cls()
        for command, response in exchanges:
            stream.add_exchange(command, response)
        return stream

    @property
    def message(self) -> bytes:
        """The signed data so far."""
        return bytes(self._message)

    def digest(self) -> bytes:
        """SHA-256 of the signed data so far."""
        return self._hash.copy().digest()


def sign_session(private_key: ec.EllipticCurvePrivateKey, stream: SignedStream) -> bytes:
    """The card's signature r || s over the stream (deterministic, RFC 6979: reproducible)."""
    algorithm = ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True)
    r, s = decode_dss_signature(private_key.sign(stream.digest(), algorithm))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_session_signature(
    public_key: CardPublicKey, stream: SignedStream, signature: bytes
) -> bool:
    """Whether ``signature`` (r || s) is the card's over the stream; never raises on bad input.

    A signature of the wrong size, or with r or s out of 1..n-1, is simply not valid.
    """
    if len(signature) != SIGNATURE_SIZE:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < _CURVE_ORDER and 0 < s < _CURVE_ORDER):
        return False
    try:
        public_key.key.verify(
            encode_dss_signature(r, s), stream.digest(), ec.ECDSA(Prehashed(hashes.SHA256()))
        )
    except InvalidSignature:
        return False
    return True
