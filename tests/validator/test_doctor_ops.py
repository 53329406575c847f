# SPDX-License-Identifier: Apache-2.0
"""``validator doctor`` against hostile hosts (issue 15): production SAM, clock, journal files."""

from __future__ import annotations

from pathlib import Path

from test_doctor import make_config, probes, production

from validator.doctor import Status, diagnose


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
