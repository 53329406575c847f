# SPDX-License-Identifier: Apache-2.0
"""Issue 15.22: start-up rebuilds pending unknown taps from a checkpoint, not every file."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_card
from structlog.testing import capture_logs
from test_restore_pending import NOON, _processor, _tap, _TornClose

from validator.journal.pending import CHECKPOINT_NAME, restore_pending
from validator.journal.writer import Journal, journal_files

FILLER = {"outcome": "granted", "card": "00", "pad": "x" * 300}


def _history(directory: Path) -> int:
    """An unknown tap at seq 2 (its closing intent is seq 1), then filler entries over several
    files; returns the unknown tap's seq."""
    with Journal(directory, max_bytes=2000) as journal:
        unknown = _tap(_processor(journal), _TornClose(make_card("multi_trip")), NOON)
        assert unknown.seq == 2
        for _ in range(10):
            journal.append(FILLER)
    return 2


def test_pending_unknown_survives_the_shipping_of_old_files(tmp_path: Path) -> None:
    """Old files shipped and deleted after a start-up: the unknown tap is still pending."""
    seq = _history(tmp_path)
    with Journal(tmp_path, max_bytes=2000) as journal:
        assert restore_pending(_processor(journal), journal) == 1  # writes the checkpoint
        for _ in range(10):
            journal.append(FILLER)
    for path in journal_files(tmp_path)[:-1]:  # the documented shipping recipe
        path.unlink()
    with Journal(tmp_path, max_bytes=2000) as journal:
        processor = _processor(journal)
        assert restore_pending(processor, journal) == 1
        (pending,) = processor.pending.values()
        assert pending.seq == seq and pending.debit_sent > 0


def test_start_up_reads_only_what_follows_the_checkpoint(tmp_path: Path) -> None:
    """A line added to an old file after the checkpoint is not read: start-up is bounded."""
    _history(tmp_path)
    with Journal(tmp_path, max_bytes=2000) as journal:
        restore_pending(_processor(journal), journal)
        journal.append(FILLER)
    old, line = next(
        (path, line)
        for path in journal_files(tmp_path)
        for line in path.read_text().splitlines()
        if '"outcome":"unknown"' in line
    )
    assert old != journal_files(tmp_path)[-1]
    forged = json.loads(line)
    forged["card"] = "AA" * 8
    with old.open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    with Journal(tmp_path, max_bytes=2000) as journal:
        processor = _processor(journal)
        assert restore_pending(processor, journal) == 1
        assert bytes.fromhex("AA" * 8) not in processor.pending


def test_damaged_checkpoint_falls_back_to_a_full_scan_with_a_log_line(tmp_path: Path) -> None:
    """A checkpoint that is garbage, or of another history, is not trusted: full scan, logged."""
    _history(tmp_path)
    for damage in (
        b"\xff{not json",
        b'{"version":1,"seq":3,"hash":"' + b"0" * 64 + b'","pending":[]}',
    ):
        (tmp_path / CHECKPOINT_NAME).write_bytes(damage)
        with capture_logs() as logs, Journal(tmp_path, max_bytes=2000) as journal:
            assert restore_pending(_processor(journal), journal) == 1
        scans = [e for e in logs if e["event"] == "pending_full_scan"]
        assert len(scans) == 1 and scans[0]["reason"], logs
