# SPDX-License-Identifier: Apache-2.0
"""Key files: the simulation rule, clear errors, and key bytes never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sam_vectors import SIM_KEYS

from sam.keys import KeyFileError, KeySet, WorkKey, load_keys

SIM_HEX = [
    "000102030405060708090A0B0C0D0E0F",
    "101112131415161718191A1B1C1D1E1F",
    "202122232425262728292A2B2C2D2E2F",
    "303132333435363738393A3B3C3D3E3F",
]
PROD_HEX = "8899AABBCCDDEEFF0011223344556677"


def _no_key_hex(text: str, *keys: str) -> None:
    """Assert that no key (nor its first half) appears in text, in either case."""
    lowered = text.lower()
    for key in keys or (*SIM_HEX, PROD_HEX):
        assert key.lower() not in lowered
        assert key[:16].lower() not in lowered


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


PROD_FILE = f"""\
simulation: false
keys:
  - kif: "30"
    kvc: "79"
    key: "{PROD_HEX}"
    label: debit
"""


class TestLoading:
    """Valid files load, with KIF/KVC read as hex."""

    def test_simulation_file(self) -> None:
        """The shipped simulation file loads when simulation is allowed."""
        keys = load_keys(SIM_KEYS, allow_simulation=True)
        assert keys.simulation is True
        assert [(k.kif, k.kvc) for k in keys.keys] == [
            (0x21, 0xF0),
            (0x27, 0xF0),
            (0x30, 0xF0),
            (0x27, 0xF1),
        ]
        debit = keys.lookup(0x30, 0xF0)
        assert debit is not None and debit.secret() == bytes.fromhex(SIM_HEX[2])
        assert keys.lookup(0x30, 0x79) is None

    def test_production_file(self, tmp_path: Path) -> None:
        """A production key file (no simulation KVC) needs no permission."""
        keys = load_keys(_write(tmp_path, PROD_FILE))
        assert keys.simulation is False
        key = keys.lookup(0x30, 0x79)
        assert key is not None and key.label == "debit" and not key.simulation

    def test_hex_prefix_and_unquoted(self, tmp_path: Path) -> None:
        """KIF 0x30 and unquoted 30 are both hex 30h, never decimal."""
        text = PROD_FILE.replace('kif: "30"', "kif: 0x30").replace('kvc: "79"', "kvc: 79")
        key = load_keys(_write(tmp_path, text)).keys[0]
        assert (key.kif, key.kvc) == (0x30, 0x79)


class TestSimulationRule:
    """Simulation keys need simulation: true in the file and allow_simulation from the caller."""

    def test_refused_without_allow(self) -> None:
        """The simulation file is refused when the caller does not allow simulation."""
        with pytest.raises(KeyFileError, match="simulation") as caught:
            load_keys(SIM_KEYS)
        assert str(SIM_KEYS) in str(caught.value)
        _no_key_hex(str(caught.value))

    def test_simulation_kvc_in_production_file(self, tmp_path: Path) -> None:
        """A KVC F0 in a file without simulation: true is refused even when allowed."""
        path = _write(tmp_path, PROD_FILE.replace('kvc: "79"', 'kvc: "F0"'))
        for allow in (False, True):
            with pytest.raises(KeyFileError, match="KVC F0 is a simulation key"):
                load_keys(path, allow_simulation=allow)

    def test_simulation_kvc_f1(self, tmp_path: Path) -> None:
        """KVC F1 is a simulation KVC too."""
        with pytest.raises(KeyFileError, match="simulation"):
            load_keys(_write(tmp_path, PROD_FILE.replace('kvc: "79"', 'kvc: "F1"')))


class TestErrors:
    """Malformed files give KeyFileError naming the file (and line), never the key bytes."""

    def test_yaml_syntax_error(self, tmp_path: Path) -> None:
        """A YAML syntax error names the file and the line."""
        path = _write(tmp_path, PROD_FILE.replace('    key: "', '    key: @"'))
        with pytest.raises(KeyFileError) as caught:
            load_keys(path)
        assert caught.value.path == path and caught.value.line == 5
        assert str(path) in str(caught.value) and "YAML" in str(caught.value)
        _no_key_hex(str(caught.value))

    @pytest.mark.parametrize(
        ("replacement", "needle"),
        [
            (PROD_HEX[:-2] + "ZZ", "hex"),  # not hex
            (PROD_HEX[:20], "16 bytes"),  # too short
            (PROD_HEX + "00", "16 bytes"),  # too long
        ],
    )
    def test_bad_key_value(self, tmp_path: Path, replacement: str, needle: str) -> None:
        """A bad key names the field and its line, not its value."""
        path = _write(tmp_path, PROD_FILE.replace(PROD_HEX, replacement))
        with pytest.raises(KeyFileError, match=needle) as caught:
            load_keys(path)
        message = str(caught.value)
        assert "keys.0.key" in message and f"{path}:5" in message
        _no_key_hex(message, PROD_HEX, replacement)

    def test_bad_kif(self, tmp_path: Path) -> None:
        """A KIF that is not one hex byte, or 00, is refused."""
        for bad in ("3", "XY", "00", "300"):
            path = _write(tmp_path, PROD_FILE.replace('kif: "30"', f'kif: "{bad}"'))
            with pytest.raises(KeyFileError, match="kif"):
                load_keys(path)

    def test_missing_and_unknown_fields(self, tmp_path: Path) -> None:
        """A missing key and an unknown field are reported with their location."""
        with pytest.raises(KeyFileError, match=r"keys\.0\.key"):
            load_keys(_write(tmp_path, PROD_FILE.replace(f'    key: "{PROD_HEX}"\n', "")))
        with pytest.raises(KeyFileError, match="Extra inputs"):
            load_keys(_write(tmp_path, PROD_FILE + "secret: yes\n"))

    def test_duplicate_key(self, tmp_path: Path) -> None:
        """Two keys with the same KIF/KVC are refused."""
        entry = PROD_FILE.split("keys:\n", 1)[1]
        with pytest.raises(KeyFileError, match="duplicate"):
            load_keys(_write(tmp_path, PROD_FILE + entry))

    def test_empty_and_missing_file(self, tmp_path: Path) -> None:
        """An empty file and a missing file are KeyFileErrors naming the file."""
        with pytest.raises(KeyFileError, match="empty"):
            load_keys(_write(tmp_path, ""))
        missing = tmp_path / "nope.yaml"
        with pytest.raises(KeyFileError, match="cannot read") as caught:
            load_keys(missing)
        assert str(missing) in str(caught.value)

    def test_is_value_error(self) -> None:
        """KeyFileError is a ValueError."""
        assert issubclass(KeyFileError, ValueError)


class TestRedaction:
    """Key bytes never appear in repr, str, dumps or logs."""

    def test_repr_str_dump(self) -> None:
        """repr, str and JSON/dict dumps of the key set hide every key."""
        keys = load_keys(SIM_KEYS, allow_simulation=True)
        for text in (repr(keys), str(keys), keys.model_dump_json(), str(keys.model_dump())):
            _no_key_hex(text)
        for key in keys.keys:
            _no_key_hex(repr(key) + str(key) + f"{key}")

    def test_logging(self, caplog: pytest.LogCaptureFixture) -> None:
        """Logging a key set or a work key shows no key bytes."""
        keys = load_keys(SIM_KEYS, allow_simulation=True)
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("test").info("keys %s %r", keys, keys.keys[0])
        assert "keys" in caplog.text
        _no_key_hex(caplog.text)

    def test_direct_construction(self) -> None:
        """A WorkKey built in code from bytes is redacted as well."""
        key = WorkKey(kif=0x30, kvc=0x79, key=bytes.fromhex(PROD_HEX))  # type: ignore[arg-type]
        _no_key_hex(repr(KeySet(keys=[key])))
        assert key.secret() == bytes.fromhex(PROD_HEX)

    def test_no_key_in_captured_output(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Printing the key set and its errors writes no key bytes."""
        print(load_keys(SIM_KEYS, allow_simulation=True))
        try:
            load_keys(SIM_KEYS)
        except KeyFileError as error:
            print(error)
        captured = capsys.readouterr()
        _no_key_hex(captured.out + captured.err)


class TestRelabelledSimulationKeys:
    """Issue 15.8: the public simulation keys are refused outside simulation whatever the KVC."""

    @pytest.mark.parametrize("index", range(len(SIM_HEX)))
    def test_relabelled_kvc_refused(self, tmp_path: Path, index: int) -> None:
        """A production file holding a CSIM1 master key under KVC 01h is refused, key unshown."""
        path = _write(
            tmp_path,
            f'simulation: false\nkeys:\n  - {{kif: "30", kvc: "01", key: "{SIM_HEX[index]}"}}\n',
        )
        with pytest.raises(KeyFileError) as caught:
            load_keys(path)
        message = str(caught.value)
        assert "public simulation key" in message and "KIF 30 KVC 01" in message
        _no_key_hex(message)

    def test_lowercase_and_spaced_hex_refused(self, tmp_path: Path) -> None:
        """The same bytes written in lower case with spaces are the same key: refused."""
        spaced = " ".join(SIM_HEX[2][i : i + 2] for i in range(0, 32, 2)).lower()
        path = _write(tmp_path, f'keys:\n  - {{kif: "30", kvc: "79", key: "{spaced}"}}\n')
        with pytest.raises(KeyFileError, match="public simulation key"):
            load_keys(path, allow_simulation=True)  # allowed for simulation files only

    def test_fingerprints_cover_the_shipped_file(self) -> None:
        """Every key of config/keys.sim.yaml is in the refused set (they stay in step)."""
        import hashlib

        from sam.keys import SIMULATION_KEY_FINGERPRINTS

        for key in load_keys(SIM_KEYS, allow_simulation=True).keys:
            assert hashlib.sha256(key.secret()).hexdigest() in SIMULATION_KEY_FINGERPRINTS

    def test_production_keys_still_load(self, tmp_path: Path) -> None:
        """A key that is not a simulation key loads as before."""
        path = _write(tmp_path, f'keys:\n  - {{kif: "30", kvc: "01", key: "{PROD_HEX}"}}\n')
        assert len(load_keys(path).keys) == 1
