# SPDX-License-Identifier: Apache-2.0
"""ISO/IEC 9796-2 scheme 2 with message recovery, SHA-256, salt length 0, implicit trailer BCh.

The signature scheme of the Calypso CA and card certificates, as BouncyCastle's
``ISO9796d2PSSSigner(RSAEngine, SHA256Digest, 0, true)`` implements it (reference/calypso-pki.md,
"Certificates"). With a k-byte modulus, the message is M1 (recoverable, k - 34 bytes at most)
then M2 (sent in clear). The signed block, k bytes, is::

    DB = 00..00 01 M1   (k - 33 bytes, masked with MGF1-SHA-256(H), top bit cleared)
    H  = SHA-256(bit length of M1 as 8 bytes || M1 || SHA-256(M2))   (32 bytes)
    BC                  (the implicit trailer)

``cryptography`` offers no such scheme: verification is a raw RSA public operation (``pow``) and
SHA-256; signing (test material only) is the same steps reversed with the private key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from calypso.pki.errors import SignatureRecoveryError

HASH_SIZE = 32
TRAILER = 0xBC
RSA_EXPONENT = 65537
RSA_MODULUS_SIZE = 256  # RSA-2048: the PCA and every CA key


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """An RSA public key: the modulus and the public exponent (65537 in Calypso)."""

    modulus: int
    exponent: int = RSA_EXPONENT

    @classmethod
    def from_modulus(cls, modulus: bytes, exponent: int = RSA_EXPONENT) -> RsaPublicKey:
        """Build from the big-endian modulus bytes."""
        return cls(int.from_bytes(modulus, "big"), exponent)

    @classmethod
    def of(cls, key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> RsaPublicKey:
        """The public part of a ``cryptography`` RSA key."""
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        numbers = public.public_numbers()
        return cls(numbers.n, numbers.e)

    @property
    def size(self) -> int:
        """Modulus size in bytes."""
        return (self.modulus.bit_length() + 7) // 8

    def modulus_bytes(self) -> bytes:
        """The modulus, big-endian, ``size`` bytes."""
        return self.modulus.to_bytes(self.size, "big")


def mgf1_sha256(seed: bytes, length: int) -> bytes:
    """MGF1 with SHA-256 (PKCS #1): SHA-256(seed || counter) blocks, counter 4 bytes from 0."""
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def message_hash(recoverable: bytes, clear: bytes) -> bytes:
    """H = SHA-256(C || M1 || SHA-256(M2)), C = bit length of M1 on 8 bytes (salt empty)."""
    bit_length = (8 * len(recoverable)).to_bytes(8, "big")
    return hashlib.sha256(bit_length + recoverable + hashlib.sha256(clear).digest()).digest()


def recover_message(signature: bytes, key: RsaPublicKey, clear: bytes) -> bytes:
    """Verify a signature over M1 || ``clear`` and return the recovered M1.

    Raises:
        SignatureRecoveryError: wrong size, a value not below the modulus, no BCh trailer, no
            01h separator, or a hash that does not match.
    """
    size = key.size
    if len(signature) != size:
        raise SignatureRecoveryError(f"signature of {len(signature)} bytes for a {size}-byte key")
    value = int.from_bytes(signature, "big")
    if value >= key.modulus:
        raise SignatureRecoveryError("signature value not below the modulus")
    block = pow(value, key.exponent, key.modulus).to_bytes(size, "big")
    if block[-1] != TRAILER:
        raise SignatureRecoveryError("no BCh trailer (wrong key or not a signature)")
    masked, digest = block[: size - HASH_SIZE - 1], block[size - HASH_SIZE - 1 : -1]
    db = bytearray(a ^ b for a, b in zip(masked, mgf1_sha256(digest, len(masked)), strict=True))
    db[0] &= 0x7F
    start = 0
    while start < len(db) and db[start] == 0x00:
        start += 1
    if start == len(db) or db[start] != 0x01:
        raise SignatureRecoveryError("no 01h separator before the recovered message")
    recovered = bytes(db[start + 1 :])
    if not hmac.compare_digest(digest, message_hash(recovered, clear)):
        raise SignatureRecoveryError("message hash mismatch (the certificate was altered)")
    return recovered


def sign_with_recovery(recoverable: bytes, clear: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """Sign M1 || M2 so that M1 is recovered from the signature (test material only).

    M1 fills the block: with a 256-byte key it must be at most 222 bytes (Calypso: exactly 222).
    """
    numbers = private_key.private_numbers()
    public = numbers.public_numbers
    size = (public.n.bit_length() + 7) // 8
    room = size - HASH_SIZE - 2
    if len(recoverable) > room:
        raise ValueError(f"at most {room} recoverable bytes with this key")
    digest = message_hash(recoverable, clear)
    db = bytearray(bytes(room - len(recoverable)) + b"\x01" + recoverable)
    masked = bytearray(a ^ b for a, b in zip(db, mgf1_sha256(digest, len(db)), strict=True))
    masked[0] &= 0x7F
    block = int.from_bytes(bytes(masked) + digest + bytes((TRAILER,)), "big")
    # RSA private operation with the CRT (the same value as pow(block, d, n), four times faster).
    m1 = pow(block, numbers.dmp1, numbers.p)
    m2 = pow(block, numbers.dmq1, numbers.q)
    h = numbers.iqmp * (m1 - m2) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")
