# SPDX-License-Identifier: Apache-2.0
"""``validator export``: Parquet and CSV read back with the same rows and values."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import CONFIG
from test_replay import entries, write_demo

from validator.cli.main import main
from validator.journal.entry import JournalEntry
from validator.journal.writer import GENESIS, canonical, line_hash
from validator.office.export import COLUMNS, mac_status


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo journal with tears, and a torn tail that export must skip."""
    directory = tmp_path_factory.mktemp("export") / "validator-7"
    write_demo(directory, taps=80, seed=2)
    (path,) = sorted(directory.glob("journal-*.jsonl"))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"seq": 81, "tor')
    return directory


def expected(entry: dict[str, Any]) -> dict[str, Any]:
    """The values a row must hold for one journal entry."""
    decision = entry["decision"] or {}
    return {
        "time": dt.datetime.fromisoformat(entry["tap_time"]),
        "validator": entry["validator"],
        "station": entry["station"],
        "seq": entry["seq"],
        "card": entry["card"],
        "product": decision.get("product"),
        "outcome": entry["outcome"],
        "reason": entry["reason"],
        "contract": decision.get("contract"),
        "debit": entry["debit"],
        "remaining": decision.get("remaining"),
        "latency_ms": entry["ms"],
        "mac_status": mac_status(JournalEntry.from_json(entry)),
    }


def export(journal: Path, out: Path, fmt: str) -> Path:
    """Run the CLI; returns the one file written."""
    result = CliRunner().invoke(main, ["export", str(journal), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = sorted(journal.glob("journal-*.jsonl"))[0].read_text(encoding="utf-8")
    intents = text.count('"kind":"intent"')
    assert (
        f"80 taps (1 unreadable line skipped; {intents} closing intents left out (not taps))"
        in (result.output)
    )
    (path,) = sorted(out.glob(f"*.{fmt}"))
    return path


def test_one_tap_counted_in_the_singular(tmp_path: Path) -> None:
    """One tap and a torn tail: export and replay say "1 tap", "1 line", never "1 taps"."""
    directory = tmp_path / "one"
    write_demo(directory, taps=1, tear=0)
    runner = CliRunner()
    replayed = runner.invoke(main, ["replay", str(directory), "--config", str(CONFIG)])
    assert replayed.exit_code == 0, replayed.output
    assert "1 (of 2 lines)" in replayed.output  # the tap and its closing intent
    assert "closing intents        │ 1 (0 open at the end, 0 unknown at a restart)" in (
        replayed.output
    )
    (path,) = sorted(directory.glob("journal-*.jsonl"))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"seq": 3, "tor')
    result = runner.invoke(
        main, ["export", str(directory), "--format", "csv", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert ": 1 tap (1 unreadable line skipped; 1 closing intent left out (not taps))\n" in (
        result.output
    )


def test_parquet_round_trip(journal: Path, tmp_path: Path) -> None:
    """Same row count, same values, typed columns."""
    table = pq.read_table(export(journal, tmp_path / "out", "parquet"))
    assert table.column_names == list(COLUMNS)
    rows = table.to_pylist()
    source = entries_without_tail(journal)
    assert len(rows) == len(source) == 80
    for row, entry in zip(rows, source, strict=True):
        assert {k: row[k] for k in expected(entry)} == expected(entry)
    assert {r["mac_status"] for r in rows} >= {"verified", "none"}


def test_csv_round_trip(journal: Path, tmp_path: Path) -> None:
    """Same row count and values as text; empty cells for nulls."""
    path = export(journal, tmp_path / "out", "csv")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    source = entries_without_tail(journal)
    assert len(rows) == len(source) == 80
    for row, entry in zip(rows, source, strict=True):
        want = expected(entry)
        want["time"] = want["time"].isoformat()
        assert {k: row[k] for k in want} == {
            k: "" if v is None else str(v) for k, v in want.items()
        }


def entries_without_tail(journal: Path) -> list[dict[str, Any]]:
    """The journal's entries, the torn tail left out."""
    path = sorted(journal.glob("journal-*.jsonl"))[0]
    text = path.read_text(encoding="utf-8")
    clean = journal.parent / "clean" / journal.name
    clean.mkdir(parents=True, exist_ok=True)
    (clean / path.name).write_text(text[: text.rfind("\n") + 1], encoding="utf-8")
    return entries(clean)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_an_entry_that_does_not_read_is_skipped(tmp_path: Path, fmt: str) -> None:
    """Entries that do not read as JournalEntry (a wrong type, a newer schema) are skipped."""
    directory = tmp_path / "validator-7"
    write_demo(directory, taps=12, seed=2, tear=0)
    (path,) = sorted(directory.glob("journal-*.jsonl"))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    taps = [entry for entry in lines if entry.get("kind") != "intent"]
    taps[3]["station"] = "101"
    taps[7]["schema"] = 3
    prev = GENESIS
    with open(path, "w", encoding="utf-8") as handle:  # the chain rebuilt: integrity holds
        for entry in lines:
            entry["prev"] = prev
            line = canonical(entry)
            handle.write(line + "\n")
            prev = line_hash(line)
    result = CliRunner().invoke(
        main, ["export", str(directory), "--format", fmt, "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "10 taps (2 unreadable lines skipped; " in result.output
