# SPDX-License-Identifier: Apache-2.0
"""CSIM1, the open simulation crypto shared by the card emulator and the software SAM.

Spec: ``shared/reference/csim1.md`` section 3. AES-128 throughout: CMAC (RFC 4493), the
SP 800-108 counter-mode KDF with CMAC as PRF, AES-CTR for the confidential session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

LABEL_DIV = b"CSIM1 DIV"
LABEL_SES = b"CSIM1 SES"
LABEL_PIN = b"CSIM1 PIN"
LABEL_KEY = b"CSIM1 KEY"
LABEL_SV = b"CSIM1 SV"

PURPOSE_CLOSE = 0x01
PURPOSE_MUTUAL_AUTH = 0x02

MODE_REGULAR = 0x00
MODE_EXTENDED = 0x01

KEY_LENGTH = 16


def cmac(key: bytes, message: bytes) -> bytes:
    """AES-CMAC (RFC 4493), 16 bytes."""
    mac = CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


def _kdf_fixed(label: bytes, context: bytes, length: int) -> bytes:
    """The KDF's fixed input after the counter: label || 00 || context || [L]32 (L in bits)."""
    return label + b"\x00" + context + (length * 8).to_bytes(4, "big")


def kdf(key: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """SP 800-108r1 counter-mode KDF with AES-CMAC: counter(4) || label || 00 || ctx || [L]32."""
    fixed = _kdf_fixed(label, context, length)
    blocks = (length + 15) // 16
    out = b"".join(cmac(key, i.to_bytes(4, "big") + fixed) for i in range(1, blocks + 1))
    return out[:length]


def diversifier8(diversifier: bytes) -> bytes:
    """SN8 of CSIM1 section 3.2: the Select Diversifier value left-padded with zeros to 8 bytes."""
    if not 1 <= len(diversifier) <= 8:
        raise ValueError(f"diversifier must be 1 to 8 bytes, got {len(diversifier)}")
    return diversifier.rjust(8, b"\x00")


def diversify(master_key: bytes, kif: int, kvc: int, diversifier: bytes) -> bytes:
    """K_card = KDF(MK, "CSIM1 DIV", KIF || KVC || SN8, 16) (CSIM1 section 3.2)."""
    _check_key(master_key)
    context = bytes((kif, kvc)) + diversifier8(diversifier)
    return kdf(master_key, LABEL_DIV, context, KEY_LENGTH)


def _session_context(
    card_key: bytes, extended: bool, kif: int, kvc: int, card_challenge: bytes, tc: bytes
) -> bytes:
    """The KDF context of the session keys: mode || KIF || KVC || CC || TC (section 3.3)."""
    _check_key(card_key)
    size = 8 if extended else 4
    if len(card_challenge) != size or len(tc) != size:
        raise ValueError(f"challenges must be {size} bytes in this mode")
    mode = MODE_EXTENDED if extended else MODE_REGULAR
    return bytes((mode, kif, kvc)) + card_challenge + tc


def session_keys(
    card_key: bytes,
    *,
    extended: bool,
    kif: int,
    kvc: int,
    card_challenge: bytes,
    terminal_challenge: bytes,
) -> tuple[bytes, bytes]:
    """SK_MAC, SK_ENC = KDF(K_card, "CSIM1 SES", mode || KIF || KVC || CC || TC, 32) (3.3)."""
    context = _session_context(card_key, extended, kif, kvc, card_challenge, terminal_challenge)
    both = kdf(card_key, LABEL_SES, context, 2 * KEY_LENGTH)
    return both[:KEY_LENGTH], both[KEY_LENGTH:]


def session_mac_key(
    card_key: bytes,
    *,
    extended: bool,
    kif: int,
    kvc: int,
    card_challenge: bytes,
    terminal_challenge: bytes,
) -> bytes:
    """SK_MAC alone, as ``session_keys`` gives it, at half the cost: a verifier needs no SK_ENC.

    The counter-mode KDF's first block is SK_MAC; its fixed data still says L = 256 bits, so
    the block is the same as when both keys are derived (SP 800-108r1 section 4.1)."""
    context = _session_context(card_key, extended, kif, kvc, card_challenge, terminal_challenge)
    return cmac(card_key, b"\x00\x00\x00\x01" + _kdf_fixed(LABEL_SES, context, 2 * KEY_LENGTH))


def frame(item: bytes) -> bytes:
    """One length byte then the item (1..255 bytes), as in Digest Update Multiple."""
    if not 1 <= len(item) <= 255:
        raise ValueError(f"a digest item must be 1 to 255 bytes, got {len(item)}")
    return bytes((len(item),)) + item


def digest_item(apdu: bytes) -> bytes:
    """The form of a command fed to the session MAC: a case-4 APDU loses its Le (CL-C4-MAC.1)."""
    if len(apdu) > 5 and apdu[4] == len(apdu) - 6:
        return apdu[:-1]
    return apdu


def ctr_transform(sk_enc: bytes, index: int, data: bytes) -> bytes:
    """AES-128-CTR with counter block [index]32 || 0^96 (section 3.5); encrypts and decrypts."""
    counter = index.to_bytes(4, "big") + bytes(12)
    encryptor = Cipher(algorithms.AES(sk_enc), modes.CTR(counter)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def macs_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison for every MAC check."""
    return hmac.compare_digest(a, b)


@dataclass
class SessionMac:
    """The running transcript of one secure session and the MAC over it (section 3.4).

    The OSS data-out is item 0; every in-session command (Le dropped when case 4) and every
    response (with SW) follows as one framed item each.
    """

    sk_mac: bytes = field(repr=False)
    sk_enc: bytes = field(repr=False)
    extended: bool
    transcript: bytearray = field(default_factory=bytearray, repr=False)
    items: int = 0
    auth_sequence: int = 0

    @classmethod
    def start(
        cls,
        card_key: bytes,
        *,
        extended: bool,
        kif: int,
        kvc: int,
        open_data_out: bytes,
        terminal_challenge: bytes,
    ) -> SessionMac:
        """Derive the session keys from the Open Secure Session data-out and digest it as item 0."""
        size = 8 if extended else 4
        sk_mac, sk_enc = session_keys(
            card_key,
            extended=extended,
            kif=kif,
            kvc=kvc,
            card_challenge=open_data_out[:size],
            terminal_challenge=terminal_challenge[:size],
        )
        session = cls(sk_mac, sk_enc, extended)
        session.add(open_data_out)
        return session

    @property
    def half(self) -> int:
        """Bytes in each half of the MAC: 4 regular, 8 extended."""
        return 8 if self.extended else 4

    def add(self, item: bytes) -> None:
        """Append one framed item (an APDU already in digest form) to the transcript."""
        self.transcript += frame(item)
        self.items += 1

    def full_mac(self, purpose: int = PURPOSE_CLOSE, sequence: int = 0) -> bytes:
        """M = CMAC(SK_MAC, X || 00 || purpose || seq)."""
        return cmac(self.sk_mac, bytes(self.transcript) + bytes((0, purpose, sequence)))

    def terminal_mac(self, purpose: int = PURPOSE_CLOSE, sequence: int = 0) -> bytes:
        """The terminal's half: the first 4 (regular) or 8 (extended) bytes of M."""
        return self.full_mac(purpose, sequence)[: self.half]

    def card_mac(self, purpose: int = PURPOSE_CLOSE, sequence: int = 0) -> bytes:
        """The card's half: the next 4 (regular) or 8 (extended) bytes of M."""
        return self.full_mac(purpose, sequence)[self.half : 2 * self.half]


def _check_key(key: bytes) -> None:
    if len(key) != KEY_LENGTH:
        # Never echo the key itself: only its length.
        raise ValueError(f"AES-128 key expected, got {len(key)} bytes")


# --- PIN, Change Key and Stored Value derivations (csim1.md 3.6-3.8) ---------------------

PURPOSE_SV = 0x03
PIN_LENGTH = 4
CARD_CHALLENGE_LENGTH = 8
KEY_BLOB_ALGORITHM = 0x90  # the ALG byte Keyple passes to Card Generate Key (section 3 table)
NULL_KEY = bytes(KEY_LENGTH)  # the "null key" that ciphers a key for a blank card


def pin_key(base_key: bytes, card_challenge: bytes) -> bytes:
    """K_PIN = KDF(K_B, "CSIM1 PIN", CC8, 16) (csim1.md 3.6)."""
    _check_key(base_key)
    _check_card_challenge(card_challenge)
    return kdf(base_key, LABEL_PIN, card_challenge, KEY_LENGTH)


def cipher_pin_presentation(k_pin: bytes, pin: bytes) -> bytes:
    """Verify PIN block: CMAC(K_PIN, 01h || PIN4)[0:8] (csim1.md 3.6)."""
    _check_pin(pin)
    return cmac(k_pin, b"\x01" + pin)[:8]


def cipher_pin_modification(k_pin: bytes, current_pin: bytes, new_pin: bytes) -> bytes:
    """Change PIN block: AES-ECB(K_PIN, CUR4 || NEW4 || 02h || 0^7) (csim1.md 3.6)."""
    _check_pin(current_pin)
    _check_pin(new_pin)
    block = current_pin + new_pin + b"\x02" + bytes(7)
    encryptor = Cipher(algorithms.AES(k_pin), modes.ECB()).encryptor()  # noqa: S305 - one block
    return encryptor.update(block) + encryptor.finalize()


def decipher_pin_modification(k_pin: bytes, block: bytes) -> tuple[bytes, bytes] | None:
    """Card side of Change PIN: (CUR4, NEW4), or None if the 02h || 0^7 redundancy is wrong."""
    if len(block) != 16:
        return None
    decryptor = Cipher(algorithms.AES(k_pin), modes.ECB()).decryptor()  # noqa: S305 - one block
    plain = decryptor.update(block) + decryptor.finalize()
    if plain[8:] != b"\x02" + bytes(7):
        return None
    return plain[:4], plain[4:8]


def key_encryption_key(
    issuer_key: bytes, card_challenge: bytes, new_kif: int, new_kvc: int
) -> bytes:
    """KEK = KDF(K_iss, "CSIM1 KEY", CC8 || newKIF || newKVC, 16) (csim1.md 3.7)."""
    _check_key(issuer_key)
    _check_card_challenge(card_challenge)
    return kdf(issuer_key, LABEL_KEY, card_challenge + bytes((new_kif, new_kvc)), KEY_LENGTH)


def wrap_card_key(kek: bytes, new_kif: int, new_kvc: int, new_key: bytes) -> bytes:
    """Change Key blob: AES-KW(KEK, newKIF || newKVC || 90h || 0^5 || K_new), 32 bytes (3.7)."""
    _check_key(new_key)
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap  # appended section

    plain = bytes((new_kif, new_kvc, KEY_BLOB_ALGORITHM)) + bytes(5) + new_key
    return aes_key_wrap(kek, plain)


def unwrap_card_key(kek: bytes, blob: bytes) -> tuple[int, int, bytes] | None:
    """Card side of Change Key: (newKIF, newKVC, K_new), or None if the blob does not unwrap."""
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

    try:
        plain = aes_key_unwrap(kek, blob)
    except (InvalidUnwrap, ValueError):
        return None
    if len(plain) != 24 or plain[2] != KEY_BLOB_ALGORITHM or plain[3:8] != bytes(5):
        return None
    return plain[0], plain[1], plain[8:]


def sv_key(card_key: bytes, *, extended: bool, kif: int, kvc: int) -> bytes:
    """K_SV = KDF(K_card, "CSIM1 SV", mode || KIF || KVC, 16) (csim1.md 3.8)."""
    _check_key(card_key)
    mode = MODE_EXTENDED if extended else MODE_REGULAR
    return kdf(card_key, LABEL_SV, bytes((mode, kif, kvc)), KEY_LENGTH)


def sv_mac(k_sv: bytes, sv_get: bytes, sv_command: bytes, *, extended: bool) -> tuple[bytes, bytes]:
    """(hi, lo) of M = CMAC(K_SV, frame(A) || frame(B) || 00 03 00) (csim1.md 3.8).

    ``sv_get`` is A (SV Get header INS P1 P2 Le, then the full response with SW); ``sv_command``
    is B (INS P1 P2 then the SV command data without the terminal SV MAC). Regular: hi 5 bytes,
    lo 3; extended: hi 10, lo 6.
    """
    full = cmac(k_sv, frame(sv_get) + frame(sv_command) + bytes((0, PURPOSE_SV, 0)))
    hi_size, lo_size = (10, 6) if extended else (5, 3)
    return full[:hi_size], full[hi_size : hi_size + lo_size]


def _check_pin(pin: bytes) -> None:
    if len(pin) != PIN_LENGTH:
        raise ValueError(f"a PIN is {PIN_LENGTH} bytes, got {len(pin)}")


def _check_card_challenge(challenge: bytes) -> None:
    if len(challenge) != CARD_CHALLENGE_LENGTH:
        raise ValueError(f"card challenge must be 8 bytes, got {len(challenge)}")
