# SPDX-License-Identifier: Apache-2.0
"""Anchored heads see what no check inside the host sees without a key (issue 15.3 b, c).

``validator journal-head`` prints the chain's head; ``replay --anchor`` with it reports a
removed tail (``truncated``), a rewritten last entry and a recomputed chain (``anchor_mismatch``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_replay import run_replay
from test_replay_tamper import write_journal, write_journal_key

from validator.cli.main import main
from validator.journal.writer import GENESIS, canonical, line_hash


def head_of(directory: Path) -> dict[str, Any]:
    """``validator journal-head DIR``: the parsed JSON head."""
    result = CliRunner().invoke(main, ["journal-head", str(directory)])
    assert result.exit_code == 0, result.output
    head: dict[str, Any] = json.loads(result.output)
    return head


def spec(head: dict[str, Any]) -> str:
    """The ``validator:seq:sha256`` form of a head."""
    return f"{head['validator']}:{head['seq']}:{head['hash']}"


@pytest.fixture
def journal(tmp_path: Path) -> tuple[Path, list[str], dict[str, Any]]:
    """A plain demo journal, its lines and its published head."""
    path = write_journal(tmp_path / "journal", key=None)
    return path, path.read_text(encoding="utf-8").splitlines(), head_of(path.parent)


def test_head_is_the_last_entry(journal: tuple[Path, list[str], dict[str, Any]]) -> None:
    """The head names the last entry: its validator, seq, line hash, time and file."""
    path, lines, head = journal
    last = json.loads(lines[-1])
    assert head == {
        "validator": last["validator"],
        "seq": last["seq"],
        "hash": line_hash(lines[-1]),
        "time": last["time"],
        "file": str(path),
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"seq": 61, "torn')  # a torn tail is no head
    assert head_of(path.parent) == head


def test_head_of_a_shipped_file(tmp_path: Path) -> None:
    """Given a file, the head is its own last entry, which replay of that file then matches."""
    path = write_journal(tmp_path / "journal", key=None)
    lines = path.read_text(encoding="utf-8").splitlines()
    shipped = tmp_path / "shipped" / path.name
    shipped.parent.mkdir()
    shipped.write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    head = head_of(shipped)
    assert (head["seq"], head["hash"], head["file"]) == (40, line_hash(lines[39]), str(shipped))
    code, doc = run_replay(str(shipped.parent), "--anchor", spec(head))
    assert code == 0 and doc["integrity"]["anchors"][0]["status"] == "matched"


def test_forged_head_is_not_anchored(tmp_path: Path) -> None:
    """With the journal key, a last entry whose HMAC fails is refused as a head (exit 2)."""
    path = write_journal(tmp_path / "journal")
    key_file = write_journal_key(tmp_path)
    args = ["journal-head", str(path.parent), "--journal-key-file", str(key_file)]
    assert CliRunner().invoke(main, args).exit_code == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])
    last["debit"] = 999
    path.write_text("\n".join([*lines[:-1], canonical(last)]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "HMAC missing or wrong" in result.output


def test_head_of_an_empty_journal_is_an_error(tmp_path: Path) -> None:
    """No entry to anchor: exit 2 with a message."""
    result = CliRunner().invoke(main, ["journal-head", str(tmp_path)])
    assert result.exit_code == 2 and "no journal entry" in result.output


def test_untouched_journal_matches_its_anchor(
    journal: tuple[Path, list[str], dict[str, Any]],
) -> None:
    """The anchored head is found: ok, anchored, no warning."""
    path, _, head = journal
    code, doc = run_replay(str(path.parent), "--anchor", spec(head))
    assert code == 0 and doc["integrity"]["ok"] and doc["integrity"]["warning"] is None
    (anchor,) = doc["integrity"]["anchors"]
    assert anchor == {
        "validator": head["validator"],
        "seq": head["seq"],
        "hash": head["hash"],
        "status": "matched",
    }


def test_removed_tail_is_truncated(
    journal: tuple[Path, list[str], dict[str, Any]], tmp_path: Path
) -> None:
    """Deleting the last lines replays ``truncated`` at the anchored seq, exit 1."""
    path, lines, head = journal
    path.write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps([head]), encoding="utf-8")
    code, doc = run_replay(str(path.parent), "--anchor", str(heads))
    assert code == 1
    (problem,) = doc["integrity"]["breaks"]
    assert (problem["kind"], problem["seq"]) == ("truncated", head["seq"])
    assert f"ends at seq {head['seq'] - 3}" in problem["detail"]


def test_rewritten_last_entry_mismatches(journal: tuple[Path, list[str], dict[str, Any]]) -> None:
    """The last line rewritten as a granted 999 debit is an ``anchor_mismatch``."""
    path, lines, head = journal
    last = json.loads(lines[-1])
    last.update(outcome="granted", debit=999)
    lines[-1] = canonical(last)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, doc = run_replay(str(path.parent), "--anchor", spec(head))
    assert code == 1
    assert {(p["kind"], p["seq"]) for p in doc["integrity"]["breaks"]} == {
        ("anchor_mismatch", head["seq"])
    }


def test_recomputed_chain_mismatches(journal: tuple[Path, list[str], dict[str, Any]]) -> None:
    """A middle edit with every ``prev`` recomputed passes the chain, not the anchor."""
    path, lines, head = journal
    entries = [json.loads(line) for line in lines]
    entries[20]["debit"] = 0 if entries[20]["debit"] else 5
    prev, out = GENESIS, []
    for entry in entries:
        entry["prev"] = prev
        out.append(canonical(entry))
        prev = line_hash(out[-1])
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    assert run_replay(str(path.parent))[0] == 0  # the chain alone cannot see it
    code, doc = run_replay(str(path.parent), "--anchor", spec(head))
    assert code == 1 and doc["integrity"]["counts"] == {"anchor_mismatch": 1}


@pytest.mark.parametrize("value", ["v:1:abc", "nothing-here", "v:x:" + "0" * 64])
def test_bad_anchor_is_refused(journal: tuple[Path, list[str], dict[str, Any]], value: str) -> None:
    """An anchor that is neither a head nor a file of heads: exit 2."""
    path, _, _ = journal
    result = CliRunner().invoke(main, ["replay", str(path.parent), "--anchor", value])
    assert result.exit_code == 2 and "error:" in result.output
