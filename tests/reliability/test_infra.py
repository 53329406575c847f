# SPDX-License-Identifier: Apache-2.0
"""The infrastructure part at smoke level: each fault once, on the gate loop through pcscd."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.pcscd import PrivatePcscd
from lab.reliability.faults import infra
from lab.reliability.report import Level

pytest_plugins = ["pcsc_fixtures"]


def test_every_fault_once_keeps_every_invariant(pcscd: PrivatePcscd, tmp_path: Path) -> None:
    """pcscd killed, SAM out, reader cut, disk full: shut meanwhile, served after, none lost."""
    result = infra.run_on(pcscd, Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    figures = {name: int(str(value)) for name, value in result.figures.items()}
    for fault in infra.FAULTS:
        assert figures[f"{fault}_faults"] == 1
        assert figures[f"{fault}_recovered"] == 1
    assert figures["taps"] >= 5
    assert pcscd.running


def test_without_pcscd_the_part_says_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pcscd or vpcd here: the part reports it skipped, not a violation."""
    monkeypatch.setattr(infra, "missing_binaries", lambda: "pcscd is not installed")
    result = infra.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.broke == "skipped: no pcscd" and result.violations == []
