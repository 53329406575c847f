# SPDX-License-Identifier: Apache-2.0
"""``validator doctor``: the embedded default passes; broken boxes get the precise failure."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import CONFIG

from readers.base import CardConnection, ReaderError
from validator.app.doctor.diagnose import diagnose
from validator.app.doctor.report import BUILD_DATE, Identity, Probes, Report, Status
from validator.cli.main import main

PRODUCTION_KEYS = """\
keys:
  - {kif: "21", kvc: "79", role: issuer, key: "8F1E2D3C4B5A69788796A5B4C3D2E1F0"}
  - {kif: "27", kvc: "79", role: load, key: "0F1E2D3C4B5A69788796A5B4C3D2E1F1"}
  - {kif: "30", kvc: "79", role: debit, key: "1F1E2D3C4B5A69788796A5B4C3D2E1F2"}
"""


def me() -> Identity:
    """The current process as the service identity."""
    return Identity("tester", os.geteuid(), frozenset([os.getegid(), *os.getgroups()]))


def no_pcsc() -> list[str]:
    """A host without pcscd."""
    raise ReaderError("PC/SC establish context failed: Service not available. (0x8010001D)")


def no_sam(pattern: str, timeout: float, stack: ExitStack) -> CardConnection | None:
    """A SAM reader that cannot be reached."""
    raise ReaderError(f"no PC/SC reader matches {pattern!r}")


def probes(**overrides: Any) -> Probes:
    """Probes that touch nothing on the host: no pcscd, NTP synchronised, the clock now."""
    values: dict[str, Any] = {
        "list_readers": no_pcsc,
        "connect": no_sam,
        "find_nfc": lambda path: [],
        "ntp": lambda: (True, "test"),
        "identity": me(),
    }
    values.update(overrides)
    return Probes(**values)


def make_config(tmp_path: Path, **settings: Any) -> Path:
    """A copy of the shipped configuration, the journal in tmp_path, with ``settings`` on top."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / "validator.yaml"
    content = yaml.safe_load(path.read_text())
    content["journal_dir"] = str(tmp_path / "journal")
    content.update(settings)
    path.write_text(yaml.safe_dump(content))
    return config


def production(tmp_path: Path, mode: int, **settings: Any) -> Path:
    """A production configuration: real card reader, software SAM, production key file, and
    no test PKI (its root is refused outside simulation)."""
    settings.setdefault("pki", {})
    config = make_config(
        tmp_path, simulation=False, card_reader="pcsc:Test Card", keys="keys.yaml", **settings
    )
    keys = config / "keys.yaml"
    keys.write_text(PRODUCTION_KEYS)
    keys.chmod(mode)
    return config


def statuses(report: Report) -> dict[str, str]:
    """Check name -> status."""
    return {check.name: check.status.value for check in report.checks}


class TestEmbeddedDefault:
    """The shipped configuration on this machine."""

    def test_cli_json(self, tmp_path: Path) -> None:
        """Every check passes; only the clock may warn, when this host cannot tell NTP status.

        In a container without systemd as PID 1, timedatectl cannot answer: that is the one
        thing the environment lacks, and the clock check says so.
        """
        config = make_config(tmp_path)
        result = CliRunner().invoke(main, ["doctor", "--json", "--config", str(config)])
        report = json.loads(result.stdout)
        by_name = {check["name"]: check for check in report["checks"]}
        assert set(by_name) == {
            "config",
            "simulation",
            "pcscd",
            "card_reader",
            "sam_reader",
            "keys",
            "sam",
            "sam_keys",
            "pki",
            "journal",
            "quarantine",
            "journal_key",
            "clock",
        }
        for name, check in by_name.items():
            if name == "clock" and check["status"] == "warn":
                assert "NTP status unknown" in check["detail"], check
                continue
            assert check["status"] == "pass", check
        assert result.exit_code == report["exit_code"] == (1 if report["status"] == "warn" else 0)
        assert "SAM C1 serial 5AFE0001" in by_name["sam"]["detail"]
        assert "card MAC verified" in by_name["sam_keys"]["detail"]

    def test_all_pass_exit_0(self, tmp_path: Path) -> None:
        """With NTP synchronised the embedded default is all pass: exit code 0."""
        report = diagnose(make_config(tmp_path), probes())
        assert report.status is Status.PASS and report.exit_code == 0, report.as_json()
        assert not (tmp_path / "journal").exists()  # the doctor creates nothing

    def test_human_output(self, tmp_path: Path) -> None:
        """One line per check, then a count."""
        config = make_config(tmp_path)
        result = CliRunner().invoke(main, ["doctor", "--config", str(config)])
        assert result.stdout.count("\n") >= 11
        assert "PASS  config" in result.stdout and "checks pass" in result.stdout


class TestFailures:
    """What a broken box reports."""

    def test_world_readable_production_keys(self, tmp_path: Path) -> None:
        """Production keys with mode 0644: keys fails with the mode and the chmod to run."""
        config = production(tmp_path, 0o644)
        report = diagnose(config, probes(list_readers=lambda: ["Test Card 00 00"]))
        keys = report.check("keys")
        assert keys.status is Status.FAIL
        assert "mode 0644: group or others may read the production keys" in keys.detail
        assert f"chmod 600 {config / 'keys.yaml'}" in keys.hint
        assert report.exit_code == 2

    def test_production_keys_0600(self, tmp_path: Path) -> None:
        """The same keys with mode 0600: keys, SAM and the SAM's keys pass.

        Only sam_reader fails: a software SAM in production (issue 15.8, test_doctor_ops).
        """
        config = production(tmp_path, 0o600)
        report = diagnose(config, probes(list_readers=lambda: ["Test Card 00 00"]))
        expected = {**dict.fromkeys(statuses(report), "pass"), "sam_reader": "fail"}
        assert statuses(report) == expected, report.as_json()
        assert "holds the 3 keys" in report.check("sam_keys").detail

    def test_keys_not_readable_by_the_service_user(self, tmp_path: Path) -> None:
        """Mode 0600 but owned by someone else than the service user: fail, chown hint."""
        config = production(tmp_path, 0o600)
        service = Identity("svc", 54321, frozenset([54321]))
        report = diagnose(
            config, probes(list_readers=lambda: ["Test Card 00 00"], identity=service)
        )
        keys = report.check("keys")
        assert keys.status is Status.FAIL and "svc cannot read it" in keys.detail
        assert keys.hint.startswith("chown svc ")

    def test_sam_reader_missing(self, tmp_path: Path) -> None:
        """pcscd lists no SAM reader: sam_reader fails naming the pattern and the readers."""
        config = make_config(tmp_path, card_reader="pcsc:Test Card", sam_reader="pcsc:SAM")
        report = diagnose(config, probes(list_readers=lambda: ["Test Card 00 00"]))
        check = report.check("sam_reader")
        assert check.status is Status.FAIL
        assert check.detail == "no PC/SC reader matches 'SAM' (readers: Test Card 00 00)"
        assert report.check("pcscd").status is Status.PASS
        assert report.check("card_reader").status is Status.PASS
        assert report.check("sam").status is Status.FAIL
        assert report.exit_code == 2

    def test_pcscd_unreachable(self, tmp_path: Path) -> None:
        """No pcscd: pcscd fails with the PC/SC error and how to start it."""
        config = make_config(tmp_path, card_reader="pcsc:Test Card", sam_reader="pcsc:SAM")
        check = diagnose(config, probes()).check("pcscd")
        assert check.status is Status.FAIL and "Service not available" in check.detail
        assert "pcscd.socket" in check.hint

    def test_journal_read_only(self, tmp_path: Path) -> None:
        """A journal directory with mode 0555: journal fails with owner and mode."""
        journal = tmp_path / "journal"
        journal.mkdir()
        journal.chmod(0o555)
        try:
            report = diagnose(make_config(tmp_path), probes())
        finally:
            journal.chmod(0o755)
        check = report.check("journal")
        assert check.status is Status.FAIL
        assert f"{journal}: not writable by tester" in check.detail and "mode 0555" in check.detail
        assert report.exit_code == 2

    def test_journal_not_writable_by_the_service_user(self, tmp_path: Path) -> None:
        """The journal's parent belongs to someone else: fail for the service user."""
        service = Identity("svc", 54321, frozenset([54321]))
        (tmp_path / "journal").mkdir(mode=0o755)
        report = diagnose(make_config(tmp_path), probes(identity=service))
        assert report.check("journal").status is Status.FAIL
        assert "not writable by svc" in report.check("journal").detail

    def test_bad_configuration(self, tmp_path: Path) -> None:
        """An unknown field: config fails with file and line; the clock is still checked."""
        config = make_config(tmp_path)
        settings = config / "validator.yaml"
        settings.write_text(settings.read_text() + "unknown_option: 1\n")
        report = diagnose(config, probes())
        assert statuses(report) == {"config": "fail", "clock": "pass"}
        assert "validator.yaml:" in report.check("config").detail
        assert "unknown_option" in report.check("config").detail

    def test_one_reader_for_card_and_sam(self, tmp_path: Path) -> None:
        """Both patterns pick the same reader: sam_reader fails."""
        config = make_config(tmp_path, card_reader="pcsc:Dual", sam_reader="pcsc:Reader")
        report = diagnose(config, probes(list_readers=lambda: ["Dual Reader 00 00"]))
        check = report.check("sam_reader")
        assert check.status is Status.FAIL and "both match 'Dual Reader 00 00'" in check.detail

    def test_simulation_with_real_reader_warns(self, tmp_path: Path) -> None:
        """Simulation keys accepted at a real reader: a warning, exit code 1 at most."""
        config = make_config(tmp_path, card_reader="pcsc:Test Card")
        report = diagnose(config, probes(list_readers=lambda: ["Test Card 00 00"]))
        assert report.check("simulation").status is Status.WARN
        assert report.exit_code == 1, report.as_json()


class TestClock:
    """The clock check."""

    def test_before_build_date(self, tmp_path: Path) -> None:
        """A host that booted in 1970: fail."""
        early = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        report = diagnose(make_config(tmp_path), probes(now=lambda: early))
        check = report.check("clock")
        assert check.status is Status.FAIL and str(BUILD_DATE) in check.detail

    def test_behind_the_journal(self, tmp_path: Path) -> None:
        """A journal entry from the future: the clock went backwards."""
        journal = tmp_path / "journal"
        journal.mkdir()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        (journal / "journal-20990101-0001.jsonl").write_text(
            json.dumps({"seq": 1, "time": later.isoformat()}) + "\n"
        )
        check = diagnose(make_config(tmp_path), probes()).check("clock")
        assert check.status is Status.FAIL and "behind the journal" in check.detail

    @pytest.mark.parametrize(
        ("ntp", "expected"),
        [((False, "timedatectl"), "not synchronised"), ((None, "x"), "unknown")],
    )
    def test_ntp(self, tmp_path: Path, ntp: tuple[bool | None, str], expected: str) -> None:
        """NTP off or unknown: a warning that says which."""
        check = diagnose(make_config(tmp_path), probes(ntp=lambda: ntp)).check("clock")
        assert check.status is Status.WARN and expected in check.detail
