# SPDX-License-Identifier: Apache-2.0
"""The campaign's summary table and its command line."""

from __future__ import annotations

from reliability.report import Level, PartResult, format_table


def test_table_ends_with_the_violation_count() -> None:
    """The table lists every part, each violation, and ends with the total."""
    ok = PartResult("soak", "10 taps", "1 tear", seconds=2.0)
    bad = PartResult("tear-sweep", "3 tear points", "3 tears", ["double debit at 7"], 1.0)
    table = format_table([ok, bad]).splitlines()
    assert table[0].split() == ["part", "tried", "broke", "violations", "time"]
    assert any(line.startswith("soak") and " 0 " in line for line in table)
    assert "! tear-sweep: double debit at 7" in table
    assert table[-1] == "violations: 1"


def test_levels_pick_their_size() -> None:
    """Each level picks its own size."""
    assert [lvl.pick(100, 10, 1) for lvl in Level] == [100, 10, 1]


def test_result_as_dict_counts_violations() -> None:
    """The JSON form carries the count and the details."""
    result = PartResult("fuzzing", "5 inputs", "none", ["crash"], 1.5, {"inputs": 5})
    assert result.as_dict()["violations"] == 1
    assert result.as_dict()["seconds"] == 1.5
