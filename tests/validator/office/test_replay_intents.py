# SPDX-License-Identifier: Apache-2.0
"""Replay and export read closing intents as records, not taps (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import CONFIG

from validator.cli.main import main
from validator.journal.writer import Journal

CARD_A, CARD_B = "00000000C0FFEE01", "00000000C0FFEE02"


def intent(card: str) -> dict[str, Any]:
    """A closing intent of ``card`` as the engine hands it to the journal."""
    return {"card": card, "writes": ["0030"], "debit": 1, "tap_time": "2026-03-02T08:00:00"}


def tap(card: str, **fields: Any) -> dict[str, Any]:
    """A tap entry of ``card`` (no trace, no state read: not replayable, still a tap)."""
    return {
        "card": card,
        "outcome": "granted",
        "debit": 1,
        "station": 101,
        "validator": "gate-7",
        "tap_time": "2026-03-02T08:00:00",
        **fields,
    }


def replay(directory: Path) -> tuple[int, dict[str, Any]]:
    """``validator replay DIR --json``."""
    result = CliRunner().invoke(main, ["replay", str(directory), "--config", str(CONFIG), "--json"])
    return result.exit_code, json.loads(result.output)


def test_intents_followed_by_their_taps_are_not_taps(tmp_path: Path) -> None:
    """Intents settled by their taps: integrity holds, entries count the taps only, the intent
    the journal ends with is listed open."""
    with Journal(tmp_path) as journal:
        journal.write_intent(intent(CARD_A)).wait()
        journal.write_intent(intent(CARD_A)).wait()  # a rerun: the tap settles both
        journal.append(tap(CARD_A))
        journal.append(tap(CARD_B, outcome="denied", debit=0))
        journal.write_intent(intent(CARD_B)).wait()
    code, doc = replay(tmp_path)
    assert code == 0 and doc["integrity"]["ok"] and doc["entries"] == 2 and doc["lines"] == 5
    assert doc["journals"][0]["entries"] == 2 and doc["journals"][0]["intents"] == 3
    (opened,) = doc["intents"]["open_at_end"]
    assert (opened["seq"], opened["card"]) == (5, CARD_B)
    assert doc["intents"]["total"] == 3 and doc["intents"]["settled_at_restart"] == 0


def test_the_unknown_tap_made_of_an_intent_settles_it_and_is_counted(tmp_path: Path) -> None:
    """The unknown tap a start-up makes of an open intent (``intent``: its seq) settles it."""
    with Journal(tmp_path) as journal:
        journal.write_intent(intent(CARD_A)).wait()
        journal.append(tap(CARD_A, outcome="unknown", intent=1))
        journal.append(tap(CARD_B))
    code, doc = replay(tmp_path)
    assert code == 0 and doc["integrity"]["ok"]
    assert doc["intents"] == {"total": 1, "settled_at_restart": 1, "open_at_end": []}


def test_an_intent_another_card_follows_breaks_custody(tmp_path: Path) -> None:
    """An intent followed by another card's records, none of its own: unsettled_intent."""
    with Journal(tmp_path) as journal:
        journal.write_intent(intent(CARD_A)).wait()
        journal.write_intent(intent(CARD_B)).wait()
        journal.append(tap(CARD_B))
    code, doc = replay(tmp_path)
    assert code == 1 and doc["integrity"]["counts"] == {"unsettled_intent": 1}
    (problem,) = doc["integrity"]["breaks"]
    assert (problem["seq"], problem["line"]) == (1, 1)
    assert f"card {CARD_A}" in problem["detail"] and "seq 2" in problem["detail"]


def test_export_gives_intents_no_row_and_counts_them(tmp_path: Path) -> None:
    """One row per tap; the output line counts the intents left out."""
    directory = tmp_path / "gate-7"
    with Journal(directory) as journal:
        journal.write_intent(intent(CARD_A)).wait()
        journal.append(tap(CARD_A))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["export", str(directory), "--format", "csv", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert ": 1 tap (1 closing intent left out (not taps))\n" in result.output
    (path,) = out.glob("*.csv")
    rows = path.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and ",2," in rows[1]  # the header, the tap (seq 2)
