# SPDX-License-Identifier: Apache-2.0
"""Clock steps: the wall clock jumps back and forth at every point of a run and across restarts.

The real journal writer appends entries while its clock steps backwards and forwards (seconds,
across midnight, days, a year; never to 1970, a separate finding) before each append, with a
restart (the journal closed and opened again, as after a crash or an upgrade) at every other
point, and files small enough to rotate by size too. Invariants, after every run:

- no seq lost or duplicated: read in ``journal_files()`` order, the seqs are 1..n, one per
  append acknowledged, and the chain verifies;
- file order follows seq: each file's name carries the seq of its first entry;
- the file being written is always the last name (the shipping recipe's premise).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from lab.reliability.report import Level, Log, PartResult
from validator.journal.files import first_seq
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, journal_files

NAME = "clock-steps"
START = dt.datetime(2026, 12, 3, 23, 59, 58, tzinfo=dt.UTC)  # two seconds before midnight
STEPS = (
    dt.timedelta(seconds=-1),
    dt.timedelta(seconds=5),  # past midnight
    dt.timedelta(seconds=-30),  # back before midnight
    dt.timedelta(days=-1),
    dt.timedelta(days=3),
    dt.timedelta(days=-400),
    dt.timedelta(days=400),
    dt.timedelta(hours=-25),
)


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def check_history(files: Sequence[tuple[str, Sequence[int]]], appended: int) -> list[str]:
    """Violations of a journal's files, in journal_files() order: (name, seqs in the file)."""
    problems: list[str] = []
    seqs = [seq for _name, file_seqs in files for seq in file_seqs]
    if seqs != list(range(1, appended + 1)):
        lost = sorted(set(range(1, appended + 1)) - set(seqs))
        twice = sorted({s for s in seqs if seqs.count(s) > 1})
        problems.append(
            f"seqs in file order are not 1..{appended}: lost {lost[:5]}, twice {twice[:5]}, "
            f"out of order {seqs != sorted(seqs)}"
        )
    for name, file_seqs in files:
        named = first_seq(Path(name))
        if file_seqs and named != file_seqs[0]:
            problems.append(f"{name}: named by seq {named}, first entry {file_seqs[0]}")
    return problems


def _read(directory: Path) -> list[tuple[str, list[int]]]:
    return [
        (path.name, [json.loads(line)["seq"] for line in path.read_text().splitlines() if line])
        for path in journal_files(directory)
    ]


def one_run(directory: Path, step: dt.timedelta, at: int, appends: int) -> list[str]:
    """Append ``appends`` entries, the clock stepping by ``step`` before append ``at``; check."""
    clock = _Clock(START)
    problems: list[str] = []
    journal = Journal(directory, clock=clock, max_bytes=900)
    journal.open()
    try:
        for number in range(appends):
            if number == at:
                clock.now += step
            if number in (at, at + 2):  # a restart right at the step, and one after it
                journal.close()
                journal = Journal(directory, clock=clock, max_bytes=900)
                journal.open()
            entry = journal.append({"tap": number, "pad": "x" * 120})
            clock.now += dt.timedelta(seconds=1)
            live = journal_files(directory)[-1].read_text().splitlines()[-1]
            if json.loads(live)["seq"] != entry["seq"]:
                problems.append(f"entry {entry['seq']} was not written to the last name")
    finally:
        journal.close()
    problems += check_history(_read(directory), appends)
    report = verify_journal(directory)
    if not report.ok:
        problems.append(f"the chain does not verify: {report.problems[:2]}")
    return problems


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Every step of STEPS at every point of a run of ``level.pick(40, 16, 6)`` appends."""
    appends = level.pick(40, 16, 6)
    steps = STEPS if level is not Level.SMOKE else STEPS[:5]
    violations: list[str] = []
    runs = 0
    started = time.monotonic()
    for step_index, step in enumerate(steps):
        for at in range(appends):
            directory = workdir / f"step{step_index}-at{at}"
            try:
                problems = one_run(directory, step, at, appends)
            except Exception as exc:  # a crash of the writer is a finding, the part goes on
                problems = [f"writer raised {exc!r}"]
            violations += [f"step {step} before append {at}: {p}" for p in problems]
            runs += 1
            shutil.rmtree(directory, ignore_errors=True)
        log(f"step {step}: {appends} points, {len(violations)} violations so far")
    log(f"{runs} runs in {time.monotonic() - started:.0f} s")
    tried = f"{len(steps)} clock steps x {appends} points, 2 restarts each ({runs} runs)"
    broke = f"clock stepped {runs} times, files rotated by day and size"
    figures: dict[str, object] = {"runs": runs, "steps": len(steps), "appends_per_run": appends}
    return PartResult(NAME, tried, broke, violations, figures=figures)
