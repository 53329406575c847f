# SPDX-License-Identifier: Apache-2.0
"""``validator doctor`` against hostile hosts (issue 15): production SAM, clock, journal files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from test_doctor import make_config, probes, production

from validator.app.doctor.diagnose import diagnose
from validator.app.doctor.report import Identity, Status


def test_software_sam_fails_in_production(tmp_path: Path) -> None:
    """Issue 15.8: simulation: false with the in-process software SAM: sam_reader fails."""
    config = production(tmp_path, 0o600)
    report = diagnose(config, probes(list_readers=lambda: ["Test Card 00 00"]))
    check = report.check("sam_reader")
    assert check.status is Status.FAIL, report.as_json()
    assert "software SAM" in check.detail and "production" in check.detail
    assert "pcsc:" in check.hint
    assert report.exit_code == 2


def test_software_sam_passes_in_simulation(tmp_path: Path) -> None:
    """The embedded default (simulation) keeps its software SAM check passing."""
    report = diagnose(make_config(tmp_path), probes())
    assert report.check("sam_reader").status is Status.PASS


def journal_of(config: Path) -> Path:
    """The journal folder of a make_config configuration (created)."""
    import yaml

    folder = Path(yaml.safe_load((config / "validator.yaml").read_text())["journal_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class TestJournalFiles:
    """Issue 15.18: every journal file and the lock must be writable by the service user."""

    def test_root_owned_file_fails(self, tmp_path: Path) -> None:
        """A journal file the service user cannot write: journal fails, the hint is a chown."""
        config = make_config(tmp_path)
        folder = journal_of(config)
        (folder / "journal-00000001.jsonl").write_text("{}\n")
        lock = folder / ".lock"
        lock.write_text("")
        lock.chmod(0o644)
        service = Identity("svc", 54321, frozenset([54321]))
        folder.chmod(0o777)  # the folder itself is writable by svc: only the files are not
        report = diagnose(config, probes(identity=service))
        check = report.check("journal")
        assert check.status is Status.FAIL, report.as_json()
        assert "not writable by svc" in check.detail and ".lock" in check.detail
        assert check.hint.startswith(f"chown -R svc: {folder}")

    def test_own_files_pass(self, tmp_path: Path) -> None:
        """Files owned by the service user: journal passes."""
        config = make_config(tmp_path)
        folder = journal_of(config)
        (folder / "journal-00000001.jsonl").write_text("{}\n")
        (folder / ".lock").write_text("")
        assert diagnose(config, probes()).check("journal").status is Status.PASS


class TestQuarantine:
    """Issue 15.15: quarantine files in the journal folder are reported."""

    def test_none(self, tmp_path: Path) -> None:
        """No quarantine file: pass, and it says so."""
        report = diagnose(make_config(tmp_path), probes())
        check = report.check("quarantine")
        assert check.status is Status.PASS and "none" in check.detail

    def test_count_newest_size(self, tmp_path: Path) -> None:
        """Two quarantine files: a warning with the count, the newest name and the bytes."""
        config = make_config(tmp_path)
        folder = journal_of(config)
        old = folder / "quarantine-journal-00000001-20261201T000000000000.bin"
        new = folder / "quarantine-journal-00000002-20261203T000000000000.bin"
        old.write_bytes(b"x" * 10)
        new.write_bytes(b"y" * 5)
        os.utime(old, (1_000_000_000, 1_000_000_000))
        check = diagnose(config, probes()).check("quarantine")
        assert check.status is Status.WARN
        assert "2 quarantine files" in check.detail and new.name in check.detail
        assert "15 bytes" in check.detail
        assert "replay" in check.hint


class TestMetrics:
    """Issue 15.16: doctor says when the metrics port is taken by another program."""

    def test_no_check_without_metrics(self, tmp_path: Path) -> None:
        """metrics_address unset: no metrics check."""
        report = diagnose(make_config(tmp_path), probes())
        assert "metrics" not in {c.name for c in report.checks}

    def test_free_port(self, tmp_path: Path) -> None:
        """A free port: pass."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = make_config(tmp_path, metrics_address="127.0.0.1", metrics_port=port)
        assert diagnose(config, probes()).check("metrics").status is Status.PASS

    def test_busy_port(self, tmp_path: Path) -> None:
        """A port held by another program: warn that the validator serves without metrics."""
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            port = other.getsockname()[1]
            config = make_config(tmp_path, metrics_address="127.0.0.1", metrics_port=port)
            check = diagnose(config, probes()).check("metrics")
        assert check.status is Status.WARN, check
        assert "without metrics" in check.detail

    def test_served_by_the_validator(self, tmp_path: Path) -> None:
        """The running validator's endpoint answers: pass."""
        from validator.app.metrics import ValidatorMetrics, serve_metrics

        server = serve_metrics(ValidatorMetrics(), "127.0.0.1", 0)
        try:
            config = make_config(tmp_path, metrics_address="127.0.0.1", metrics_port=server.port)
            check = diagnose(config, probes()).check("metrics")
        finally:
            server.stop()
        assert check.status is Status.PASS and "served" in check.detail
