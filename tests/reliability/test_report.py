# SPDX-License-Identifier: Apache-2.0
"""The campaign's summary table and its command line."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.reliability.__main__ import CONFIG, scan_campaign
from lab.reliability.report import Level, PartResult, format_table


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


def test_campaign_scan_finds_a_key_in_any_file(tmp_path: Path) -> None:
    """The end-of-campaign scan reports a shipped simulation key written anywhere in the
    workdir, and passes a workdir without one."""
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "journal.jsonl").write_text('{"seq": 1, "card": "00000000C0FFEE01"}\n')
    assert scan_campaign(tmp_path).violations == []
    keys = yaml.safe_load((CONFIG / "keys.sim.yaml").read_text())
    key = next(iter(_hex_values(keys)))
    (tmp_path / "part" / "trace.log").write_text(f"debug: k={key.lower()}\n")
    assert len(scan_campaign(tmp_path).violations) == 1


def _hex_values(node: object) -> list[str]:
    """Every 32-hex-digit string in a parsed YAML document (the 16-byte keys)."""
    if isinstance(node, dict):
        return [v for value in node.values() for v in _hex_values(value)]
    if isinstance(node, list):
        return [v for value in node for v in _hex_values(value)]
    text = str(node)
    return [text] if len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text) else []
