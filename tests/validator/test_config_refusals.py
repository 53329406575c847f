# SPDX-License-Identifier: Apache-2.0
"""Configuration a careless or hostile operator writes is refused at load time (issue 15)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from calypso.profile import load_profile
from calypso.yamlfile import MAX_CONFIG_BYTES, ConfigError, load_model
from sam.keys import load_keys
from validator.cli import EXIT_CONFIG, main
from validator.fares import FareRules
from validator.settings import load_settings


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
