# SPDX-License-Identifier: Apache-2.0
"""The soak part: a short soak passes, and its per-tap checks catch what they should."""

from __future__ import annotations

from pathlib import Path

from lab.reliability import soak
from lab.reliability.report import Level
from validator.engine.outcome import Outcome, TapResult
from validator.engine.tap import TapRecord


def test_smoke_soak_has_no_violation(tmp_path: Path) -> None:
    """300 taps with tears: no violation, taps granted and torn, memory measured."""
    result = soak.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    figures = result.figures
    assert isinstance(figures["outcomes"], dict)
    assert figures["taps"] >= 300  # type: ignore[operator]
    assert figures["tears"] > 0  # type: ignore[operator]
    assert figures["outcomes"]["granted"] > 100
    assert figures["journal_entries"] == figures["taps"]
    assert figures["rss_start_mb"] > 0  # type: ignore[operator]


def test_checks_catch_broken_promises(tmp_path: Path) -> None:
    """A gate opened without a verified MAC, value taken in a denied tap: both violations."""
    run = soak.Soak(tmp_path, seed=1)
    try:
        card = run.fleet[0].card
        state = soak.CardState.of(card)
        poorer = soak.CardState((state.value[0] - 1, *state.value[1:]), state.cells)
        granted = TapResult(Outcome.GRANTED, "trip_debited", "", debit=1, mac_verified=False)
        run._check(TapRecord(1, granted, {}), state, poorer)
        denied = TapResult(Outcome.DENIED, "no_trips_left", "")
        run._check(TapRecord(2, denied, {}), state, poorer)
    finally:
        run.close()
    problems = run.tally.violations
    assert any("without a verified card MAC" in p for p in problems)
    assert any("units taken without a paid tap" in p for p in problems)


def test_sam_trace_does_not_grow(tmp_path: Path) -> None:
    """The SAM's exchange list (its channel's) does not grow with the number of taps."""
    run = soak.Soak(tmp_path, seed=2)
    try:
        run.run(200)
        assert len(run.processor.sam.exchanges) < 50  # one tap's worth, not 200 taps' worth
    finally:
        run.close()


def test_rss_is_read() -> None:
    """The resident set size comes from /proc/self/status."""
    assert 1 < soak.rss_mb() < 100_000
