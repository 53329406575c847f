# SPDX-License-Identifier: Apache-2.0
"""The journal's end cannot be altered unseen (issue 15.3).

A terminated line that is not an entry is ``unreadable`` (only an unterminated last line is a
torn tail); an entry without ``hmac`` fails when a key is given; without a key and without an
anchor the report says plainly that ``ok`` proves nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG
from test_replay import run_replay
from test_replay_tamper import write_journal, write_journal_key

from validator.cli.main import main
from validator.journal.writer import canonical


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo journal without HMACs (the default configuration); returns its one file."""
    return write_journal(tmp_path_factory.mktemp("plain") / "journal", key=None)


def copy_of(path: Path, tmp_path: Path, text: str) -> Path:
    """A journal directory holding ``text`` as the file of ``path``; returns the directory."""
    directory = tmp_path / "copy"
    directory.mkdir()
    (directory / path.name).write_text(text, encoding="utf-8")
    return directory


@pytest.mark.parametrize("garbage", ["garbage", '{"x":1}', "null", "[1,2]", '{"seq":"abc"}'])
def test_terminated_garbage_is_unreadable(plain: Path, tmp_path: Path, garbage: str) -> None:
    """A terminated last line that is not an entry breaks integrity, it is no torn tail."""
    text = plain.read_text(encoding="utf-8") + garbage + "\n"
    code, doc = run_replay(str(copy_of(plain, tmp_path, text)))
    assert code == 1 and not doc["integrity"]["ok"]
    (problem,) = doc["integrity"]["breaks"]
    assert problem["kind"] == "unreadable" and problem["line"] == len(text.splitlines())
    assert doc["integrity"]["quarantined"] == []


def test_unterminated_tail_is_torn(plain: Path, tmp_path: Path) -> None:
    """An unterminated last line (a crash mid-write) is a torn tail and keeps integrity."""
    text = plain.read_text(encoding="utf-8") + '{"seq": 999, "tap_ti'
    code, doc = run_replay(str(copy_of(plain, tmp_path, text)))
    assert code == 0 and doc["integrity"]["ok"]
    (torn,) = doc["integrity"]["quarantined"]
    assert torn["kind"] == "torn_tail" and torn["line"] == len(text.splitlines())


def test_entry_without_hmac_fails_with_a_key(tmp_path: Path) -> None:
    """With a journal key, an entry stripped of its ``hmac`` is an ``hmac_failure``."""
    path = write_journal(tmp_path / "journal")
    lines = path.read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])
    del last["hmac"]
    lines[-1] = canonical(last)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    key_file = write_journal_key(tmp_path)
    code, doc = run_replay(str(path.parent), "--journal-key-file", str(key_file))
    assert code == 1
    assert {(p["kind"], p["seq"]) for p in doc["integrity"]["breaks"]} == {
        ("hmac_failure", last["seq"])
    }
    assert doc["integrity"]["authenticated"] is True and doc["integrity"]["warning"] is None


def test_unauthenticated_report_says_so(plain: Path) -> None:
    """Without key nor anchor, the JSON and the summary say ``ok`` is no proof."""
    code, doc = run_replay(str(plain.parent))
    integrity = doc["integrity"]
    assert code == 0 and integrity["ok"]
    assert integrity["authenticated"] is False and integrity["anchored"] is False
    assert "neither authenticated nor anchored" in integrity["warning"]
    result = CliRunner().invoke(main, ["replay", str(plain.parent), "--config", str(CONFIG)])
    assert result.exit_code == 0
    assert "neither authenticated nor anchored" in " ".join(result.output.split())
