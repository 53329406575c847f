# SPDX-License-Identifier: Apache-2.0
"""A journal the previous release wrote (no schema field) replays clean under the typed entry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_replay import run_replay
from test_replay_tamper import write_journal_key

from validator.journal.writer import journal_files

# Written by commit cd1443f (see tests/validator/journal/test_journal_entry.py).
RELEASE_1 = Path(__file__).parents[1] / "journal" / "journals" / "release-cd1443f"


def test_release_journal_replays_clean_with_its_hmacs(tmp_path: Path) -> None:
    """The previous release's journal (no schema field) replays clean, every HMAC verified."""
    directory = tmp_path / "journal"
    shutil.copytree(RELEASE_1, directory)
    key_file = write_journal_key(tmp_path)
    code, doc = run_replay(str(directory), "--journal-key-file", str(key_file))
    assert code == 0, doc["integrity"]
    assert doc["integrity"]["ok"] and doc["integrity"]["breaks"] == []
    (path,) = journal_files(RELEASE_1)
    assert doc["entries"] == len(path.read_text(encoding="utf-8").splitlines())
    assert all("schema" not in json.loads(line) for line in path.read_text().splitlines())


def test_release_decisions_replay_the_same() -> None:
    """Every decision of the previous release's journal replays the same from the ticketing
    model, its Intercode tap included (a contract list written without contract types, its
    FF contracts read as FF)."""
    code, doc = run_replay(str(RELEASE_1))
    assert code == 0
    (path,) = journal_files(RELEASE_1)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    decided = [e for e in lines if e["decision"] is not None]
    decisions = doc["decisions"]
    assert decisions["same"] == len(decided) and decisions["different"] == 0
    assert decisions["not_replayable"] == 0 and decisions["incomplete_state"] == 0
    assert {e["layout"] for e in decided} == {"demo", "intercode"}
