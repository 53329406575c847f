# SPDX-License-Identifier: Apache-2.0
"""The disk-full part at smoke level, and its checker on fabricated broken taps."""

from __future__ import annotations

from pathlib import Path

from lab.reliability.faults import disk_full
from lab.reliability.faults.disk_full import TapOutcome, check_tap
from lab.reliability.report import Level
from validator.engine.recording import TapNotServedError
from validator.journal.entry import JournalEntry
from validator.journal.writer import GENESIS


def test_smoke_disk_full_at_every_apdu_never_charges_unrecorded(tmp_path: Path) -> None:
    """A disk filled before each APDU of a tap, three ways: every charged card is journaled."""
    result = disk_full.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    figures = {name: int(str(value)) for name, value in result.figures.items()}
    assert figures["taps"] > 3 * 10
    assert 0 < figures["refused"] < figures["taps"]
    assert figures["charged"] > 0


def test_checker_fires_on_a_charged_card_without_entry() -> None:
    """The issue's finding: counter 10 -> 9, no entry, a bare journal_failure."""
    refusal = TapNotServedError("no room", card="AB", outcome="granted", debit=1, journaled=False)
    problems = check_tap(TapOutcome("AB", True, None, refusal, True))
    assert any("charged without its journal entry" in p for p in problems)
    assert any("not journaled, yet card AB was charged" in p for p in problems)


def test_checker_fires_on_a_grant_the_card_does_not_back() -> None:
    """An entry granting a debit on a card left unchanged, on a broken chain: two violations."""
    entry = JournalEntry(1, "2026-03-02T08:00:00", GENESIS, card="AB", outcome="granted", debit=1)
    problems = check_tap(TapOutcome("AB", False, entry, None, False))
    assert any("does not show" in p for p in problems)
    assert any("does not verify" in p for p in problems)
