# SPDX-License-Identifier: Apache-2.0
"""The clock-steps part at smoke level, and its checker on fabricated broken histories."""

from __future__ import annotations

from pathlib import Path

from lab.reliability.faults import clock_steps
from lab.reliability.report import Level


def test_smoke_clock_steps_keep_seqs_and_order(tmp_path: Path) -> None:
    """Steps back and forth at every point, with restarts: no seq lost, twice or out of order."""
    result = clock_steps.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    assert result.figures["runs"] == 5 * 6 and "clock steps" in result.tried


def test_checker_fires_on_a_duplicated_seq() -> None:
    """A history with seq 2 twice (the old date-named files after a step back) is a violation."""
    files = [
        ("journal-s000000000001-20261203.jsonl", [1, 2]),
        ("journal-s000000000002-20261105.jsonl", [2, 3]),
    ]
    problems = clock_steps.check_history(files, 3)
    assert problems and "twice [2]" in problems[0]


def test_checker_fires_on_file_order_by_date() -> None:
    """Date-named files read out of seq order, and a name not carrying its first seq, are caught."""
    files = [("journal-20261105-0001.jsonl", [4, 5]), ("journal-20261203-0001.jsonl", [1, 2, 3])]
    problems = clock_steps.check_history(files, 5)
    assert any("out of order True" in p for p in problems)
    assert any("named by seq None" in p for p in problems)
