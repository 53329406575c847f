# SPDX-License-Identifier: Apache-2.0
"""Key file format extensions, permissions, and the authorised-keys policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from sam_vectors import SIM_KEYS

from sam.keys import KeyFileError, KeyRole, load_keys
from sam.policy import AuthorizedKeys, UnauthorizedKeyError, parse_key_reference

PROD_HEX = "8899AABBCCDDEEFF0011223344556677"
PROD_FILE = f"""\
keys:
  - kif: "30"
    kvc: "79"
    algorithm: AES128
    role: debit
    key: "{PROD_HEX}"
"""


def _write(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "prod-keys.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


class TestPermissions:
    """Production key files must be private; simulation files may be shared."""

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602])
    def test_shared_production_file_refused(self, tmp_path: Path, mode: int) -> None:
        """Group or world access is refused with the path, the mode and the chmod advice."""
        path = _write(tmp_path, PROD_FILE, mode)
        with pytest.raises(KeyFileError) as caught:
            load_keys(path)
        message = str(caught.value)
        assert f"mode {mode:04o}" in message and f"chmod 600 {path}" in message
        assert PROD_HEX.lower() not in message.lower()

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_private_production_file(self, tmp_path: Path, mode: int) -> None:
        """Owner-only files load."""
        keys = load_keys(_write(tmp_path, PROD_FILE, mode))
        assert keys.keys[0].role is KeyRole.DEBIT

    def test_simulation_file_may_be_shared(self, tmp_path: Path) -> None:
        """A simulation: true file loads whatever its mode (its keys are public)."""
        path = _write(tmp_path, SIM_KEYS.read_text(encoding="utf-8"), 0o644)
        assert load_keys(path, allow_simulation=True).simulation


class TestFormat:
    """algorithm, role, lock fields."""

    def test_roles_of_the_simulation_file(self) -> None:
        """The shipped file names each key's role; lookup_role finds the SV keys."""
        keys = load_keys(SIM_KEYS, allow_simulation=True)
        assert [k.role for k in keys.keys] == [
            KeyRole.ISSUER,
            KeyRole.LOAD,
            KeyRole.DEBIT,
            KeyRole.LOAD,
        ]
        debit = keys.lookup_role(KeyRole.DEBIT, 0xF0)
        assert debit is not None and debit.kif == 0x30
        assert keys.lookup_role(KeyRole.DEBIT, 0xF1) is None

    def test_only_aes128(self, tmp_path: Path) -> None:
        """aes-128 is read as AES128; another algorithm is refused."""
        text = PROD_FILE.replace("AES128", "aes-128")
        assert load_keys(_write(tmp_path, text, 0o600)).keys[0].algorithm == "AES128"
        with pytest.raises(KeyFileError, match="algorithm"):
            load_keys(_write(tmp_path, PROD_FILE.replace("AES128", "TDES"), 0o600))

    def test_unknown_role(self, tmp_path: Path) -> None:
        """A role outside issuer/load/debit/pin/other is refused."""
        with pytest.raises(KeyFileError, match="role"):
            load_keys(_write(tmp_path, PROD_FILE.replace("role: debit", "role: boss"), 0o600))

    def test_lock_fields(self, tmp_path: Path) -> None:
        """locked: true needs 16 bytes of unlock data, never shown."""
        unlock = "00112233445566778899AABBCCDDEEF1"
        locked = f"locked: true\nunlock_data: {unlock}\n" + PROD_FILE
        keys = load_keys(_write(tmp_path, locked, 0o600))
        assert keys.locked and keys.unlock_secret() == bytes.fromhex(unlock)
        assert unlock.lower() not in repr(keys).lower()
        with pytest.raises(KeyFileError, match="unlock_data"):
            load_keys(_write(tmp_path, "locked: true\n" + PROD_FILE, 0o600))
        with pytest.raises(KeyFileError, match="unlock_data must be 16 bytes") as caught:
            load_keys(_write(tmp_path, locked.replace(unlock, unlock[:-2]), 0o600))
        assert unlock[:-2].lower() not in str(caught.value).lower()


class TestAuthorizedKeys:
    """Keyple's authorised session keys, with 'empty = all' and the simulation rule."""

    def test_empty_accepts_all_production_keys(self) -> None:
        """An empty set accepts any production key."""
        policy = AuthorizedKeys()
        assert policy.allows(0x30, 0x79) and policy.allows(0x21, 0x01)

    def test_listed_keys_only(self) -> None:
        """A non-empty set accepts its keys only, and says why another is refused."""
        policy = AuthorizedKeys.parse(["30/79", "27:79"])
        assert policy.allows(0x30, 0x79) and policy.allows(0x27, 0x79)
        with pytest.raises(UnauthorizedKeyError, match="KIF 30 KVC 7A refused: not among"):
            policy.check(0x30, 0x7A)

    @pytest.mark.parametrize("kvc", [0xF0, 0xF1])
    def test_simulation_kvcs(self, kvc: int) -> None:
        """Simulation KVCs are refused unless simulation is on, even when listed."""
        policy = AuthorizedKeys.parse([f"30/{kvc:02X}"])
        with pytest.raises(UnauthorizedKeyError, match="simulation is not enabled") as caught:
            policy.check(0x30, kvc)
        assert caught.value.kvc == kvc and "simulation: true" in str(caught.value)
        assert AuthorizedKeys.parse([f"30/{kvc:02X}"], allow_simulation=True).allows(0x30, kvc)
        assert AuthorizedKeys(allow_simulation=True).allows(0x30, kvc)

    def test_parse_reference(self) -> None:
        """KIF/KVC texts in the usual spellings; garbage is a ValueError."""
        for text in ("30/79", "30:79", "30 79", "3079", " 30/79 "):
            assert parse_key_reference(text) == (0x30, 0x79)
        with pytest.raises(ValueError, match="KIF/KVC"):
            parse_key_reference("3/79")
