# SPDX-License-Identifier: Apache-2.0
"""The config-mutations part at smoke level: refused mutations and valid ones, no violation."""

from __future__ import annotations

from pathlib import Path

from lab.reliability.faults import config_mutations
from lab.reliability.faults.config_mutations import Mutation, judge
from lab.reliability.report import Level


def test_smoke_subset_keeps_every_invariant(tmp_path: Path) -> None:
    """Each fault class of the subset exits 2 naming its file; the valid ones exit 0."""
    result = config_mutations.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    tried = result.figures["tried"]
    assert isinstance(tried, list) and "settings-duplicate-key" in tried
    assert "fares-negative-fare" in tried and "journal-key-shared" in tried
    assert result.figures["refused"] == result.figures["invalid"] == 5
    assert result.figures["accepted"] == 2


def test_the_checker_fails_both_ways(tmp_path: Path) -> None:
    """A harmless change expected refused, and a broken one expected accepted, are violations."""
    harmless = Mutation("harmless", "validator.yaml", lambda c: None, valid=False)
    broken, _ = judge(harmless, tmp_path)
    assert any("check-config exit 0, expected 2" in line for line in broken)
    bad = config_mutations.CATALOGUE[0]
    assert not bad.valid
    wrongly_valid = Mutation(bad.name, bad.file, bad.mutate, valid=True)
    broken, _ = judge(wrongly_valid, tmp_path)
    assert any("refused a valid change" in line for line in broken)


def test_catalogue_covers_the_fault_classes() -> None:
    """Every fault class named by issue 15 has at least one mutation, plus valid ones."""
    names = [m.name for m in config_mutations.CATALOGUE]
    for fault in (
        "duplicate-key",
        "wrong-type",
        "out-of-range",
        "unknown-key",
        "truncated",
        "latin1",
        "huge",
        "bad-regex",
        "missing",
        "journal-key",
    ):
        assert any(fault in name for name in names), fault
    assert sum(m.valid for m in config_mutations.CATALOGUE) >= 3
