# SPDX-License-Identifier: Apache-2.0
"""``validator export`` checks integrity as replay does, and counts a duplicate once (issue 15.19).

A journal whose integrity fails is refused: exit 1, the problems on stderr, no file written. An
entry duplicated verbatim (same validator, seq and hash) is one tap: counted once by export and
replay, and reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import CONFIG
from test_replay import run_replay
from test_replay_anchor import head_of, spec
from test_replay_tamper import write_journal, write_journal_key

from validator.cli.main import main
from validator.journal.writer import canonical


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo journal of 60 taps without HMACs; returns its one file."""
    return write_journal(tmp_path_factory.mktemp("export") / "validator-3", key=None)


def copy_with(plain: Path, tmp_path: Path, lines: list[str]) -> Path:
    """A journal directory named like ``plain``'s holding ``lines``; returns it."""
    directory = tmp_path / "in" / plain.parent.name
    directory.mkdir(parents=True)
    (directory / plain.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def run_export(*args: str) -> tuple[int, str, str]:
    """``validator export ...``: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["export", *args, "--config", str(CONFIG)])
    return result.exit_code, result.stdout, result.stderr


def edited(lines: list[str], index: int) -> list[str]:
    """``lines`` with the entry at ``index`` given a 999 debit."""
    entry = json.loads(lines[index])
    entry.update(outcome="granted", debit=999)
    return [*lines[:index], canonical(entry), *lines[index + 1 :]]


@pytest.mark.parametrize(
    "tamper",
    ["edited", "garbage", "missing"],
)
def test_tampered_journal_is_refused(plain: Path, tmp_path: Path, tamper: str) -> None:
    """An edit, a garbage line or a removed entry: exit 1, the problem on stderr, no file."""
    lines = plain.read_text(encoding="utf-8").splitlines()
    changed = {
        "edited": edited(lines, 20),
        "garbage": [*lines, "garbage"],
        "missing": [*lines[:20], *lines[21:]],
    }[tamper]
    out = tmp_path / "out"
    code, stdout, stderr = run_export(str(copy_with(plain, tmp_path, changed)), "--out", str(out))
    assert code == 1, stdout + stderr
    kind = {"edited": "edited", "garbage": "unreadable", "missing": "missing"}[tamper]
    assert f"{kind} " in stderr and "integrity" in stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_anchor_and_key_checked(plain: Path, tmp_path: Path) -> None:
    """A removed tail under an anchor, and an entry without HMAC under a key: refused."""
    head = head_of(plain.parent)
    lines = plain.read_text(encoding="utf-8").splitlines()
    short = copy_with(plain, tmp_path / "a", lines[:-2])
    code, _, stderr = run_export(str(short), "--out", str(tmp_path / "o1"), "--anchor", spec(head))
    assert code == 1 and "truncated" in stderr
    key_file = write_journal_key(tmp_path)
    code, _, stderr = run_export(
        str(plain.parent), "--out", str(tmp_path / "o2"), "--journal-key-file", str(key_file)
    )
    assert code == 1 and "hmac_failure" in stderr


def test_clean_export_warns_when_unauthenticated(plain: Path, tmp_path: Path) -> None:
    """An intact journal exports (exit 0), with the warning that nothing proves it authentic."""
    code, stdout, stderr = run_export(str(plain.parent), "--out", str(tmp_path / "out"))
    assert code == 0 and "60 taps" in stdout
    assert "neither authenticated nor anchored" in stderr


def test_duplicated_entry_counted_once(plain: Path, tmp_path: Path) -> None:
    """Entry 10 written twice: export has 60 rows, replay 60 entries; both report the copy."""
    lines = plain.read_text(encoding="utf-8").splitlines()
    directory = copy_with(plain, tmp_path, [*lines[:10], lines[9], *lines[10:]])
    out = tmp_path / "out"
    code, stdout, _ = run_export(str(directory), "--out", str(out))
    assert code == 0 and "60 taps" in stdout and "1 duplicated entry counted once" in stdout
    (path,) = out.glob("*.parquet")
    seqs = pq.read_table(path).column("seq").to_pylist()
    taps = [json.loads(line) for line in lines if '"kind":"intent"' not in line]
    assert seqs == [tap["seq"] for tap in taps] and len(seqs) == 60  # intents get no row
    code, doc = run_replay(str(directory))
    assert code == 0 and doc["entries"] == 60 and doc["integrity"]["ok"]
    (duplicate,) = doc["integrity"]["duplicates"]
    assert (duplicate["line"], duplicate["seq"], duplicate["same_as_line"]) == (11, 10, 10)


def test_journal_copied_twice_counted_once(plain: Path, tmp_path: Path) -> None:
    """The same journal in two folders: replay counts its taps once; export refuses the overlap."""
    lines = plain.read_text(encoding="utf-8").splitlines()
    first = copy_with(plain, tmp_path / "a", lines)
    second = copy_with(plain, tmp_path / "b", lines)
    code, doc = run_replay(str(first), str(second))
    copies = len(lines)  # the taps and their closing intents
    assert code == 0 and doc["entries"] == 60 and doc["integrity"]["duplicate_count"] == copies
    code, _, stderr = run_export(str(first), str(second), "--out", str(tmp_path / "out"))
    assert code == 1 and "overlap" in stderr and f"seq 1..{copies}" in stderr


def test_two_journals_one_validator_overlap(plain: Path, tmp_path: Path) -> None:
    """Two different journals under one validator name share seqs: ``overlap``, exit 1."""
    other = write_journal(tmp_path / "other" / plain.parent.name, key=None, tear_rate=0.3)
    code, doc = run_replay(str(plain.parent), str(other.parent))
    assert code == 1
    (problem,) = [p for p in doc["integrity"]["breaks"] if p["kind"] == "overlap"]
    assert problem["seq"] == 1 and "in two journals" in problem["detail"]
