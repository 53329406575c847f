# SPDX-License-Identifier: Apache-2.0
"""The journal: chain, HMAC, rotation, torn tails, and a writer killed at random points."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from validator.engine.recording import JournalError
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, journal_files

KEY = bytes(range(32))


def write(directory: Path, count: int, **kwargs: object) -> list[dict[str, object]]:
    """Append ``count`` small entries and return them."""
    with Journal(directory, **kwargs) as journal:  # type: ignore[arg-type]
        return [journal.append({"tap": i, "outcome": "granted"}) for i in range(count)]


class TestChain:
    """Entries chain by SHA-256 and verify."""

    def test_sequence_and_chain(self, tmp_path: Path) -> None:
        """Entries get seq 1..n and a whole chain."""
        entries = write(tmp_path, 5)
        assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
        report = verify_journal(tmp_path)
        assert report.ok and report.entries == 5 and report.last_seq == 5

    def test_chain_continues_after_restart(self, tmp_path: Path) -> None:
        """A reopened journal continues the sequence and the chain."""
        write(tmp_path, 3)
        entries = write(tmp_path, 2)
        assert [e["seq"] for e in entries] == [4, 5]
        assert verify_journal(tmp_path).ok

    def test_edited_entry_is_detected(self, tmp_path: Path) -> None:
        """Changing one byte of an entry breaks the chain at the next one."""
        write(tmp_path, 4)
        path = journal_files(tmp_path)[0]
        lines = path.read_text().splitlines()
        lines[1] = lines[1].replace('"granted"', '"denied"')
        path.write_text("\n".join(lines) + "\n")
        report = verify_journal(tmp_path)
        assert report.count("chain_break") == 1

    def test_removed_entry_is_detected(self, tmp_path: Path) -> None:
        """Removing an entry shows as a chain break and a sequence gap."""
        write(tmp_path, 4)
        path = journal_files(tmp_path)[0]
        lines = path.read_text().splitlines()
        del lines[2]
        path.write_text("\n".join(lines) + "\n")
        report = verify_journal(tmp_path)
        assert report.count("chain_break") == 1 and report.count("seq_gap") == 1

    def test_hmac(self, tmp_path: Path) -> None:
        """With a journal key, a re-chained forgery still fails the HMAC check."""
        write(tmp_path, 2, key=KEY)
        assert verify_journal(tmp_path, key=KEY).ok
        assert verify_journal(tmp_path, key=bytes(32)).count("hmac_failure") == 2

    def test_single_writer(self, tmp_path: Path) -> None:
        """A second writer on the same directory is refused."""
        with Journal(tmp_path), pytest.raises(JournalError, match="another process"):
            Journal(tmp_path).open()


class TestRotation:
    """Files rotate by size and by day; the chain runs across files."""

    def test_by_size(self, tmp_path: Path) -> None:
        """A small size limit spreads entries over several files, chain intact."""
        write(tmp_path, 20, max_bytes=400)
        assert len(journal_files(tmp_path)) > 2
        assert verify_journal(tmp_path).entries == 20
        assert verify_journal(tmp_path).ok

    def test_by_day(self, tmp_path: Path) -> None:
        """A new day starts a new file."""
        days = iter(
            [
                dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC),
                dt.datetime(2026, 3, 2, 0, 1, tzinfo=dt.UTC),
            ]
        )
        with Journal(tmp_path, clock=lambda: next(days)) as journal:
            journal.append({"tap": 1})
            journal.append({"tap": 2})
        names = [p.name for p in journal_files(tmp_path)]
        assert names == [
            "journal-s000000000001-20260301.jsonl",
            "journal-s000000000002-20260302.jsonl",
        ]
        assert verify_journal(tmp_path).ok


class TestTornTail:
    """A crash mid-write leaves a torn last line: quarantined, never silently dropped."""

    def test_truncated_at_every_offset(self, tmp_path: Path) -> None:
        """Cut the last entry at every byte: the rest survives, the tail is quarantined."""
        source = tmp_path / "source"
        write(source, 3)
        data = journal_files(source)[0].read_bytes()
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        for offset in range(last_start, len(data)):
            case = tmp_path / f"cut{offset}"
            case.mkdir()
            (case / journal_files(source)[0].name).write_bytes(data[:offset])
            with Journal(case) as journal:
                torn = offset > last_start
                assert len(journal.report.quarantined) == (1 if torn else 0)
                assert journal.last_seq == 2
                journal.append({"tap": "after"})
            report = verify_journal(case)
            assert report.ok and report.entries == 3
            if torn:
                kept = journal.report.quarantined[0].quarantine.read_bytes()
                assert kept == data[last_start:offset]

    def test_garbage_last_line_is_quarantined(self, tmp_path: Path) -> None:
        """A newline-terminated but unparsable last line is set aside too."""
        write(tmp_path, 2)
        path = journal_files(tmp_path)[0]
        with open(path, "ab") as handle:
            handle.write(b'{"seq": 3, "torn\n')
        with Journal(tmp_path) as journal:
            assert len(journal.report.quarantined) == 1
            assert journal.append({"tap": 3})["seq"] == 3
        assert verify_journal(tmp_path).ok


WRITER = """
import sys
from validator.journal.writer import Journal
with Journal(sys.argv[1], max_bytes=int(sys.argv[2])) as journal:
    i = 0
    while True:
        entry = journal.append({"tap": i, "pad": "x" * (i % 50)})
        print(entry["seq"], flush=True)
        i += 1
"""


class TestKilledWriter:
    """A writer process killed with SIGKILL loses no entry it reported as committed."""

    @pytest.mark.parametrize("seed", range(6))
    def test_sigkill_at_random_points(self, tmp_path: Path, seed: int) -> None:
        """Kill, reopen, verify: every acknowledged entry is there and the chain is whole."""
        rnd = random.Random(seed)  # noqa: S311
        acknowledged = 0
        for _round in range(3):
            writer = subprocess.Popen(  # noqa: S603
                [sys.executable, "-c", WRITER, str(tmp_path), str(rnd.choice([600, 5000]))],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            assert writer.stdout is not None
            first = writer.stdout.readline()
            assert first.strip()
            time.sleep(rnd.uniform(0.0, 0.05))
            writer.send_signal(signal.SIGKILL)
            output, _ = writer.communicate()
            printed = [int(x) for x in ([first] + output.split()) if x.strip()]
            acknowledged = max(acknowledged, max(printed))
            with Journal(tmp_path) as journal:
                assert journal.last_seq >= acknowledged
            report = verify_journal(tmp_path)
            assert report.ok, report.problems
            assert report.last_seq is not None and report.last_seq >= acknowledged
            seqs = [
                json.loads(line)["seq"]
                for p in journal_files(tmp_path)
                for line in p.read_text().splitlines()
                if line
            ]
            assert seqs == list(range(1, len(seqs) + 1))
