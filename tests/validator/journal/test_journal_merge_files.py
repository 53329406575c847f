# SPDX-License-Identifier: Apache-2.0
"""Many journals merged by tap time: open files stay few, whatever the number of journals.

A network has thousands of validators; its back office replays all their journals at once.
The merge must not hold one open file per journal (the common limit is 1,024 descriptors).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIG

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.journal.reading import (
    MAX_LINE,
    ReopeningFile,
    ReplayInputError,
    bounded_lines,
    discover,
    merged,
    open_journal_file,
)
from validator.journal.writer import Journal, journal_files

JOURNALS = 300
OPEN_FILES = 64  # the descriptor limit the replay runs under: far fewer than the journals
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """JOURNALS journals of 3 demo taps each (one validator each); returns the folder, lines."""
    seed = tmp_path_factory.mktemp("seed")
    with Journal(seed) as journal:
        run_demo(
            CONFIG,
            load_settings(CONFIG),
            taps=30,
            seed=5,
            start=dt.datetime(2026, 3, 2, 7),
            journal=journal,
            tear_rate=0.0,
        )
    sample = [
        {k: v for k, v in json.loads(line).items() if k not in ("seq", "prev", "time")}
        for path in journal_files(seed)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    taps = [e for e in sample if e.get("kind") != "intent" and "intent" not in e][:3]
    folder = tmp_path_factory.mktemp("network")
    for number in range(JOURNALS):
        with Journal(folder / f"v{number:03d}") as journal:
            for entry in taps:
                journal.append({**entry, "validator": f"v{number:03d}"})
    return folder, JOURNALS * len(taps)


def test_replay_of_many_journals_under_a_low_open_file_limit(network: tuple[Path, int]) -> None:
    """300 journals replay in full with at most 64 descriptors: no 'Too many open files'."""
    folder, lines = network
    script = (
        "import resource, sys\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({OPEN_FILES}, hard))\n"
        "from validator.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    command = [sys.executable, "-c", script, "replay", str(folder), "--config", str(CONFIG)]
    done = subprocess.run(  # noqa: S603 - this interpreter, this package
        [*command, "--json"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["lines"] == lines and doc["integrity"]["ok"]
    assert doc["decisions"]["different"] == 0 and doc["decisions"]["same"] == lines


def test_merge_holds_no_journal_file_open_between_lines(network: tuple[Path, int]) -> None:
    """While 300 journals are merged, this process holds no more descriptors than before."""
    folder, lines = network
    before = len(os.listdir("/proc/self/fd"))
    stream = merged(discover([folder]))
    keys = [next(stream).key for _ in range(JOURNALS)]
    during = len(os.listdir("/proc/self/fd"))
    keys += [line.key for line in stream]
    assert during <= before + 1, f"{during - before} descriptors held by the merge"
    assert len(keys) == lines and keys == sorted(keys)


CONTENTS = {
    "plain": b'{"a":1}\n{"b":2}\n',
    "no final newline": b'{"a":1}\n{"torn":',
    "blank lines": b"\n\n{}\n \n",
    "a line too long": b"{}\n" + b"x" * (MAX_LINE + 10) + b"\n{}\n",
    "too long at the end": b"{}\n" + b"y" * (MAX_LINE + 3),
    "exactly the cap": b"z" * MAX_LINE + b"\n" + b"z" * MAX_LINE,
    "empty": b"",
}


@pytest.mark.parametrize("block", [7, 4096, 64 * 1024])
@pytest.mark.parametrize("name", list(CONTENTS))
def test_a_reopening_file_reads_lines_as_an_open_file_does(
    tmp_path: Path, name: str, block: int
) -> None:
    """bounded_lines gives the same lines, flags, sizes and digests through either reader."""
    path = tmp_path / "journal-20260302-0001.jsonl"
    path.write_bytes(CONTENTS[name])
    with open_journal_file(path) as handle:
        expected = list(bounded_lines(handle))
    assert list(bounded_lines(ReopeningFile(path, block=block))) == expected


def test_a_file_replaced_while_read_is_refused(tmp_path: Path) -> None:
    """A journal file swapped for another between two reads is refused, never read as its own."""
    path = tmp_path / "journal-20260302-0001.jsonl"
    path.write_bytes(b'{"a":1}\n' * 100)
    reader = ReopeningFile(path, block=16)
    assert reader.readline(MAX_LINE + 1) == b'{"a":1}\n'
    other = tmp_path / "other"
    other.write_bytes(b'{"b":2}\n' * 100)
    other.replace(path)
    with pytest.raises(ReplayInputError, match="replaced while being read"):
        while reader.readline(MAX_LINE + 1):
            pass


def test_a_growing_file_is_read_to_its_end(tmp_path: Path) -> None:
    """Lines appended to the current file while it is merged are read, as an open file would."""
    path = tmp_path / "journal-20260302-0001.jsonl"
    path.write_bytes(b'{"a":1}\n')
    reader = ReopeningFile(path, block=4096)
    assert reader.readline(MAX_LINE + 1) == b'{"a":1}\n'
    with open(path, "ab") as handle:
        handle.write(b'{"a":2}\n')
    assert reader.readline(MAX_LINE + 1) == b'{"a":2}\n'
    assert reader.readline(MAX_LINE + 1) == b""


def test_a_reopening_file_holds_about_one_block(tmp_path: Path) -> None:
    """Reading a line holds about one block of the file, not the file: a merge of thousands of
    journals holds thousands of blocks, never thousands of files."""
    path = tmp_path / "journal-20260302-0001.jsonl"
    path.write_bytes(b'{"a":1}\n' * 100_000)  # 800 kB
    reader = ReopeningFile(path, block=4096)
    assert reader.readline(MAX_LINE + 1) == b'{"a":1}\n'
    assert reader.buffered <= 4096
    long_line = b"x" * 50_000 + b"\n"
    path.write_bytes(long_line + b'{"a":1}\n' * 100_000)
    reader = ReopeningFile(path, block=4096)
    assert reader.readline(MAX_LINE + 1) == long_line
    assert reader.buffered <= 4096 + len(long_line)
