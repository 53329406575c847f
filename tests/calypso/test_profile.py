# SPDX-License-Identifier: Apache-2.0
"""YAML card profiles: validation, typed errors, key hygiene and the demo fleet."""

from __future__ import annotations

from pathlib import Path

import pytest

from calypso.crypto import diversify
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, FileType, ProfileError, load_profile

FLEET = Path(__file__).parents[2] / "config" / "cards"
FLEET_NAMES = ("season_pass", "multi_trip", "expired", "empty", "wrong_keys")
SIM_DEBIT_MASTER = bytes.fromhex("202122232425262728292A2B2C2D2E2F")
CARD_KEY_HEX = "5EC2E75EC2E75EC2E75EC2E75EC2E75E"

MINIMAL = """\
serial: "0000000011223344"
keys:
  issuer: {kif: "21", kvc: "F0", key: "%s"}
  load: {kif: "27", kvc: "F0", master: "101112131415161718191A1B1C1D1E1F"}
  debit: {kif: "30", kvc: "F0", master: "202122232425262728292A2B2C2D2E2F"}
files:
  - {name: counters, sfi: 0x19, lid: "2069", type: counters, counters: [5, 0, 0x010203]}
  - {name: log, sfi: 0x08, lid: "2010", type: cyclic, records: 3, content: ["81 22"]}
"""


def write(tmp_path: Path, text: str, name: str = "card.yaml") -> Path:
    """Write a profile file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestLoadProfile:
    """Loading and defaults."""

    def test_minimal_profile(self, tmp_path: Path) -> None:
        """Defaults fill the AID, startup info and counter; content is padded to the record size."""
        profile = load_profile(write(tmp_path, MINIMAL % CARD_KEY_HEX))
        assert profile.aid == bytes.fromhex("315449432E49434131")
        assert profile.startup_info == bytes.fromhex("0A3C2005141001")
        counters, log = profile.files
        assert counters.type is FileType.COUNTERS
        assert counters.initial_records() == [bytes.fromhex("000005 000000 010203") + bytes(20)]
        assert log.initial_records() == [bytes.fromhex("8122") + bytes(27), bytes(29), bytes(29)]

    def test_key_or_master(self, tmp_path: Path) -> None:
        """A 'key' is used as is, a 'master' is diversified with the card serial."""
        profile = load_profile(write(tmp_path, MINIMAL % CARD_KEY_HEX))
        assert profile.keys.issuer.card_key(profile.serial) == bytes.fromhex(CARD_KEY_HEX)
        expected = diversify(SIM_DEBIT_MASTER, 0x30, 0xF0, profile.serial)
        assert profile.keys.debit.card_key(profile.serial) == expected

    @pytest.mark.parametrize("name", FLEET_NAMES)
    def test_fleet_profiles_load(self, name: str) -> None:
        """Every demo fleet profile loads and builds a card that answers Select."""
        card = CardEmulator.from_profile(FLEET / f"{name}.yaml")
        assert card.process(bytes.fromhex("00A4040009315449432E4943413100"))[-2:] == b"\x90\x00"

    def test_fleet_serials_differ(self) -> None:
        """Each fleet card has its own serial number."""
        serials = {load_profile(FLEET / f"{name}.yaml").serial for name in FLEET_NAMES}
        assert len(serials) == len(FLEET_NAMES)

    def test_wrong_keys_card_differs(self) -> None:
        """The wrong_keys card does not hold the simulation-master debit key."""
        profile = load_profile(FLEET / "wrong_keys.yaml")
        simulated = diversify(SIM_DEBIT_MASTER, 0x30, 0xF0, profile.serial)
        assert profile.keys.debit.card_key(profile.serial) != simulated


class TestProfileErrors:
    """Bad input raises ProfileError naming the file."""

    def test_yaml_syntax_error(self, tmp_path: Path) -> None:
        """A YAML syntax error names the file and the line."""
        path = write(tmp_path, 'serial: "00"\nkeys: [unclosed\nfiles: []\n', "broken.yaml")
        with pytest.raises(ProfileError) as info:
            load_profile(path)
        assert "broken.yaml" in str(info.value)
        assert info.value.line is not None
        assert f"broken.yaml:{info.value.line}:" in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a ProfileError, not an OSError."""
        with pytest.raises(ProfileError, match="absent.yaml"):
            load_profile(tmp_path / "absent.yaml")

    def test_not_a_mapping(self, tmp_path: Path) -> None:
        """A document that is not a mapping is refused."""
        with pytest.raises(ProfileError, match="mapping"):
            load_profile(write(tmp_path, "- 1\n- 2\n"))

    def test_invalid_field(self, tmp_path: Path) -> None:
        """A wrong serial length is reported with its field name."""
        text = (MINIMAL % CARD_KEY_HEX).replace('"0000000011223344"', '"0011"')
        with pytest.raises(ProfileError, match="serial must be 8 bytes"):
            load_profile(write(tmp_path, text))

    def test_unquoted_hex(self, tmp_path: Path) -> None:
        """Unquoted digits (read by YAML as an integer) are refused, asking for quotes."""
        text = (MINIMAL % CARD_KEY_HEX).replace('"0000000011223344"', "0000000011223344")
        with pytest.raises(ProfileError, match="serial: .*quoted hex"):
            load_profile(write(tmp_path, text))

    def test_content_too_long(self, tmp_path: Path) -> None:
        """A content record longer than the record size is refused."""
        text = (MINIMAL % CARD_KEY_HEX).replace('"81 22"', '"' + "11" * 30 + '"')
        with pytest.raises(ProfileError, match="longer than 29"):
            load_profile(write(tmp_path, text))

    def test_duplicate_sfi(self, tmp_path: Path) -> None:
        """Two files with the same SFI are refused."""
        text = (MINIMAL % CARD_KEY_HEX).replace("sfi: 0x08", "sfi: 0x19")
        with pytest.raises(ProfileError, match="same sfi"):
            load_profile(write(tmp_path, text))


class TestKeyHygiene:
    """Key material never shows in reprs or errors."""

    def test_repr_hides_keys(self, tmp_path: Path) -> None:
        """Neither the card key nor a master key appears in the profile's repr or str."""
        profile = load_profile(write(tmp_path, MINIMAL % CARD_KEY_HEX))
        for text in (repr(profile), str(profile), repr(profile.keys), str(profile.model_dump())):
            assert CARD_KEY_HEX.lower() not in text.lower()
            assert "202122232425" not in text

    def test_bad_key_not_echoed(self, tmp_path: Path) -> None:
        """A key of the wrong length is refused without quoting it."""
        bad = CARD_KEY_HEX[:-2]
        with pytest.raises(ProfileError) as info:
            load_profile(write(tmp_path, MINIMAL % bad))
        assert "16 bytes" in str(info.value)
        assert bad.lower() not in str(info.value).lower()
        assert info.value.__suppress_context__

    def test_bad_key_hex_not_echoed(self, tmp_path: Path) -> None:
        """A key that is not hex is refused without quoting it."""
        bad = "ZZ" + CARD_KEY_HEX[2:]
        with pytest.raises(ProfileError) as info:
            load_profile(write(tmp_path, MINIMAL % bad))
        assert bad[2:].lower() not in str(info.value).lower()

    def test_profile_model_direct(self) -> None:
        """Models can be built in code, keys given as bytes."""
        profile = CardProfile.model_validate(
            {
                "serial": "0000000011223344",
                "keys": {
                    slot: {"kif": "30", "kvc": "F0", "key": bytes(16)}
                    for slot in ("issuer", "load", "debit")
                },
            }
        )
        assert profile.keys.slot(3).card_key(profile.serial) == bytes(16)
