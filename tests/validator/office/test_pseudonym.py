# SPDX-License-Identifier: Apache-2.0
"""The office key file and the keyed hash of card serials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from validator.journal.entry import JournalEntry
from validator.office.pseudonym import (
    OfficeKeyError,
    Pseudonymiser,
    is_pseudonym,
    read_office_key,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
SERIAL = "00000000C0FFEE02"


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    """A key file holding ``text`` with ``mode``."""
    path = tmp_path / "office.key"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


class TestOfficeKeyFile:
    """The office key file is refused as the journal key file is, with 32 bytes at least."""

    def test_reads_hex(self, tmp_path: Path) -> None:
        """A 0600 file of 32 bytes as hex (whitespace ignored) reads as its bytes."""
        assert read_office_key(key_file(tmp_path, KEY.hex()[:20] + "\n " + KEY.hex()[20:])) == KEY

    @pytest.mark.parametrize(
        ("text", "mode", "reason"),
        [
            (KEY.hex(), 0o640, "group or others"),
            (KEY.hex(), 0o604, "group or others"),
            ("", 0o600, "empty"),
            ("  \n", 0o600, "empty"),
            (KEY.hex()[:62], 0o600, "at least 32 bytes"),
            ("zz" * 32, 0o600, "not hex"),
        ],
        ids=["group", "world", "empty", "blank", "short", "not-hex"],
    )
    def test_refused(self, tmp_path: Path, text: str, mode: int, reason: str) -> None:
        """Group/world-readable, empty, short or non-hex: refused with the reason, no key byte."""
        with pytest.raises(OfficeKeyError) as caught:
            read_office_key(key_file(tmp_path, text, mode))
        message = str(caught.value)
        assert reason in message and "office key file" in message
        assert KEY.hex()[:16] not in message

    def test_missing(self, tmp_path: Path) -> None:
        """A missing file is refused, named."""
        with pytest.raises(OfficeKeyError, match="missing"):
            read_office_key(tmp_path / "nope.key")


class TestPseudonymiser:
    """HMAC-SHA-256 truncated to 128 bits: stable for one key, different across keys."""

    def test_documented_construction(self) -> None:
        """The pseudonym is ps- and the first 32 hex digits of HMAC(key, label NUL SERIAL)."""
        import hashlib
        import hmac

        mac = hmac.new(KEY, b"calypso-card-serial/v1\x00" + SERIAL.encode(), hashlib.sha256)
        assert Pseudonymiser(KEY).card(SERIAL) == "ps-" + mac.hexdigest()[:32]

    def test_stable_and_case_blind(self) -> None:
        """The same card gives the same pseudonym, in any case, from another instance too."""
        one = Pseudonymiser(KEY).card(SERIAL)
        assert one == Pseudonymiser(KEY).card(SERIAL.lower()) and is_pseudonym(one)

    def test_keys_and_cards_differ(self) -> None:
        """Another key or another card gives another pseudonym."""
        base = Pseudonymiser(KEY)
        assert base.card(SERIAL) != Pseudonymiser(OTHER).card(SERIAL)
        assert base.card(SERIAL) != base.card("00000000C0FFEE03")
        assert base.key_id != Pseudonymiser(OTHER).key_id

    def test_short_key_refused(self) -> None:
        """A key shorter than 32 bytes is refused."""
        with pytest.raises(ValueError, match="32 bytes"):
            Pseudonymiser(KEY[:16])

    def test_key_not_in_repr(self) -> None:
        """The repr names the key id, never the key."""
        assert KEY.hex() not in repr(Pseudonymiser(KEY))

    def test_entry_keeps_no_serial(self) -> None:
        """An entry loses its trace and every copy of the serial; the rest is kept."""
        entry = {
            "seq": 3,
            "card": SERIAL,
            "debit": 1,
            "trace": {"card": [{"r": "6F23C708" + SERIAL + "9000"}], "sam": []},
            "explanation": f"card {SERIAL.lower()} debited",
            "state_read": {"07:1": "0100"},
        }
        out = Pseudonymiser(KEY).entry(entry)
        assert SERIAL not in json.dumps(out).upper()
        assert "trace" not in out and out["card"] == Pseudonymiser(KEY).card(SERIAL)
        assert out["state_read"] == {"07:1": "0100"} and out["debit"] == 1
        assert entry["card"] == SERIAL  # the input is not changed

    def test_pki_entry_keeps_no_certificate_id(self) -> None:
        """A PKI tap's card certificate id (an unkeyed name of the card) goes; the CA stays."""
        entry = {
            "seq": 4,
            "card": SERIAL,
            "pki": {
                "ca": "09" + "AB" * 28,
                "card_certificate": "BB9FA5AE7D80D097DA5FAC247F08108C",
                "certificate_index": 1,
                "cached": True,
                "notices": [],
            },
        }
        out = Pseudonymiser(KEY).entry(entry)
        assert "BB9FA5AE7D80D097DA5FAC247F08108C" not in json.dumps(out)
        assert JournalEntry.from_json({"time": "t", "prev": "p", **out}).pki is not None
        assert out["pki"]["ca"] == "09" + "AB" * 28 and out["pki"]["cached"] is True
        assert "card_certificate" in entry["pki"]  # the input is not changed
