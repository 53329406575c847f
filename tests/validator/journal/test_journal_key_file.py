# SPDX-License-Identifier: Apache-2.0
"""journal_key_file: run, check-config and doctor refuse the same files for the same reasons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from validator.app.doctor.diagnose import diagnose
from validator.app.doctor.report import Status
from validator.app.settings import load_settings
from validator.app.station import load_journal_key
from validator.cli.common import EXIT_CONFIG
from validator.cli.main import main
from yamlconfig import ConfigError

KEY_HEX = "00112233445566778899AABBCCDDEEFF"

# (file content or None for no file, mode, the reason every command must give)
BAD_FILES = {
    "missing": (None, 0o600, "missing"),
    "empty": ("", 0o600, "empty"),
    "not_hex": ("not a key at all\n", 0o600, "not hex"),
    "short": ("0011223344\n", 0o600, "at least 16 bytes"),
    "world_readable": (KEY_HEX + "\n", 0o644, "mode 0644"),
    "group_readable": (KEY_HEX + "\n", 0o640, "mode 0640"),
}


def config_with_key(tmp_path: Path, content: str | None, mode: int) -> tuple[Path, Path]:
    """A copy of the shipped config naming journal.key, written with ``content`` and ``mode``."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    settings = config / "validator.yaml"
    settings.write_text(
        settings.read_text().replace("journal_dir: ../var/journal", f"journal_dir: {tmp_path}/j")
        + "journal_key_file: journal.key\n"
    )
    key = config / "journal.key"
    if content is not None:
        key.write_text(content)
        key.chmod(mode)
    return config, key


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_refused_alike_by_run_check_config_and_doctor(tmp_path: Path, case: str) -> None:
    """Each bad key file: the loader, check-config, doctor and run all name the file and why."""
    content, mode, reason = BAD_FILES[case]
    config, key = config_with_key(tmp_path, content, mode)
    settings = load_settings(config, environ={})
    with pytest.raises(ConfigError) as caught:
        load_journal_key(config, settings)
    assert str(key) in str(caught.value) and reason in str(caught.value)

    checked = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert checked.exit_code == EXIT_CONFIG
    assert str(key) in checked.stderr and reason in checked.stderr

    check = diagnose(config).check("journal_key")
    assert check.status is Status.FAIL
    assert str(key) in check.detail and reason in check.detail

    ran = CliRunner().invoke(main, ["run", "--config", str(config), "--max-taps", "1"])
    assert ran.exit_code == EXIT_CONFIG
    assert str(key) in ran.stderr and reason in ran.stderr
    for output in (checked.stderr, check.detail, ran.stderr):
        assert KEY_HEX not in output.upper()


def test_good_key_accepted_everywhere(tmp_path: Path) -> None:
    """A 0600 hex key of 16 bytes loads, passes check-config and doctor's journal_key check."""
    config, key = config_with_key(tmp_path, KEY_HEX + "\n", 0o600)
    assert load_journal_key(config, load_settings(config, environ={})) == bytes.fromhex(KEY_HEX)
    checked = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert checked.exit_code == 0, checked.stderr
    check = diagnose(config).check("journal_key")
    assert check.status is Status.PASS and str(key) in check.detail
    assert KEY_HEX not in (checked.stdout + check.detail).upper()


def test_unset_is_reported(tmp_path: Path) -> None:
    """Without journal_key_file the loader gives None and doctor says entries are not MACed."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    assert load_journal_key(config, load_settings(config, environ={})) is None
    check = diagnose(config).check("journal_key")
    assert check.status is Status.PASS and "not set" in check.detail


@pytest.mark.parametrize("case", sorted(set(BAD_FILES) - {"missing"}))  # missing: click's check
def test_refused_alike_by_replay_and_export(tmp_path: Path, case: str) -> None:
    """replay and export given the bad file by --journal-key-file exit 2 with run's message."""
    content, mode, reason = BAD_FILES[case]
    config, key = config_with_key(tmp_path, content, mode)
    ran = CliRunner().invoke(main, ["run", "--config", str(config), "--max-taps", "1"])
    assert ran.exit_code == EXIT_CONFIG and reason in ran.stderr
    message = ran.stderr.strip().removeprefix("configuration error: ")
    assert str(key) in message
    journals = tmp_path / "journals"
    journals.mkdir()
    flags = ["--config", str(config), "--journal-key-file", str(key)]
    for command in (["replay", str(journals)], ["export", str(journals), "--out", str(tmp_path)]):
        result = CliRunner().invoke(main, [*command, *flags])
        assert result.exit_code == EXIT_CONFIG, result.stderr
        assert message in result.stderr
        assert KEY_HEX not in result.output.upper()
