# SPDX-License-Identifier: Apache-2.0
"""The ``validator`` command line: demo output, configuration checks, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from validator.cli.common import EXIT_CONFIG
from validator.cli.main import main

OUTCOMES = {"granted", "denied", "recovered", "card_lost", "unknown", "error"}
KEYS = {
    "tap",
    "card",
    "outcome",
    "reason",
    "product",
    "debit",
    "remaining",
    "mac_verified",
    "apdus",
    "ms",
}


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in process; returns exit code, stdout, stderr."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped configuration."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


class TestDemo:
    """validator demo."""

    def test_json_taps(self) -> None:
        """--taps 50 --json prints 50 JSON objects with the documented fields."""
        code, out, _ = run(
            "demo",
            "--taps",
            "50",
            "--seed",
            "1",
            "--json",
            "--config",
            str(CONFIG),
            "--start",
            "2026-03-02 07:00:00",
        )
        assert code == 0
        taps = [json.loads(line) for line in out.splitlines()]
        assert [t["tap"] for t in taps] == list(range(1, 51))
        for tap in taps:
            assert KEYS <= tap.keys()
            assert tap["outcome"] in OUTCOMES
            assert set(tap["apdus"]) == {"card", "sam"}
            if tap["outcome"] in ("granted", "recovered"):
                assert tap["mac_verified"] is True
            if tap["outcome"] not in ("granted", "recovered"):
                assert tap["debit"] == 0
        assert {t["outcome"] for t in taps} >= {"granted", "denied"}

    def test_same_seed_same_run(self) -> None:
        """Two runs with one seed agree on everything but the wall time."""

        def outcomes() -> list[tuple[object, ...]]:
            _, out, _ = run(
                "demo",
                "--taps",
                "30",
                "--seed",
                "7",
                "--json",
                "--config",
                str(CONFIG),
                "--start",
                "2026-03-02 07:00:00",
            )
            rows = [json.loads(line) for line in out.splitlines()]
            return [(r["card"], r["outcome"], r["reason"], r["remaining"]) for r in rows]

        assert outcomes() == outcomes()

    def test_readable_lines(self) -> None:
        """Without --json: one line per tap, then a median."""
        code, out, _ = run("demo", "--taps", "5", "--config", str(CONFIG))
        assert code == 0
        lines = out.strip().splitlines()
        assert len([line for line in lines if "APDUs" in line]) == 5
        assert "median" in lines[-1]

    def test_readable_lines_keep_their_columns(self) -> None:
        """A long product name (a network's tariff) does not push the outcome column."""
        code, out, _ = run("demo", "--taps", "20", "--config", str(CONFIG))
        assert code == 0
        taps = [line for line in out.splitlines() if "APDUs" in line]
        assert any("OùRA ticket (billet tar…" in line for line in taps)  # cut at 24 characters
        columns = {
            min(line.find(f" {word} ") for word in OUTCOMES if f" {word} " in line) for line in taps
        }
        assert len(columns) == 1, taps

    def test_refuses_without_simulation(self, config_copy: Path) -> None:
        """The demo needs simulation mode: a production setting stops it with exit code 2."""
        settings = config_copy / "validator.yaml"
        settings.write_text(settings.read_text().replace("simulation: true", "simulation: false"))
        code, _, err = run("demo", "--taps", "1", "--config", str(config_copy))
        assert code == EXIT_CONFIG
        assert "simulation" in err


class TestCheckConfig:
    """validator check-config."""

    def test_shipped_config_is_valid(self) -> None:
        """The shipped configuration passes, in simulation mode."""
        code, out, _ = run("check-config", "--config", str(CONFIG))
        assert code == 0
        assert "SIMULATION" in out

    def test_simulation_keys_refused_in_production(self, config_copy: Path) -> None:
        """simulation: false refuses the simulation key file, without printing any key."""
        settings = config_copy / "validator.yaml"
        text = settings.read_text().replace("simulation: true", "simulation: false")
        settings.write_text(text.split("\npki:")[0] + "\n")  # the test PKI is refused too
        code, out, err = run("check-config", "--config", str(config_copy))
        assert code == EXIT_CONFIG
        assert "keys.sim.yaml" in err
        assert "000102030405060708090A0B0C0D0E0F" not in (out + err).upper()

    def test_error_names_file_and_line(self, config_copy: Path) -> None:
        """A bad value in fares.yaml is reported with the file and its line."""
        fares = config_copy / "fares.yaml"
        lines = fares.read_text().splitlines()
        number = next(i for i, line in enumerate(lines) if "location_id" in line)
        lines[number] = "  location_id: -3"
        fares.write_text("\n".join(lines) + "\n")
        code, _, err = run("check-config", "--config", str(config_copy))
        assert code == EXIT_CONFIG
        assert f"fares.yaml:{number + 1}:" in err
        assert "station.location_id" in err

    def test_overlapping_products_name_file_and_line(self, config_copy: Path) -> None:
        """Two products selling one tariff: check-config names the file and the later one's line."""
        fares = config_copy / "fares.yaml"
        text = fares.read_text()
        fares.write_text(
            text.replace(
                "  - tariff: 4\n",
                "  - {tariffs: [4, 5], kind: season_pass, name: Early pass}\n  - tariff: 4\n",
            )
        )
        lines = fares.read_text().splitlines()
        number = lines.index("  - tariff: 4") + 1
        code, _, err = run("check-config", "--config", str(config_copy))
        assert code == EXIT_CONFIG
        assert f"fares.yaml:{number}: products.4:" in err
        assert "overlaps products.3" in err


class TestLogs:
    """Logs go to stderr, never to the JSON stream, and never carry keys."""

    def test_traffic_level_logs_apdus_on_stderr(self) -> None:
        """--log-level traffic logs each APDU with its timing; stdout stays pure JSON."""
        code, out, err = run(
            "demo", "--taps", "2", "--json", "--log-level", "traffic", "--config", str(CONFIG)
        )
        assert code == 0
        assert all(json.loads(line)["tap"] for line in out.splitlines())
        assert "00A4040009315449432E4943413100" in err
        assert " ms)" in err
        for master in ("000102030405060708090A0B0C0D0E0F", "202122232425262728292A2B2C2D2E2F"):
            assert master not in err.upper()


class TestEveryError:
    """check-config reports every problem, not only the first."""

    def test_all_problems_of_all_files(self, config_copy: Path) -> None:
        """Two bad fields in fares.yaml and a bad card profile: three lines, each located."""
        fares = config_copy / "fares.yaml"
        text = fares.read_text()
        text = text.replace("anti_passback_minutes: 1", "anti_passback_minutes: -1")
        text = text.replace("recovery_window_minutes: 1", "recovery_window_minutes: x")
        fares.write_text(text)
        (config_copy / "cards" / "broken.yaml").write_text("serial: '00'\nkeys: {}\n")
        code, _, err = run("check-config", "--config", str(config_copy))
        assert code == EXIT_CONFIG
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert any("anti_passback_minutes" in line and "fares.yaml:" in line for line in lines)
        assert any("recovery_window_minutes" in line for line in lines)
        assert any("broken.yaml" in line for line in lines)


class TestEnvironmentOverrides:
    """$CALYPSO_VALIDATOR_<FIELD> overrides validator.yaml."""

    def test_override_and_list(self) -> None:
        """A scalar and a comma-separated list override the file."""
        from validator.app.settings import load_settings

        env = {
            "CALYPSO_VALIDATOR_VALIDATOR_ID": "gate-7",
            "CALYPSO_VALIDATOR_AIDS": "315449432E49434131, A000000291FF9101",
        }
        settings = load_settings(CONFIG, env)
        assert settings.validator_id == "gate-7"
        assert settings.aids == ["315449432E49434131", "A000000291FF9101"]

    def test_bad_override_is_a_config_error(self) -> None:
        """A bad value in the environment names the variable."""
        from validator.app.settings import load_settings
        from yamlconfig import ConfigError

        with pytest.raises(ConfigError, match="CALYPSO_VALIDATOR_TIME_BUDGET_MS"):
            load_settings(CONFIG, {"CALYPSO_VALIDATOR_TIME_BUDGET_MS": "soon"})
