# SPDX-License-Identifier: Apache-2.0
"""deploy/: the systemd unit passes systemd-analyze, the udev rules and the templates are sound."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from validator.app.settings import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "systemd" / "calypso-validator.service"
RULES = DEPLOY / "udev" / "60-calypso-validator-nfc.rules"
EXEC = "/opt/calypso-validator/bin/validator"


def systemd_analyze() -> str:
    """The systemd-analyze binary (the Makefile's system-deps installs the systemd package)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is missing: apt-get install systemd (make system-deps)")
    return tool


def staged_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a stub, so that verify can check the command exists.

    verify insists that the ExecStart binary is there; the venv is not installed in tests.
    """
    stub = tmp_path / "bin" / "validator"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(EXEC, str(stub)))
    return unit


def unit_settings() -> dict[str, list[str]]:
    """The unit's settings: key -> values, in order."""
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify: no error and no warning at all (unknown keys warn only)."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [systemd_analyze(), "verify", str(staged_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_systemd_analyze_security(tmp_path: Path) -> None:
    """The offline security audit rates the unit's exposure "OK" (below 3 out of 10)."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [systemd_analyze(), "security", "--offline=yes", str(staged_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert float(match.group(1)) < 3.0, done.stdout


def test_unit_settings() -> None:
    """Type=notify with a watchdog, restart on failure, after pcscd, unprivileged and confined."""
    unit = unit_settings()
    expected = {
        "Type": ["notify"],
        "Restart": ["on-failure"],
        "Wants": ["pcscd.socket", "time-sync.target"],
        "User": ["calypso-validator"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "PrivateTmp": ["yes"],
        "CapabilityBoundingSet": [""],
        "ReadWritePaths": ["/var/lib/calypso-validator"],
        "Environment": [
            "CALYPSO_VALIDATOR_CONFIG=/etc/calypso-validator",
            "PYTHONUNBUFFERED=1",
        ],
    }
    for key, values in expected.items():
        assert unit[key] == values, key
    assert "pcscd.socket" in unit["After"][0].split()
    assert int(unit["WatchdogSec"][0]) >= 10
    assert unit["ExecStart"][0].startswith(EXEC + " run ")


def test_udev_rules() -> None:
    """ACR122U, PN533-based and RC-S380 readers go to the service group, and the note is there."""
    text = RULES.read_text()
    devices = re.findall(
        r'^ATTRS\{idVendor\}=="([0-9a-f]{4})", ATTRS\{idProduct\}=="([0-9a-f]{4})", '
        r'GROUP="calypso-validator", MODE="0660"$',
        text,
        re.MULTILINE,
    )
    rules = [line for line in text.splitlines() if line.startswith("ATTRS")]
    assert len(devices) == len(rules)  # every device line has the expected shape
    assert {("072f", "2200"), ("04e6", "5591"), ("054c", "06c1"), ("054c", "06c3")} <= set(devices)
    assert "EITHER by pcscd" in text and "pn533_usb" in text
    labels = re.findall(r'GOTO="(\w+)"', text)
    assert labels and all(f'LABEL="{label}"' in text for label in labels)


def test_production_template_is_valid() -> None:
    """deploy/config/validator.yaml loads: production mode, PC/SC readers, journal in /var/lib."""
    settings = load_settings(DEPLOY / "config", environ={})
    assert not settings.simulation
    assert settings.card_reader.startswith("pcsc:") and settings.sam_reader.startswith("pcsc:")
    assert settings.journal_dir == "/var/lib/calypso-validator/journal"
    assert settings.metrics_address is None


def test_unit_waits_for_time_and_fences_metrics() -> None:
    """Issue 15.11/15.16: the unit wants time-sync, and the network is localhost and one port."""
    unit = unit_settings()
    assert "time-sync.target" in " ".join(unit["Wants"]).split()
    assert "time-sync.target" in unit["After"][0].split()
    assert unit["IPAddressDeny"] == ["any"]
    assert unit["IPAddressAllow"] == ["localhost"]
    assert unit["SocketBindDeny"] == ["any"]
    assert unit["SocketBindAllow"] == ["tcp:9108"]  # the default metrics_port
    assert unit["RestartPreventExitStatus"] == ["2"]  # configuration mistakes: a person acts


@pytest.mark.parametrize(
    "name",
    ["calypso-collector.service", "calypso-validator-ship.service", "calypso-validator-ship.timer"],
)
def test_shipping_units_verify(tmp_path: Path, name: str) -> None:
    """The collector's unit and the shipping service and timer pass systemd-analyze verify."""
    stub = tmp_path / "bin" / "validator"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    for unit in ("calypso-validator-ship.service", name):
        text = (DEPLOY / "systemd" / unit).read_text()
        (tmp_path / unit).write_text(text.replace(EXEC, str(stub)))
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [systemd_analyze(), "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "calypso" not in done.stderr, done.stderr


def test_collector_settings_template_loads() -> None:
    """deploy/config/collector.yaml is a valid collector settings file."""
    from validator.office.collector.settings import load_collector_settings

    settings = load_collector_settings(DEPLOY / "config")
    assert settings.port == 8443 and settings.client_ca_file == "validators-ca.crt"
