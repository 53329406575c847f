# SPDX-License-Identifier: Apache-2.0
"""The journal-corruption part at smoke level, and its checker on fabricated broken outcomes."""

from __future__ import annotations

from pathlib import Path

from lab.reliability.faults import journal_corruption
from lab.reliability.faults.journal_corruption import Outcome, check_case
from lab.reliability.report import Level
from validator.journal.writer import GENESIS, canonical, line_hash

LINE = canonical({"seq": 1, "prev": GENESIS, "tap": 0})
GOOD = (LINE + "\n").encode()


def test_smoke_corruptions_start_quarantine_and_continue(tmp_path: Path) -> None:
    """Every 19th byte of the newest file corrupted six ways: starts, quarantines, goes on."""
    result = journal_corruption.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    cases, quarantined = int(str(result.figures["cases"])), int(str(result.figures["quarantined"]))
    assert cases >= 6 * 18 and quarantined >= cases // 4
    assert "start-ups" in result.tried


def test_checker_fires_when_a_foreign_tail_is_kept_silently() -> None:
    """A garbage last line left in place, unreported: two violations."""
    corrupted = GOOD + b'{"x":1}\n'
    appended = {"seq": 2, "prev": line_hash(LINE)}
    problems = check_case(Outcome(corrupted, corrupted, b"", 0, LINE, appended))
    assert any("not quarantined" in p for p in problems)


def test_checker_fires_on_dropped_bytes_and_a_broken_chain() -> None:
    """A tail cut away unreported, a seq reused, an entry chained to the wrong line: caught."""
    corrupted = GOOD + b"torn"
    problems = check_case(Outcome(corrupted, GOOD, b"", 1, LINE, {"seq": 1, "prev": GENESIS}, [1]))
    assert any("bytes dropped" in p for p in problems)
    assert any("appended seq 1 does not follow" in p for p in problems)
    assert any("seq 1 is already in the journal" in p for p in problems)
    assert any("does not chain" in p for p in problems)
