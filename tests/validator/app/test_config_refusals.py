# SPDX-License-Identifier: Apache-2.0
"""Configuration a careless or hostile operator writes is refused at load time (issue 15)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from calypso.emulator.profile import load_profile
from sam.keys import load_keys
from validator.app.settings import load_settings
from validator.cli.common import EXIT_CONFIG
from validator.cli.main import main
from validator.engine.fares.decide import FareRules
from yamlconfig import MAX_CONFIG_BYTES, ConfigError, load_model


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped configuration."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def check_config(config_dir: Path) -> tuple[int, str]:
    """``validator check-config --config DIR``: exit code and stderr."""
    result = CliRunner().invoke(main, ["check-config", "--config", str(config_dir)])
    return result.exit_code, result.stderr


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` containing ``needle``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


class TestDuplicateKeys:
    """Issue 15.7: a mapping key written twice is refused, never 'the last one wins'."""

    def test_simulation_appended_twice(self, config_copy: Path) -> None:
        """validator.yaml with a second 'simulation:' names both lines."""
        path = config_copy / "validator.yaml"
        first = line_of(path, "simulation: true")
        text = path.read_text()
        path.write_text(text + "simulation: false\n")
        second = len(path.read_text().splitlines())
        with pytest.raises(ConfigError) as caught:
            load_settings(config_copy, environ={})
        message = str(caught.value)
        assert "duplicate key 'simulation'" in message
        assert f"validator.yaml:{second}" in message
        assert f"line {first}" in message

    def test_second_deny_list(self, config_copy: Path) -> None:
        """fares.yaml with a second deny_list is refused by check-config with exit 2."""
        path = config_copy / "fares.yaml"
        path.write_text(path.read_text() + "deny_list: []\n")
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert "fares.yaml:" in err and "duplicate key 'deny_list'" in err

    def test_nested_and_quoted_duplicates(self, tmp_path: Path) -> None:
        """A duplicate inside a nested mapping, even as 1 and '1', is refused too."""
        path = tmp_path / "fares.yaml"
        text = (CONFIG / "fares.yaml").read_text()
        path.write_text(text.replace("fare_by_zone: {1: 2, 2: 3}", "fare_by_zone: {1: 2, '1': 9}"))
        with pytest.raises(ConfigError, match="duplicate key '1'"):
            load_model(path, FareRules)

    @pytest.mark.parametrize(
        ("first", "second"), [("1", "01"), ("1", "0x1"), ("8", "010"), ("1", "'01'")]
    )
    def test_keys_equal_once_resolved(self, tmp_path: Path, first: str, second: str) -> None:
        """fare_by_zone with 1: and 01: (one zone once resolved or coerced) names both lines."""
        path = fares_with(
            tmp_path,
            "fare_by_zone: {1: 2, 2: 3}",
            f"fare_by_zone:\n      {first}: 2\n      {second}: 3",
        )
        line = line_of(path, f"{first}: 2")
        with pytest.raises(ConfigError) as caught:
            load_model(path, FareRules)
        message = str(caught.value)
        assert f"duplicate key {second.strip(chr(39))!r}" in message
        assert f"fares.yaml:{line + 1}" in message
        assert f"first at line {line} as {first!r}" in message

    def test_booleans_equal_once_resolved(self, tmp_path: Path) -> None:
        """true: and yes: in one mapping (both True for the loader) are refused as duplicates."""
        path = tmp_path / "fares.yaml"
        path.write_text("station_groups:\n  true: [1]\n  yes: [2]\n")  # refused before the schema
        with pytest.raises(ConfigError, match=r"duplicate key 'yes' \(first at line 2 as 'true'"):
            load_model(path, FareRules)

    def test_distinct_keys_still_accepted(self, tmp_path: Path) -> None:
        """Keys that resolve to different values (1 and 10, 1 and 1.5) are not duplicates."""
        path = fares_with(tmp_path, "fare_by_zone: {1: 2, 2: 3}", "fare_by_zone: {1: 2, 10: 3}")
        assert load_model(path, FareRules).products[2].fare_by_zone == {1: 2, 10: 3}

    def test_card_profile_and_key_file(self, tmp_path: Path) -> None:
        """Card profiles and SAM key files (scalars as text) refuse duplicates as well."""
        profile = tmp_path / "card.yaml"
        text = (CONFIG / "cards" / "season_pass.yaml").read_text()
        first_key = next(
            line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()
        )
        profile.write_text(text + f"\n{first_key}: x\n")
        with pytest.raises(ConfigError, match=f"duplicate key '{first_key}'"):
            load_profile(profile)
        keys = tmp_path / "keys.yaml"
        keys.write_text((CONFIG / "keys.sim.yaml").read_text() + "simulation: true\n")
        with pytest.raises(ConfigError, match="duplicate key 'simulation'"):
            load_keys(keys, allow_simulation=True)


class TestSizeAndKind:
    """Issue 15.20: every configuration file is capped in size and must be a regular file."""

    def test_huge_file_refused_before_parsing(self, config_copy: Path) -> None:
        """A validator.yaml over the cap is refused at once, naming the cap."""
        path = config_copy / "validator.yaml"
        with path.open("a") as out:
            out.write("#" + "x" * MAX_CONFIG_BYTES + "\n")
        with pytest.raises(ConfigError, match="larger than"):
            load_settings(config_copy, environ={})

    def test_not_a_regular_file(self, config_copy: Path) -> None:
        """A fares.yaml that is a symlink to /dev/zero is refused, never read."""
        path = config_copy / "fares.yaml"
        path.unlink()
        path.symlink_to("/dev/zero")
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert "fares.yaml" in err and "not a regular file" in err


def fares_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped fares.yaml with one text replaced (which must be there)."""
    text = (CONFIG / "fares.yaml").read_text()
    assert old in text
    path = tmp_path / "fares.yaml"
    path.write_text(text.replace(old, new))
    return path


class TestFareAmounts:
    """Issue 15.10: every fare amount is positive and fits what the card can hold."""

    @pytest.mark.parametrize(
        ("old", "new", "field"),
        [
            ("fare_by_zone: {1: 2, 2: 3}", "fare_by_zone: {1: -2, 2: 3}", "fare_by_zone.1"),
            ("fare_by_zone: {1: 2, 2: 3}", "fare_by_zone: {1: 0, 2: 3}", "fare_by_zone.1"),
            ("fare_by_zone: {1: 2, 2: 3}", "fare_by_zone: {1: 16777216}", "fare_by_zone.1"),
            ("fare_by_zone: {2: 200}", "fare_by_zone: {2: -200}", "sv_purse.fare_by_zone.2"),
            ("fare_by_zone: {2: 200}", "fare_by_zone: {2: 40000}", "sv_purse.fare_by_zone.2"),
            ("fare_by_zone: {2: 200}", "fare_by_zone: {-1: 200}", "sv_purse.fare_by_zone"),
        ],
    )
    def test_out_of_range_amount(self, tmp_path: Path, old: str, new: str, field: str) -> None:
        """A negative, zero or oversized zone fare is refused with the field and its line."""
        path = fares_with(tmp_path, old, new)
        with pytest.raises(ConfigError) as caught:
            load_model(path, FareRules)
        assert field in str(caught.value)
        assert caught.value.line == line_of(path, new)

    def test_check_config_refuses_negative_fare(self, config_copy: Path) -> None:
        """check-config exits 2 on a negative fare_by_zone, naming fares.yaml."""
        path = config_copy / "fares.yaml"
        path.write_text(path.read_text().replace("{1: 2, 2: 3}", "{1: -5, 2: 3}"))
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert "fares.yaml:" in err and "fare_by_zone" in err


class TestFareShapes:
    """Issue 15.20: periods, days, windows and zones that make no sense are refused."""

    @pytest.mark.parametrize(
        ("old", "new", "reason"),
        [
            ('start: "07:00", end: "09:30"', 'start: "09:30", end: "07:00"', "before its end"),
            ('start: "07:00", end: "09:30"', 'start: "07:00", end: "07:00"', "before its end"),
            ('{days: [0, 1, 2, 3, 4], start: "07:00"', '{days: [9, -3], start: "07:00"', "0"),
            ('{days: [0, 1, 2, 3, 4], start: "07:00"', '{days: [1, 1], start: "07:00"', "twice"),
            ("anti_passback_minutes: 1", "anti_passback_minutes: 1e23", "anti_passback"),
            ("anti_passback_minutes: 1", "anti_passback_minutes: 100000", "anti_passback"),
            ("recovery_window_minutes: 1", "recovery_window_minutes: 99999", "recovery"),
            ("transfer_minutes: 60", "transfer_minutes: 1000000", "transfer_minutes"),
            ("  zone: 1\n", "  zone: 7\n", "zone 7"),
            ('start: "07:00", end: "09:30"', 'start: "07:00+02:00", end: "09:30"', "time zone"),
            ('start: "07:00", end: "09:30"', 'start: "07:00", end: "09:30Z"', "time zone"),
        ],
    )
    def test_refused(self, tmp_path: Path, old: str, new: str, reason: str) -> None:
        """Each nonsensical fare rule is a ConfigError naming what is wrong."""
        path = fares_with(tmp_path, old, new)
        with pytest.raises(ConfigError, match=reason):
            load_model(path, FareRules)

    def test_zone_covered_by_explicit_fallback(self, tmp_path: Path) -> None:
        """A station zone missing from fare_by_zone is fine when units_per_trip is explicit."""
        path = fares_with(tmp_path, "  zone: 1\n", "  zone: 2\n")
        assert load_model(path, FareRules).station.zone == 2
        text = path.read_text().replace("fare_by_zone: {1: 2, 2: 3}", "fare_by_zone: {1: 2}")
        path.write_text(text)
        assert load_model(path, FareRules).station.zone == 2  # units_per_trip: 2 is written


def settings_with(config_dir: Path, old: str, new: str) -> Path:
    """Replace ``old`` (which must be there) by ``new`` in config_dir/validator.yaml."""
    path = config_dir / "validator.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


class TestReaderAndMetricsSpecs:
    """Issue 15.16: reader specs and the metrics address are checked at load time."""

    @pytest.mark.parametrize(
        ("old", "new", "field"),
        [
            ("card_reader: emulated", "card_reader: 'pcsc:[unclosed'", "card_reader"),
            ("card_reader: emulated", "card_reader: pcsc:", "card_reader"),
            ("card_reader: emulated", "card_reader: usb:0", "card_reader"),
            ("card_reader: emulated", "card_reader: software", "card_reader"),
            ("card_reader: emulated", "card_reader: 'nfc:'", "card_reader"),
            ("sam_reader: emulated", "sam_reader: 'pcsc:(('", "sam_reader"),
            ("sam_reader: emulated", "sam_reader: nfc:usb", "sam_reader"),
            ("log_format: auto", "log_format: auto\nsam_atr_filter: '3B[8'", "sam_atr_filter"),
            ("log_format: auto", "log_format: auto\nmetrics_address: 'not an address!'", "metrics"),
            ("log_format: auto", "log_format: auto\nmetrics_address: '1.2.3.4:80'", "metrics"),
            ("log_format: auto", "log_format: auto\nmetrics_address: '-bad-.example'", "metrics"),
            ("log_format: auto", "log_format: auto\nmetrics_address: ''", "metrics"),
            ("log_format: auto", "log_format: auto\nmetrics_port: 70000", "metrics_port"),
        ],
    )
    def test_refused(self, config_copy: Path, old: str, new: str, field: str) -> None:
        """check-config exits 2 and names validator.yaml, its line and the field."""
        path = settings_with(config_copy, old, new)
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert f"validator.yaml:{line_of(path, new.splitlines()[-1])}:" in err
        assert field in err

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("card_reader: emulated", "card_reader: 'pcsc:ACS ACR122.*'"),
            ("card_reader: emulated", "card_reader: nfc:usb:072f:2200"),
            ("sam_reader: emulated", "sam_reader: software"),
            ("sam_reader: emulated", "sam_reader: 'pcsc:SAM'"),
            ("log_format: auto", "log_format: auto\nmetrics_address: 127.0.0.1"),
            ("log_format: auto", "log_format: auto\nmetrics_address: '::1'"),
            ("log_format: auto", "log_format: auto\nmetrics_address: gate-7.local"),
        ],
    )
    def test_accepted(self, config_copy: Path, old: str, new: str) -> None:
        """Well-formed specs and addresses load (no hardware is needed to load them)."""
        settings_with(config_copy, old, new)
        assert load_settings(config_copy, environ={}).validator_id == "validator-1"

    def test_environment_override_is_checked_too(self, config_copy: Path) -> None:
        """$CALYPSO_VALIDATOR_CARD_READER with a bad regex is refused like the file."""
        environ = {"CALYPSO_VALIDATOR_CARD_READER": "pcsc:[x"}
        with pytest.raises(ConfigError, match="card_reader"):
            load_settings(config_copy, environ=environ)


class TestMissingSettings:
    """Issue 15.17: no validator.yaml is a clear error, never the built-in defaults."""

    def test_misnamed_file_is_named(self, config_copy: Path) -> None:
        """validator.yml beside the missing validator.yaml: both paths in the error."""
        (config_copy / "validator.yaml").rename(config_copy / "validator.yml")
        with pytest.raises(ConfigError) as caught:
            load_settings(config_copy, environ={})
        message = str(caught.value)
        assert str(config_copy / "validator.yaml") in message
        assert "missing" in message and "validator.yml" in message

    def test_check_config_and_doctor_fail(self, config_copy: Path) -> None:
        """check-config exits 2 naming the path; doctor reports FAIL config."""
        from validator.app.doctor.diagnose import diagnose
        from validator.app.doctor.report import Status

        (config_copy / "validator.yaml").unlink()
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert str(config_copy / "validator.yaml") in err
        report = diagnose(config_copy)
        assert report.check("config").status is Status.FAIL
        assert "validator.yaml" in report.check("config").detail

    def test_default_is_dot_config(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without --config or $CALYPSO_VALIDATOR_CONFIG the folder is ./config, as help says."""
        from validator.app.settings import CONFIG_ENV, default_config_dir

        monkeypatch.delenv(CONFIG_ENV, raising=False)
        monkeypatch.chdir(tmp_path)
        assert default_config_dir() == tmp_path / "config"
        result = CliRunner().invoke(main, ["check-config"])
        assert result.exit_code == EXIT_CONFIG
        assert str(tmp_path / "config" / "validator.yaml") in result.stderr
        help_text = CliRunner().invoke(main, ["check-config", "--help"]).stdout
        assert "./config" in help_text


class TestHostileShapes:
    """Shapes found by the config-mutations campaign part."""

    def test_deep_nesting_is_a_config_error(self, config_copy: Path) -> None:
        """5000 nested brackets: a ConfigError naming the file, never a RecursionError."""
        (config_copy / "validator.yaml").write_text("x: " + "[" * 5000 + "\n")
        with pytest.raises(ConfigError, match="nested too deeply"):
            load_settings(config_copy, environ={})

    @pytest.mark.parametrize("value", ["9" * 5000, "2026-02-30"])
    def test_unconstructible_value_is_a_config_error(self, config_copy: Path, value: str) -> None:
        """A 5000-digit integer or 30 February: check-config exits 2 naming the file, no trace."""
        path = config_copy / "fares.yaml"
        path.write_text(path.read_text() + f"extra: {value}\n")
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG, err
        assert "fares.yaml" in err and "cannot be converted" in err
        assert value not in err

    def test_run_refuses_a_bad_card_profile(self, config_copy: Path, tmp_path: Path) -> None:
        """validator run with a broken card profile exits 2 naming it (it used to hang)."""
        import subprocess
        import sys

        settings = config_copy / "validator.yaml"
        settings.write_text(
            settings.read_text().replace("../var/journal", str(tmp_path / "journal"))
        )
        (config_copy / "cards" / "season_pass.yaml").write_text("serial: 12\n")
        done = subprocess.run(  # noqa: S603 - our own command line
            [sys.executable, "-m", "validator", "run", "--config", str(config_copy)]
            + ["--max-taps", "1", "--interval", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == EXIT_CONFIG, done.stderr
        assert "season_pass.yaml" in done.stderr and "Traceback" not in done.stderr


class TestLocationWidth:
    """Issue 15.20: a station location id wider than a configured layout's field is refused."""

    def test_intercode_needs_16_bits(self, config_copy: Path) -> None:
        """location_id 70000 with the Intercode layout configured: check-config and run say so."""
        fares = config_copy / "fares.yaml"
        fares.write_text(fares.read_text().replace("location_id: 101", "location_id: 70000"))
        code, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert "fares.yaml" in err and "station.location_id" in err and "16 bits" in err
        result = CliRunner().invoke(
            main, ["run", "--config", str(config_copy), "--max-taps", "1", "--interval", "0"]
        )
        assert result.exit_code == EXIT_CONFIG and "16 bits" in result.stderr

    def test_demo_layout_only_takes_32_bits(self, config_copy: Path) -> None:
        """Without the Intercode layout a 32-bit location id is fine (the demo field: 32 bits)."""
        from validator.app.settings import load_fares

        settings = config_copy / "validator.yaml"
        text = settings.read_text()
        for aid in ("A0000004040125090101", "315449432E494341"):
            text = text.replace(f"  {aid}: intercode\n", "")
        settings.write_text(text)
        fares = config_copy / "fares.yaml"
        fares.write_text(fares.read_text().replace("location_id: 101", "location_id: 70000"))
        loaded = load_settings(config_copy, environ={})
        assert load_fares(config_copy, loaded).station.location_id == 70000
