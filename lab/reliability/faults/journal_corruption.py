# SPDX-License-Identifier: Apache-2.0
"""Journal corruption: every byte of the newest journal file corrupted in turn, then start-up.

A journal of two files is written by the real writer; then, for each byte of its newest file
and each way of corrupting it (a bad UTF-8 byte, a newline, a NUL, a brace, a bit flip, the
byte removed), a copy of the folder is corrupted and the validator's start-up runs on it: the
journal opened (the real ``Journal.open``), the pending unknown taps restored, one entry
appended. Invariants, per case:

- the validator starts: nothing raises;
- nothing silently dropped: the bytes left in the file and the quarantined bytes are exactly
  the corrupted file; a tail that is not an entry is reported (quarantined);
- the chain continues: the appended entry's seq follows the last entry left and is not one
  already in the journal (a corrupted seq never makes a seq reused), and its ``prev`` is that
  entry's line hash.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.reliability.report import Level, Log, PartResult
from validator.journal.files import parse_entry
from validator.journal.pending import restore_pending
from validator.journal.writer import Journal, journal_files, line_hash

NAME = "journal-corruption"

Corruption = Callable[[bytes, int], bytes]
WAYS: dict[str, Corruption] = {
    "bad-utf8": lambda data, i: data[:i] + b"\xff" + data[i + 1 :],
    "newline": lambda data, i: data[:i] + b"\n" + data[i + 1 :],
    "nul": lambda data, i: data[:i] + b"\0" + data[i + 1 :],
    "brace": lambda data, i: data[:i] + b"{" + data[i + 1 :],
    "bit-flip": lambda data, i: data[:i] + bytes([data[i] ^ 0x04]) + data[i + 1 :],
    "removed": lambda data, i: data[:i] + data[i + 1 :],
}


@dataclass
class Outcome:
    """What one start-up on a corrupted folder left behind."""

    corrupted: bytes  # the newest file as corrupted
    kept: bytes  # the newest file after start-up
    quarantined: bytes  # every quarantined byte, in order
    reported: int  # quarantines reported by the start-up
    last_line: str | None  # the last entry line left in the journal (any file)
    appended: dict[str, Any] | None  # the entry appended after start-up
    seqs_left: list[int] = field(default_factory=list)  # of every entry left, before it


def check_case(outcome: Outcome) -> list[str]:
    """Violations of one case (used on fabricated outcomes by the tests too)."""
    problems: list[str] = []
    if outcome.kept + outcome.quarantined != outcome.corrupted:
        problems.append("bytes dropped or changed: kept + quarantined != the corrupted file")
    lines = outcome.corrupted.split(b"\n")
    tail_ok = outcome.corrupted.endswith(b"\n") and (
        len(lines) < 2 or parse_entry(lines[-2]) is not None
    )
    if outcome.corrupted and not tail_ok and outcome.reported == 0:
        problems.append("a tail that is not an entry was not quarantined and reported")
    if outcome.appended is None:
        problems.append("no entry could be appended after start-up")
    elif outcome.last_line is not None:
        entry = parse_entry(outcome.last_line.encode("utf-8"))
        seq = outcome.appended["seq"]
        if entry is None or seq <= entry["seq"]:
            problems.append(f"appended seq {seq} does not follow the last entry left")
        if seq in outcome.seqs_left:
            problems.append(f"appended seq {seq} is already in the journal")
        if outcome.appended["prev"] != line_hash(outcome.last_line):
            problems.append("the appended entry does not chain to the last entry left")
    return problems


def _seed(directory: Path) -> None:
    """Two files: an older one, and a newest one of three entries (one an unknown tap)."""
    with Journal(directory, max_bytes=700) as journal:
        for number in range(5):
            outcome = "unknown" if number == 3 else "granted"
            journal.append({"tap": number, "outcome": outcome, "card": f"{number:016X}", "é": "à"})
        restore_pending(_Processor(), journal)  # type: ignore[arg-type]  # the checkpoint


def _last_line(directory: Path) -> str | None:
    for path in reversed(journal_files(directory)):
        lines = [line for line in path.read_bytes().split(b"\n") if line]
        if lines:
            return lines[-1].decode("utf-8")
    return None


def start_up(case: Path, newest: Path, corrupted: bytes, processor: Any) -> Outcome:
    """The validator's start-up on a corrupted copy: open, restore, append; what it left."""
    journal = Journal(case)
    journal.open()
    try:
        kept = newest.read_bytes()
        quarantined = b"".join(q.quarantine.read_bytes() for q in journal.report.quarantined)
        last = _last_line(case)
        seqs = [
            entry["seq"]
            for path in journal_files(case)
            for raw in path.read_bytes().split(b"\n")
            if (entry := parse_entry(raw)) is not None
        ]
        processor.pending, processor.taps = {}, 0
        restore_pending(processor, journal)  # as run.py does before the first tap
        appended = journal.append({"tap": "after", "outcome": "granted"})
    finally:
        journal.close()
    reported = len(journal.report.quarantined)
    return Outcome(corrupted, kept, quarantined, reported, last, appended, seqs)


class _Processor:
    """What restore_pending touches of a TapProcessor."""

    def __init__(self) -> None:
        self.pending: dict[bytes, object] = {}
        self.taps = 0


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Corrupt each byte (every ``level.pick(1, 1, 19)``-th at smoke) of the newest file."""
    stride = level.pick(1, 1, 19)
    ways = WAYS if level is not Level.QUICK else dict(list(WAYS.items())[:3])
    seed = workdir / "seed"
    _seed(seed)
    newest = journal_files(seed)[-1]
    original = newest.read_bytes()
    violations: list[str] = []
    cases = reported = 0
    started = time.monotonic()
    processor = _Processor()
    for way, corrupt in ways.items():
        for offset in range(0, len(original), stride):
            case = workdir / "case"
            shutil.copytree(seed, case)
            corrupted = corrupt(original, offset)
            (case / newest.name).write_bytes(corrupted)
            try:
                outcome = start_up(case, case / newest.name, corrupted, processor)
                problems = check_case(outcome)
                reported += outcome.reported
            except Exception as exc:  # the validator did not start: the finding itself
                problems = [f"start-up raised {exc!r}"]
            violations += [f"{way} at byte {offset}: {p}" for p in problems]
            cases += 1
            shutil.rmtree(case)
        log(f"{way}: {len(original) // stride} bytes, {len(violations)} violations so far")
    log(f"{cases} corrupted start-ups in {time.monotonic() - started:.0f} s")
    tried = f"{cases} start-ups, {len(ways)} ways x every {stride} of {len(original)} bytes"
    broke = f"{reported} tails quarantined and reported"
    figures: dict[str, object] = {"cases": cases, "quarantined": reported, "bytes": len(original)}
    return PartResult(NAME, tried, broke, violations, figures=figures)
