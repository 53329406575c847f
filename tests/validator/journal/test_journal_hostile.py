# SPDX-License-Identifier: Apache-2.0
"""Issue 15.2, 6, 9, 15, 19: clock steps, a deleted lock, foreign tails, another validator."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG
from structlog.testing import capture_logs

from validator.cli.main import main
from validator.engine.recording import JournalError
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, journal_files, line_hash

DAY = dt.datetime(2026, 12, 3, 23, 59, 50, tzinfo=dt.UTC)


def _seqs(directory: Path) -> list[int]:
    """Every entry's seq, reading the files in journal_files() order."""
    return [
        json.loads(line)["seq"]
        for path in journal_files(directory)
        for line in path.read_text().splitlines()
        if line
    ]


class _Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class TestClockSteps:
    """File names and order follow sequence numbers, never the wall clock alone."""

    @pytest.mark.parametrize(
        "step",
        [
            dt.timedelta(days=-28),
            dt.timedelta(seconds=-30),
            dt.timedelta(days=400),
            dt.timedelta(hours=-24),
        ],
    )
    def test_step_then_restart_keeps_order_and_seqs(
        self, tmp_path: Path, step: dt.timedelta
    ) -> None:
        """Entries before and after a clock step, across a restart: seqs 1..n in file order."""
        clock = _Clock(DAY)
        with Journal(tmp_path, clock=clock) as journal:
            for _ in range(3):
                journal.append({"tap": "before"})
            clock.now = DAY + step
            for _ in range(3):
                journal.append({"tap": "after"})
        with Journal(tmp_path, clock=clock) as journal:
            assert journal.last_seq == 6
            journal.append({"tap": "restarted"})
            clock.now = DAY  # and forward again
            journal.append({"tap": "forward"})
        assert _seqs(tmp_path) == list(range(1, 9))
        assert verify_journal(tmp_path).ok

    def test_live_file_is_always_the_last_name(self, tmp_path: Path) -> None:
        """Shipping all but the last name never takes the file being written, clock back or not."""
        clock = _Clock(DAY)
        with Journal(tmp_path, clock=clock, max_bytes=400) as journal:
            for i in range(12):
                clock.now = DAY - dt.timedelta(days=i % 3)  # the clock wobbles across midnight
                journal.append({"tap": i})
                live = journal_files(tmp_path)[-1]
                assert json.loads(live.read_text().splitlines()[-1])["seq"] == i + 1
                assert sorted(p.name for p in journal_files(tmp_path))[-1] == live.name

    def test_rotation_by_day_and_size_still_works(self, tmp_path: Path) -> None:
        """A new day (forward or back) and a full file both start a new file named by its seq."""
        clock = _Clock(DAY)
        with Journal(tmp_path, clock=clock, max_bytes=10_000) as journal:
            journal.append({"tap": 1})
            clock.now = DAY + dt.timedelta(seconds=20)  # past midnight
            journal.append({"tap": 2})
            clock.now = DAY  # back before midnight
            journal.append({"tap": 3})
            journal.append({"tap": 4, "pad": "x" * 10_000})
        names = [p.name for p in journal_files(tmp_path)]
        assert names == [
            "journal-s000000000001-20261203.jsonl",
            "journal-s000000000002-20261204.jsonl",
            "journal-s000000000003-20261203.jsonl",
            "journal-s000000000004-20261203.jsonl",
        ]

    def test_old_style_names_are_read_first(self, tmp_path: Path) -> None:
        """Files named by an older version keep their order before the new names."""
        with Journal(tmp_path, clock=_Clock(DAY)) as journal:
            journal.append({"tap": 1})
        (only,) = journal_files(tmp_path)
        only.rename(tmp_path / "journal-20261203-0001.jsonl")
        with Journal(tmp_path, clock=_Clock(DAY - dt.timedelta(days=40))) as journal:
            assert journal.last_seq == 1
            journal.append({"tap": 2})
        names = [p.name for p in journal_files(tmp_path)]
        assert names == ["journal-20261203-0001.jsonl", "journal-s000000000002-20261024.jsonl"]
        assert _seqs(tmp_path) == [1, 2]


FOREIGN_TAILS = {
    "object": b'{"x":1}\n',
    "null": b"null\n",
    "list": b"[1,2]\n",
    "seq-text": b'{"seq":"abc","prev":"' + b"0" * 64 + b'"}\n',
    "huge-number": b"1e400\n",
    "deep": b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "bad-utf8": b'{"seq":3,"prev":"\xff"}\n',
    "two-lines": b'{"x":1}\n\xfe\xfe\n',
}


class TestForeignTail:
    """A foreign or torn last line is set aside, reported and logged; the gate starts."""

    @pytest.mark.parametrize("name", sorted(FOREIGN_TAILS))
    def test_foreign_last_line(self, tmp_path: Path, name: str) -> None:
        """Quarantined with its bytes, a warning names file and size, the chain continues."""
        with Journal(tmp_path) as journal:
            entries = [journal.append({"tap": i}) for i in range(3)]
        (path,) = journal_files(tmp_path)
        good = path.read_bytes()
        path.write_bytes(good + FOREIGN_TAILS[name])
        with capture_logs() as logs, Journal(tmp_path) as journal:
            assert journal.last_seq == 3
            (kept,) = journal.report.quarantined
            assert kept.quarantine.read_bytes() == FOREIGN_TAILS[name]
            after = journal.append({"tap": "after"})
        assert after["seq"] == 4
        assert after["prev"] == line_hash(good.decode().splitlines()[-1])
        assert entries[-1]["seq"] == 3
        warning = next(e for e in logs if e["event"] == "journal_quarantined")
        assert warning["log_level"] == "warning"
        assert warning["file"] == str(path) and warning["size"] == len(FOREIGN_TAILS[name])
        assert verify_journal(tmp_path).ok

    def test_bad_byte_in_a_middle_line(self, tmp_path: Path) -> None:
        """A bad UTF-8 byte before the last line does not stop start-up (replay reports it)."""
        with Journal(tmp_path) as journal:
            for i in range(3):
                journal.append({"tap": i, "pad": "abc"})
        (path,) = journal_files(tmp_path)
        data = bytearray(path.read_bytes())
        data[data.index(b"abc")] = 0xFF
        path.write_bytes(bytes(data))
        with Journal(tmp_path) as journal:
            assert journal.last_seq == 3 and not journal.report.quarantined
            assert journal.append({"tap": 3})["seq"] == 4


_HOLDER = """
import sys
from validator.journal.writer import Journal
with Journal(sys.argv[1]) as journal:
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_deleted_lock_file_lets_no_second_writer_in(tmp_path: Path) -> None:
    """Another process holds the journal; its .lock is deleted: a second writer is still refused."""
    holder = subprocess.Popen(  # noqa: S603 - our own script, fixed argv
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        (tmp_path / ".lock").unlink()
        with pytest.raises(JournalError, match="another process"):
            Journal(tmp_path).open()
    finally:
        holder.communicate("")
    with Journal(tmp_path) as journal:  # released with the holder
        journal.append({"tap": 1})


def _entries(directory: Path, validator: str, count: int) -> Iterator[dict[str, object]]:
    with Journal(directory, validator_id=validator) as journal:
        for _ in range(count):
            yield journal.append({"validator": validator, "outcome": "granted"})


def test_another_validators_journal_is_refused(tmp_path: Path) -> None:
    """A folder whose newest entry is validator-1's is refused to validator-2, both named."""
    assert len(list(_entries(tmp_path, "validator-1", 3))) == 3
    with pytest.raises(JournalError, match="validator-1") as caught:
        Journal(tmp_path, validator_id="validator-2").open()
    assert "validator-2" in str(caught.value)
    with Journal(tmp_path, validator_id="validator-1") as journal:  # the lock was let go
        assert journal.last_seq == 3


def test_run_refuses_another_validators_journal_with_exit_3(tmp_path: Path) -> None:
    """validator run with validator-2's id on validator-1's journal stops with exit 3, no tap."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    settings = config / "validator.yaml"
    text = settings.read_text().replace("../var/journal", str(tmp_path / "j"))
    settings.write_text(text.replace("validator_id: validator-1", "validator_id: validator-2"))
    assert len(list(_entries(tmp_path / "j", "validator-1", 2))) == 2
    result = CliRunner().invoke(
        main, ["run", "--config", str(config), "--max-taps", "1", "--interval", "0"]
    )
    assert result.exit_code == 3, result.output
    assert "validator-1" in result.stderr
    assert verify_journal(tmp_path / "j").entries == 2


def test_a_last_line_whose_seq_went_down_reuses_no_seq(tmp_path: Path) -> None:
    """A byte of the last entry's seq corrupted (5 -> 1): the next seq follows the highest one."""
    with Journal(tmp_path, max_bytes=300) as journal:
        for i in range(5):
            journal.append({"tap": i})
    path = journal_files(tmp_path)[-1]
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"seq":5,', b'"seq":1,'))
    with Journal(tmp_path) as journal:
        assert journal.append({"tap": "after"})["seq"] == 6


def test_a_newest_file_emptied_by_quarantine_keeps_names_and_seqs_in_step(tmp_path: Path) -> None:
    """Newest file set aside whole, the one before ending on a seq bumped up (2 -> 7): the next
    entry goes to a file named by its own seq, not into the empty one named 3."""
    with Journal(tmp_path, max_bytes=300) as journal:
        for i in range(4):
            journal.append({"tap": i})
    older, newest = journal_files(tmp_path)
    assert newest.name.startswith("journal-s000000000003-")
    newest.write_bytes(b'{"x":1}\n')
    older.write_bytes(older.read_bytes().replace(b'"seq":2,', b'"seq":7,'))
    with Journal(tmp_path) as journal:
        entry = journal.append({"tap": "after"})
    assert entry["seq"] == 8
    live = journal_files(tmp_path)[-1]
    assert live.name.startswith("journal-s000000000008-")
    assert json.loads(live.read_text().splitlines()[-1])["seq"] == 8
