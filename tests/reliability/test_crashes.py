# SPDX-License-Identifier: Apache-2.0
"""The process-crash part at smoke level: a few SIGKILLs and power cuts, every invariant held."""

from __future__ import annotations

from pathlib import Path

from reliability import crashes
from reliability.report import Level


def test_smoke_crashes_keep_every_invariant(tmp_path: Path) -> None:
    """Five crashes of the validator process: nothing lost, cards whole, journal verifies."""
    logged: list[str] = []
    result = crashes.run(Level.SMOKE, tmp_path, logged.append)
    assert result.violations == []
    figures = {name: int(str(value)) for name, value in result.figures.items()}
    assert figures["timed_kills"] + figures["power_cuts"] == 5
    assert figures["taps_begun"] > 0 and figures["taps_decided"] > 0
    assert figures["cards_old_image"] + figures.get("cards_new_image", 0) > 0
    assert result.part == crashes.NAME and "SIGKILL" in result.tried
