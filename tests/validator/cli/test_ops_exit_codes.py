# SPDX-License-Identifier: Apache-2.0
"""Issue 15, operations side: exit codes of ``run`` and the unit's restart policy agree."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from validator.cli.common import EXIT_CONFIG, EXIT_START
from validator.cli.main import main

UNIT = Path(__file__).resolve().parents[3] / "deploy" / "systemd" / "calypso-validator.service"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in process; returns exit code, stdout, stderr."""
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped configuration, its journal under tmp_path."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def restart_prevented() -> set[int]:
    """The unit's RestartPreventExitStatus codes."""
    codes: set[int] = set()
    for line in UNIT.read_text().splitlines():
        if line.startswith("RestartPreventExitStatus="):
            codes |= {int(word) for word in line.partition("=")[2].split()}
    return codes


class TestConfigurationMistakesStopRestarts:
    """Issue 15.16: a configuration mistake exits with a code the unit does not restart on."""

    def test_bad_reader_regex(self, config_copy: Path) -> None:
        """--card-reader 'pcsc:[unclosed' is a configuration error (exit 2), not a start error."""
        code, _, err = run("run", "--config", str(config_copy), "--card-reader", "pcsc:[unclosed")
        assert code == EXIT_CONFIG, err
        assert "bad regular expression" in err
        assert code in restart_prevented()

    def test_unknown_reader_scheme(self, config_copy: Path) -> None:
        """A reader spec with an unknown scheme is a configuration error too."""
        code, _, err = run("run", "--config", str(config_copy), "--sam-reader", "usb:0")
        assert code == EXIT_CONFIG, err
        assert "usb:0" in err

    def test_garbage_metrics_address(self, config_copy: Path) -> None:
        """A metrics_address that is no address is a configuration error (exit 2)."""
        env = {"CALYPSO_VALIDATOR_METRICS_ADDRESS": "not an address!"}
        code, _, err = run("run", "--config", str(config_copy), "--max-taps", "1", env=env)
        assert code == EXIT_CONFIG, err
        assert "metrics_address" in err

    def test_start_errors_keep_restarting(self) -> None:
        """Exit 4 (a SAM or pcscd that may come back) is not in RestartPreventExitStatus."""
        assert EXIT_START not in restart_prevented()
        assert EXIT_CONFIG in restart_prevented()


def test_busy_metrics_port_serves_without_metrics(config_copy: Path) -> None:
    """Issue 15.16: a metrics port held by another program is logged; the gate still serves."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {
            "CALYPSO_VALIDATOR_METRICS_ADDRESS": "127.0.0.1",
            "CALYPSO_VALIDATOR_METRICS_PORT": str(port),
        }
        args = ("run", "--config", str(config_copy), "--max-taps", "2", "--interval", "0")
        code, _, err = run(*args, "--log-level", "warning", env=env)
    assert code == 0, err
    assert "2 taps served" in err
    assert "metrics_unavailable" in err


def test_pcscd_unreachable_is_exit_4(config_copy: Path, tmp_path: Path) -> None:
    """Issue 15.12: a PC/SC SAM with no pcscd to talk to: exit 4 with a message, no traceback."""
    pytest.importorskip("smartcard")
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}
    done = subprocess.run(  # noqa: S603 - our CLI, fixed arguments
        [sys.executable, "-m", "validator", "run", "--config", str(config_copy)]
        + ["--sam-reader", "pcsc:SAM", "--max-taps", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == EXIT_START, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot start" in done.stderr and "pcsc" in done.stderr.lower()


def test_one_tap_served_is_singular(config_copy: Path) -> None:
    """``run --max-taps 1`` ends with "1 tap served", not "1 taps served" (issue 15 wording)."""
    args = ("run", "--config", str(config_copy), "--max-taps", "1", "--interval", "0")
    code, _, err = run(*args, "--log-level", "warning")
    assert code == 0, err
    assert "1 tap served" in err
    assert "1 taps" not in err
