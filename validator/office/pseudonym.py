# SPDX-License-Identifier: Apache-2.0
"""Pseudonymised card serials: the office key file and the keyed hash (issue 20, privacy).

A card serial becomes ``ps-`` followed by 32 hex digits: the first 16 bytes (128 bits) of
HMAC-SHA-256(office key, ``calypso-card-serial/v1`` NUL serial), the serial in upper-case hex so
that the same card always gives the same pseudonym whatever case a journal wrote it in. One key
gives one pseudonym per card (journeys stay linkable); another key gives unrelated ones; without
the key a pseudonym cannot be turned back into a serial, nor computed from one. 128 bits keep
accidental collisions out of reach (about 2**64 cards for an even chance of one).

The office key file holds at least 32 random bytes as hex (``openssl rand -hex 32``), mode 0600,
and is refused as the journal key file is (validator.journal.keyfile.read_hex_key). A database
that stores pseudonyms keeps the key's ``key_id`` (an HMAC of a fixed label, not the key), so
that a run with another key is refused instead of writing pseudonyms that do not link.

An entry stored pseudonymised (:meth:`Pseudonymiser.entry`) keeps what replay needs to decide
again (records read, writes, decision, debit) but loses its APDU ``trace`` (the serial is in the
Select Application answer and in the SAM's Select Diversifier), a PKI tap's card certificate
id (an unkeyed hash of a certificate that names the card: null), and every string still holding
the serial has it replaced by the pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

from validator.journal.keyfile import read_hex_key
from yamlconfig import ConfigError

__all__ = [
    "MIN_OFFICE_KEY_BYTES",
    "OfficeKeyError",
    "Pseudonymiser",
    "read_office_key",
]

MIN_OFFICE_KEY_BYTES = 32  # 256 bits: the key is the only secret between a pseudonym and a card
PREFIX = "ps-"
_DIGITS = 32  # hex digits kept: 16 bytes of the HMAC
_LABEL = b"calypso-card-serial/v1\x00"
_KEY_ID_LABEL = b"calypso-office-key-id/v1"
_PSEUDONYM = re.compile(r"ps-[0-9a-f]{32}")


class OfficeKeyError(ConfigError):
    """The office key file is missing, readable by others, or not a usable hex key."""

    what = "office key file"


def read_office_key(path: Path) -> bytes:
    """Check and read the office key file; OfficeKeyError (file and reason) if unusable."""
    return read_hex_key(path, "office_key_file", MIN_OFFICE_KEY_BYTES, OfficeKeyError)


def is_pseudonym(value: object) -> bool:
    """Whether ``value`` has the form of a pseudonym (``ps-`` and 32 lower-case hex digits)."""
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


class Pseudonymiser:
    """The keyed hash of card serials under one office key (the key is never shown)."""

    __slots__ = ("_cache", "_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_OFFICE_KEY_BYTES:
            raise ValueError(f"an office key has at least {MIN_OFFICE_KEY_BYTES} bytes")
        self._key = key
        self._cache: dict[str, str] = {}
        # Names the key in the database without revealing it (nor any pseudonym).
        self.key_id = hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Pseudonymiser(key_id={self.key_id})"

    def card(self, serial: str | None) -> str | None:
        """The pseudonym of a card serial (None stays None; a pseudonym is kept as it is)."""
        if serial is None or is_pseudonym(serial):
            return serial
        found = self._cache.get(serial)
        if found is None:
            mac = hmac.new(self._key, _LABEL + serial.upper().encode("utf-8"), hashlib.sha256)
            found = PREFIX + mac.hexdigest()[:_DIGITS]
            if len(self._cache) < 100_000:  # a day of one network's cards, bounded
                self._cache[serial] = found
        return found

    def entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A copy of a journal entry with no clear card serial: card pseudonymised, no trace."""
        serial = entry.get("card")
        out = {k: v for k, v in entry.items() if k != "trace"}
        pki = out.get("pki")
        if isinstance(pki, dict) and "card_certificate" in pki:
            # A PKI tap names its card certificate by an unkeyed hash of it: anyone who reads
            # the card's certificate could find the card's taps again. Gone, as the trace.
            out["pki"] = {**pki, "card_certificate": None}
        if isinstance(serial, str) and serial and not is_pseudonym(serial):
            pseudonym = self.card(serial)
            assert pseudonym is not None  # noqa: S101 - a serial was given
            out = _scrub(out, serial.upper(), pseudonym)
            out["card"] = pseudonym
        return out


def _scrub(value: Any, serial: str, pseudonym: str) -> Any:
    """``value`` with every occurrence of ``serial`` (any case) in its strings replaced."""
    if isinstance(value, str):
        return (
            re.sub(re.escape(serial), pseudonym, value, flags=re.IGNORECASE)
            if serial in value.upper()
            else value
        )
    if isinstance(value, dict):
        return {k: _scrub(v, serial, pseudonym) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, serial, pseudonym) for v in value]
    return value
