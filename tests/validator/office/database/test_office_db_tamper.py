# SPDX-License-Identifier: Apache-2.0
"""A changed journal reaches the office: each change is an integrity break, never trusted.

Edited, missing, reordered, replaced and garbage entries, a journal that restarts from genesis,
and a tail deleted on the validator then written again: each is recorded (validator, seq, kind),
the entries before it are stored, and nothing after it is taken as trusted (held, raw).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from office_journals import JOURNAL_KEY, changed, count, data, lines_of, query, write_journal

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
    """The journal's 60 lines, seq 1 first."""
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
    """(breaks as (kind, seq), the stored taps' seqs, held lines, the anchor's seq)."""
    breaks = query(url, "SELECT kind, seq FROM integrity_breaks ORDER BY id")
    seqs = [r[0] for r in query(url, "SELECT seq FROM taps ORDER BY seq")]
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
    assert state(office_db) == ([("edited", 20)], upto(19), 41, 19)


def test_edited_entry_with_key(office_db: str, lines: list[str]) -> None:
    """With the key: the edited entry's own HMAC fails; it and all after it are held."""
    tampered = [*lines[:19], changed(lines[19], debit=999), *lines[20:]]
    ingest(office_db, "edited", data(tampered))
    assert state(office_db) == ([("hmac_failure", 20)], upto(19), 41, 19)


def test_edited_last_entry_seen_by_the_next_file(office_db: str, lines: list[str]) -> None:
    """No key: the last entry of a file changed on the validator after it was received."""
    ingest(office_db, "first", data(lines[:30]), key=None)
    ingest(office_db, "second", data([changed(lines[29], debit=999), *lines[30:]]), key=None)
    assert state(office_db) == ([("replaced", 30)], upto(30), 31, 30)


def test_missing_entry(office_db: str, lines: list[str]) -> None:
    """A removed entry: missing, at the first seq not received."""
    ingest(office_db, "missing", data([*lines[:19], *lines[20:]]))
    assert state(office_db) == ([("missing", 20)], upto(19), 40, 19)


def test_reordered_entries(office_db: str, lines: list[str]) -> None:
    """Two entries swapped: the chain breaks at the first one out of place."""
    ingest(office_db, "swapped", data([*lines[:19], lines[20], lines[19], *lines[21:]]))
    assert state(office_db) == ([("missing", 20)], upto(19), 41, 19)


def test_replaced_entry_in_an_overlapping_file(office_db: str, lines: list[str]) -> None:
    """An entry received before comes again with another content, even signed: replaced."""
    ingest(office_db, "first", data(lines[:30]))
    forged = [*lines[24:26], resigned(lines[26], debit=999), *lines[27:]]
    result = ingest(office_db, "second", data(forged))
    assert (result.duplicates, [(b.kind, b.seq) for b in result.breaks]) == (2, [("replaced", 27)])
    assert state(office_db) == ([("replaced", 27)], upto(30), 34, 30)


def test_garbage_line(office_db: str, lines: list[str]) -> None:
    """A line that is no entry: unreadable, at the seq expected there."""
    ingest(office_db, "garbage", data([*lines[:20], "garbage", *lines[20:]]))
    assert state(office_db) == ([("unreadable", 21)], upto(20), 41, 20)


def test_journal_restarting_from_genesis(office_db: str, lines: list[str], tmp_path: Path) -> None:
    """A validator whose journal starts again at seq 1: restarted; the new entries are held."""
    ingest(office_db, "old", data(lines))
    fresh = write_journal(tmp_path / "validator-1", taps=10, seed=9)
    ingest(office_db, "new", data(lines_of(fresh)))
    assert state(office_db) == ([("restarted", 1)], upto(60), 10, 60)


def test_deleted_tail_then_new_entries(
    office_db: str, journal: list[Path], lines: list[str], tmp_path: Path
) -> None:
    """The tail removed on the validator after shipping, then new taps: replaced, held."""
    ingest(office_db, "shipped", data(lines))
    directory = tmp_path / "validator-1"
    shutil.copytree(journal[0].parent, directory)
    last = sorted(directory.glob("journal-*.jsonl"))[-1]
    kept = last.read_text(encoding="utf-8").splitlines()[:-6]  # seq 55..60 deleted
    last.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    files = write_journal(directory, taps=10, seed=9)  # the writer goes on from seq 54
    after = lines_of(files)
    assert json.loads(after[54])["seq"] == 55 and after[54] != lines[54]
    result = ingest(office_db, "after-deletion", data(after))
    assert (result.duplicates, [(b.kind, b.seq) for b in result.breaks]) == (54, [("replaced", 55)])
    assert state(office_db) == ([("replaced", 55)], upto(60), 10, 60)


def test_nothing_after_a_break_is_trusted(office_db: str, lines: list[str]) -> None:
    """The genuine files after a break are held too: the chain resumes only from the anchor."""
    ingest(office_db, "first", data([*lines[:19], *lines[20:30]]))
    second = ingest(office_db, "second", data(lines[30:]))
    assert second.new_taps == 0 and second.held == 30
    assert state(office_db) == ([("missing", 20)], upto(19), 40, 19)
    # The entry that was missing arrives (a file resent whole): the chain continues from it,
    # and the held copies of what is now trusted are dropped.
    whole = ingest(office_db, "resent", data(lines))
    assert whole.ok and whole.new_taps == 41
    assert state(office_db) == ([("missing", 20)], upto(60), 0, 60)


def test_a_file_arriving_before_the_one_it_follows(office_db: str, lines: list[str]) -> None:
    """Seqs 31..60 before 1..30: held as missing, then taken in when 1..30 arrive."""
    early = ingest(office_db, "second", data(lines[30:]))
    assert [(b.kind, b.seq) for b in early.breaks] == [("missing", 1)] and early.held == 30
    first = ingest(office_db, "first", data(lines[:30]))
    assert first.ok and (first.new_taps, first.resumed, first.anchor[0]) == (30, 30, 60)
    assert state(office_db) == ([("missing", 1)], upto(60), 0, 60)
    files = query(office_db, "SELECT f.name, count(*) FROM taps t JOIN ingested_files f"
                  " ON f.id = t.file_id GROUP BY f.name ORDER BY f.name")  # fmt: skip
    assert files == [("first", 30), ("second", 30)]  # each tap keeps the file it came in
    assert ingest(office_db, "second-again", data(lines[30:])).status == "already_ingested"


def test_held_entries_that_do_not_chain_stay_held(
    office_db: str, lines: list[str], tmp_path: Path
) -> None:
    """A restarted journal's entries stay held when the old chain grows: they never link."""
    ingest(office_db, "old", data(lines[:30]))
    fresh = lines_of(write_journal(tmp_path / "validator-1", taps=40, seed=9))
    ingest(office_db, "new", data(fresh))  # restarted at seq 1: held
    more = ingest(office_db, "old-rest", data(lines[30:]))
    assert more.ok and more.resumed == 0  # fresh 31..40 do not continue the old seq 60
    assert state(office_db) == ([("restarted", 1)], upto(60), 40, 60)


def test_foreign_entry(office_db: str, lines: list[str], tmp_path: Path) -> None:
    """An entry of another validator in the file: foreign, and held with what follows."""
    other = lines_of(write_journal(tmp_path / "validator-2", validator="validator-2", taps=3))
    ingest(office_db, "mixed", data([*lines[:10], other[0], *lines[10:]]))
    assert state(office_db) == ([("foreign", 1)], upto(10), 51, 10)


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
    write_journal(directory, taps=3)
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
    result = ingest(office_db, "hostile", data(lines_of(files)))
    assert result.ok and (result.new_taps, result.new_records) == (6, 2)
    assert query(office_db, "SELECT seq, transaction_counter FROM unknown_taps") == [(6, None)]
    records = query(office_db, "SELECT seq, kind, note, entry IS NULL, line FROM records")
    assert [r[:2] for r in records] == [(4, "tap"), (5, "tap")]
    assert "NUL" in records[0][2] and records[0][3] is True and b"\\u0000" in records[0][4]
    assert "64 bits" in records[1][2] and records[1][3] is False
    assert query(office_db, "SELECT last_seq FROM validators") == [(8,)]


def test_lone_surrogates_never_fail_a_file(office_db: str, lines: list[str]) -> None:
    """A kind, a validator or a file name PostgreSQL cannot encode: stored escaped or refused."""
    import hashlib

    from validator.office.database.ingest import IngestError

    prev = hashlib.sha256(lines[1].encode()).hexdigest()
    odd = '{"kind":"\\ud800","prev":"%s","seq":3,"time":"\\ud800","validator":"validator-1"}'
    result = ingest(office_db, "bad-\udcff-\ud800-name", data([*lines[:2], odd % prev]), key=None)
    assert result.ok and (result.new_taps, result.new_records) == (2, 1)
    assert query(office_db, "SELECT seq, kind, entry IS NULL FROM records") == [
        (3, "untyped", True)
    ]
    assert query(office_db, "SELECT name FROM ingested_files") == [
        ("bad-\\xed\\xb3\\xbf-\\xed\\xa0\\x80-name",)
    ]
    foreign = '{"prev":"%s","seq":1,"validator":"v\\ud800"}' % ("0" * 64)
    with pytest.raises(IngestError, match="names its validator"):
        ingest(office_db, "foreign", data([foreign]), key=None)
