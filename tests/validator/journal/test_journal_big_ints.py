# SPDX-License-Identifier: Apache-2.0
"""Integers beyond 64 bits in a journal line: one typed error, whichever JSON parser reads it.

orjson reads an integer beyond the 64-bit range as a float, the standard library as an int: a
seq of 2**70 used to be refused as "expected an integer, got a number" by one and accepted by
the other. Both now refuse it, naming the field and the range.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.journal import jsonline
from validator.journal.entry import EntryFormatError, JournalEntry
from validator.journal.intent import INTENT_KIND, read_record
from validator.journal.writer import Journal, journal_files
from validator.office.replay.audit import ReplayRequest, replay
from validator.office.replay.line import Options, entry_facts

START = dt.datetime(2026, 3, 2, 7, 0)
HUGE = (2**70, 2**64, -(2**63) - 1, 2**70 + 1)
PARSERS = ("orjson", "json")


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real demo journal with tears (taps and closing intents)."""
    directory = tmp_path_factory.mktemp("bigint") / "journal"
    with Journal(directory) as writer:
        run_demo(
            CONFIG,
            load_settings(CONFIG),
            taps=30,
            seed=5,
            start=START,
            journal=writer,
            tear_rate=0.3,
        )
    return directory


def _records(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in journal_files(directory)
        for line in path.read_bytes().splitlines()
    ]


def _parser(monkeypatch: pytest.MonkeyPatch, parser: str) -> None:
    if parser == "json":
        monkeypatch.setattr(jsonline, "orjson", None)
    else:
        assert jsonline.orjson is not None, "orjson is a dependency"


def _error(line: bytes) -> str:
    with pytest.raises(EntryFormatError) as caught:
        read_record(jsonline.loads(line))
    return str(caught.value)


def _with(record: dict[str, Any], path: tuple[str, ...], value: int) -> bytes:
    record = json.loads(json.dumps(record))
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(record).encode()


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("tap", ("seq",)),
        ("tap", ("debit",)),
        ("tap", ("station",)),
        ("tap", ("schema",)),
        ("tap", ("decision", "debit")),
        ("intent", ("seq",)),
        ("intent", ("debit",)),
        ("intent", ("schema",)),
    ],
)
def test_same_error_with_either_parser(
    journal: Path, monkeypatch: pytest.MonkeyPatch, kind: str, path: tuple[str, ...], value: int
) -> None:
    """An integer beyond 64 bits is refused with one message naming the field, by both parsers."""
    records = _records(journal)
    if kind == "intent":
        record = next(r for r in records if r.get("kind") == INTENT_KIND)
    else:
        record = next(r for r in records if r.get("kind") is None and r.get("decision"))
    line = _with(record, path, value)
    messages = []
    for parser in PARSERS:
        with monkeypatch.context() as patch:
            _parser(patch, parser)
            messages.append(_error(line))
    assert messages[0] == messages[1] == f"{'.'.join(path)}: integer out of the 64-bit range"


@pytest.mark.parametrize("value", [2**64 - 1, -(2**63), 2**63])
def test_64_bit_integers_still_read(journal: Path, value: int) -> None:
    """The largest and smallest 64-bit integers are still read, as integers."""
    record = next(r for r in _records(journal) if r.get("kind") is None)
    entry = JournalEntry.from_json(jsonline.loads(_with(record, ("debit",), value)))
    assert entry.debit == value and type(entry.debit) is int


@pytest.mark.parametrize("parser", PARSERS)
def test_chain_refuses_a_huge_seq(
    journal: Path, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    """Replay's chain reads a seq beyond 64 bits as no journal entry, with either parser."""
    _parser(monkeypatch, parser)
    record = _records(journal)[0]
    facts, _ = entry_facts(_with(record, ("seq",), 2**70), None)
    assert facts.seq is None
    assert facts.error == "not a journal entry (seq: integer out of the 64-bit range)"


def test_replay_reports_alike(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal with a huge debit and a huge seq replays to the same report with both parsers."""
    copy = tmp_path / "journal"
    copy.mkdir()
    (path,) = journal_files(journal)
    lines = path.read_bytes().splitlines()
    lines[3] = _with(json.loads(lines[3]), ("debit",), 2**70)
    lines[6] = _with(json.loads(lines[6]), ("seq",), 2**70 + 1)
    (copy / path.name).write_bytes(b"\n".join(lines) + b"\n")
    docs = []
    for parser in PARSERS:
        with monkeypatch.context() as patch:
            _parser(patch, parser)
            doc = replay(ReplayRequest([copy], Options())).as_json()
            doc.pop("seconds")
            doc.pop("taps_per_second")
            docs.append(doc)
    assert docs[0] == docs[1]
    details = [b["detail"] for b in docs[0]["integrity"]["breaks"]]
    assert "seq 4: malformed entry: debit: integer out of the 64-bit range" in details
    assert "not a journal entry (seq: integer out of the 64-bit range)" in details
