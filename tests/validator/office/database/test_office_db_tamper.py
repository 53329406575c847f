# SPDX-License-Identifier: Apache-2.0
"""A changed journal reaches the office: each change is an integrity break, never trusted.

Edited, missing, reordered, replaced and garbage entries, a journal that restarts from genesis,
and a tail deleted on the validator then written again: each is recorded (validator, seq, kind),
the entries before it are stored, and nothing after it is taken as trusted (held, raw).

A journal's lines are its taps and the closing intents written before their Closes (stored as
records): the figures below count lines.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from office_journals import (
    JOURNAL_KEY,
    changed,
    count,
    data,
    lines_of,
    query,
    tap_lines,
    write_journal,
)

from validator.journal.writer import canonical, entry_mac

pytest_plugins = ["postgres_fixtures"]
psycopg = pytest.importorskip("psycopg")

from validator.office.database.ingest import IngestResult, ingest_file  # noqa: E402


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 60-tap journal with HMACs (validator-1), in four files."""
    return write_journal(tmp_path_factory.mktemp("tamper") / "validator-1")


@pytest.fixture(scope="module")
def lines(journal: list[Path]) -> list[str]:
    """The journal's lines (60 taps and their closing intents), seq 1 first."""
    return lines_of(journal)


def ingest(url: str, name: str, raw: bytes, key: bytes | None = JOURNAL_KEY) -> IngestResult:
    """ingest_file on a connection of its own."""
    with psycopg.connect(url) as conn:
        return ingest_file(conn, name, raw, key=key)


def resigned(line: str, **fields: Any) -> str:
    """``line`` changed and signed again with the journal key (a forgery by a key holder)."""
    entry = json.loads(changed(line, **fields))
    entry["hmac"] = entry_mac(JOURNAL_KEY, entry)
    return canonical(entry)


def state(url: str) -> tuple[list[tuple[Any, ...]], list[int], int, int]:
    """(breaks as (kind, seq), the stored seqs (taps and records), held lines, the anchor)."""
    breaks = query(url, "SELECT kind, seq FROM integrity_breaks ORDER BY id")
    stored = "SELECT seq FROM taps UNION ALL SELECT seq FROM records ORDER BY seq"
    seqs = [r[0] for r in query(url, stored)]
    anchor = query(url, "SELECT last_seq FROM validators")[0][0]
    return breaks, seqs, count(url, "held_entries"), anchor


def upto(n: int) -> list[int]:
    """Seqs 1..n."""
    return list(range(1, n + 1))


def test_edited_entry_without_key(office_db: str, lines: list[str]) -> None:
    """No key: an edited entry is seen by its successor's prev; it and all after it are held."""
    tampered = [*lines[:19], changed(lines[19], debit=999), *lines[20:]]
    result = ingest(office_db, "edited", data(tampered), key=None)
    assert [(b.kind, b.seq) for b in result.breaks] == [("edited", 20)]
    assert state(office_db) == ([("edited", 20)], upto(19), len(lines) - 19, 19)


def test_edited_entry_with_key(office_db: str, lines: list[str]) -> None:
    """With the key: the edited entry's own HMAC fails; it and all after it are held."""
    tampered = [*lines[:19], changed(lines[19], debit=999), *lines[20:]]
    ingest(office_db, "edited", data(tampered))
    assert state(office_db) == ([("hmac_failure", 20)], upto(19), len(lines) - 19, 19)


def test_edited_last_entry_seen_by_the_next_file(office_db: str, lines: list[str]) -> None:
    """No key: the last entry of a file changed on the validator after it was received."""
    ingest(office_db, "first", data(lines[:30]), key=None)
    ingest(office_db, "second", data([changed(lines[29], debit=999), *lines[30:]]), key=None)
    assert state(office_db) == ([("replaced", 30)], upto(30), len(lines) - 29, 30)


def test_missing_entry(office_db: str, lines: list[str]) -> None:
    """A removed entry: missing, at the first seq not received."""
    ingest(office_db, "missing", data([*lines[:19], *lines[20:]]))
    assert state(office_db) == ([("missing", 20)], upto(19), len(lines) - 20, 19)


def test_reordered_entries(office_db: str, lines: list[str]) -> None:
    """Two entries swapped: the chain breaks at the first one out of place."""
    ingest(office_db, "swapped", data([*lines[:19], lines[20], lines[19], *lines[21:]]))
    assert state(office_db) == ([("missing", 20)], upto(19), len(lines) - 19, 19)


def test_replaced_entry_in_an_overlapping_file(office_db: str, lines: list[str]) -> None:
    """An entry received before comes again with another content, even signed: replaced."""
    ingest(office_db, "first", data(lines[:30]))
    forged = [*lines[24:26], resigned(lines[26], debit=999), *lines[27:]]
    result = ingest(office_db, "second", data(forged))
    assert (result.duplicates, [(b.kind, b.seq) for b in result.breaks]) == (2, [("replaced", 27)])
    assert state(office_db) == ([("replaced", 27)], upto(30), len(lines) - 26, 30)


def test_garbage_line(office_db: str, lines: list[str]) -> None:
    """A line that is no entry: unreadable, at the seq expected there."""
    ingest(office_db, "garbage", data([*lines[:20], "garbage", *lines[20:]]))
    assert state(office_db) == ([("unreadable", 21)], upto(20), len(lines) - 19, 20)


def test_journal_restarting_from_genesis(office_db: str, lines: list[str], tmp_path: Path) -> None:
    """A validator whose journal starts again at seq 1: restarted; the new entries are held."""
    ingest(office_db, "old", data(lines))
    fresh = lines_of(write_journal(tmp_path / "validator-1", taps=10, seed=9))
    ingest(office_db, "new", data(fresh))
    assert state(office_db) == ([("restarted", 1)], upto(len(lines)), len(fresh), len(lines))


def test_deleted_tail_then_new_entries(
    office_db: str, journal: list[Path], lines: list[str], tmp_path: Path
) -> None:
    """The tail removed on the validator after shipping, then new taps: replaced, held."""
    ingest(office_db, "shipped", data(lines))
    directory = tmp_path / "validator-1"
    shutil.copytree(journal[0].parent, directory)
    remaining = 6  # the last six lines deleted, from the newest files
    for path in sorted(directory.glob("journal-*.jsonl"), reverse=True):
        text = path.read_text(encoding="utf-8").splitlines()
        cut_here, remaining = min(remaining, len(text)), remaining - min(remaining, len(text))
        if cut_here == len(text):
            path.unlink()
        else:
            path.write_text("".join(line + "\n" for line in text[:-cut_here]), encoding="utf-8")
        if not remaining:
            break
    files = write_journal(directory, taps=10, seed=9)  # the writer goes on from seq N - 6
    after = lines_of(files)
    cut = len(lines) - 6
    assert json.loads(after[cut])["seq"] == cut + 1 and after[cut] != lines[cut]
    result = ingest(office_db, "after-deletion", data(after))
    breaks = [(b.kind, b.seq) for b in result.breaks]
    assert (result.duplicates, breaks) == (cut, [("replaced", cut + 1)])
    held = len(after) - cut
    assert state(office_db) == ([("replaced", cut + 1)], upto(len(lines)), held, len(lines))


def test_nothing_after_a_break_is_trusted(office_db: str, lines: list[str]) -> None:
    """The genuine files after a break are held too: the chain resumes only from the anchor."""
    ingest(office_db, "first", data([*lines[:19], *lines[20:30]]))
    second = ingest(office_db, "second", data(lines[30:]))
    assert second.new_taps == 0 and second.held == len(lines) - 30
    assert state(office_db) == ([("missing", 20)], upto(19), len(lines) - 20, 19)
    # The entry that was missing arrives (a file resent whole): the chain continues from it,
    # and the held copies of what is now trusted are dropped.
    whole = ingest(office_db, "resent", data(lines))
    assert whole.ok and whole.new_taps == len(tap_lines(lines[19:]))
    assert state(office_db) == ([("missing", 20)], upto(len(lines)), 0, len(lines))


def test_a_file_arriving_before_the_one_it_follows(office_db: str, lines: list[str]) -> None:
    """Seqs 31..60 before 1..30: held as missing, then taken in when 1..30 arrive."""
    n = len(lines)
    early = ingest(office_db, "second", data(lines[30:]))
    assert [(b.kind, b.seq) for b in early.breaks] == [("missing", 1)] and early.held == n - 30
    first = ingest(office_db, "first", data(lines[:30]))
    taps = len(tap_lines(lines[:30]))
    assert first.ok and (first.new_taps, first.resumed, first.anchor[0]) == (taps, n - 30, n)
    assert state(office_db) == ([("missing", 1)], upto(n), 0, n)
    files = query(office_db, "SELECT f.name, count(*) FROM taps t JOIN ingested_files f"
                  " ON f.id = t.file_id GROUP BY f.name ORDER BY f.name")  # fmt: skip
    # each tap keeps the file it came in
    assert files == [("first", taps), ("second", len(tap_lines(lines[30:])))]
    assert ingest(office_db, "second-again", data(lines[30:])).status == "already_ingested"


def test_held_entries_that_do_not_chain_stay_held(
    office_db: str, lines: list[str], tmp_path: Path
) -> None:
    """A restarted journal's entries stay held when the old chain grows: they never link."""
    ingest(office_db, "old", data(lines[:30]))
    fresh = lines_of(write_journal(tmp_path / "validator-1", taps=40, seed=9))
    ingest(office_db, "new", data(fresh))  # restarted at seq 1: held
    more = ingest(office_db, "old-rest", data(lines[30:]))
    assert more.ok and more.resumed == 0  # fresh entries do not continue the old chain
    assert state(office_db) == ([("restarted", 1)], upto(len(lines)), len(fresh), len(lines))


def test_foreign_entry(office_db: str, lines: list[str], tmp_path: Path) -> None:
    """An entry of another validator in the file: foreign, and held with what follows."""
    other = lines_of(write_journal(tmp_path / "validator-2", validator="validator-2", taps=3))
    ingest(office_db, "mixed", data([*lines[:10], other[0], *lines[10:]]))
    assert state(office_db) == ([("foreign", 1)], upto(10), len(lines) - 9, 10)


def test_break_recorded_once_when_the_file_comes_again(office_db: str, lines: list[str]) -> None:
    """The same break in a re-sent, longer file: one break row, one held row per line (21..50)."""
    ingest(office_db, "a", data([*lines[:19], *lines[20:40]]))
    ingest(office_db, "b", data([*lines[:19], *lines[20:50]]))
    assert state(office_db) == ([("missing", 20)], upto(19), 30, 19)


def test_held_lines_are_kept_raw(office_db: str, lines: list[str]) -> None:
    """What is held keeps its bytes and the reason, so nothing received is lost."""
    ingest(office_db, "garbage", data([*lines[:2], "garbage", lines[2]]))
    held = query(office_db, "SELECT seq, reason, line FROM held_entries ORDER BY line_number")
    assert held == [
        (None, "unreadable at seq 3", b"garbage"),
        (3, "after the unreadable at seq 3", lines[2].encode()),
    ]


def test_hostile_entries_are_stored_raw(office_db: str, tmp_path: Path) -> None:
    """A NUL character or a number beyond bigint in a chained entry: stored raw, chain goes on."""
    from validator.journal.writer import Journal

    directory = tmp_path / "validator-1"
    first = len(lines_of(write_journal(directory, taps=3)))  # 3 taps and their intents
    with Journal(directory, key=JOURNAL_KEY, validator_id="validator-1") as writer:
        writer.append({"validator": "validator-1", "outcome": "denied", "explanation": "a\x00b"})
        writer.append({"validator": "validator-1", "outcome": "denied", "attempts": 2**63})
        big = {
            "outcome": "unknown",
            "tap_time": "2026-03-02T07:30:00",
            "transaction_counter": 2**63,
        }
        writer.append({"validator": "validator-1", **big})
    files = write_journal(directory, taps=2, seed=6)
    lines = lines_of(files)
    intents = len(lines) - len(tap_lines(lines))
    result = ingest(office_db, "hostile", data(lines))
    assert result.ok and (result.new_taps, result.new_records) == (6, 2 + intents)
    big_seq = first + 3
    assert query(office_db, "SELECT seq, transaction_counter FROM unknown_taps") == [
        (big_seq, None)
    ]
    records = query(
        office_db, "SELECT seq, kind, note, entry IS NULL, line FROM records WHERE kind = 'tap'"
    )
    assert [r[:2] for r in records] == [(first + 1, "tap"), (first + 2, "tap")]
    assert "NUL" in records[0][2] and records[0][3] is True and b"\\u0000" in records[0][4]
    assert "64 bits" in records[1][2] and records[1][3] is False
    assert query(office_db, "SELECT last_seq FROM validators") == [(len(lines),)]


def test_lone_surrogates_never_fail_a_file(office_db: str, lines: list[str]) -> None:
    """A kind, a validator or a file name PostgreSQL cannot encode: stored escaped or refused."""
    import hashlib

    from validator.office.database.ingest import IngestError

    prev = hashlib.sha256(lines[1].encode()).hexdigest()
    odd = '{"kind":"\\ud800","prev":"%s","seq":3,"time":"\\ud800","validator":"validator-1"}'
    result = ingest(office_db, "bad-\udcff-\ud800-name", data([*lines[:2], odd % prev]), key=None)
    taps = len(tap_lines(lines[:2]))
    assert result.ok and (result.new_taps, result.new_records) == (taps, 3 - taps)
    assert query(
        office_db, "SELECT seq, kind, entry IS NULL FROM records WHERE kind <> 'intent'"
    ) == [(3, "untyped", True)]
    assert query(office_db, "SELECT name FROM ingested_files") == [
        ("bad-\\xed\\xb3\\xbf-\\xed\\xa0\\x80-name",)
    ]
    foreign = '{"prev":"%s","seq":1,"validator":"v\\ud800"}' % ("0" * 64)
    with pytest.raises(IngestError, match="names its validator"):
        ingest(office_db, "foreign", data([foreign]), key=None)
