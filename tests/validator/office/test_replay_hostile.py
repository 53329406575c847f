# SPDX-License-Identifier: Apache-2.0
"""Replay and export of a hostile journal: bounded memory, no hang, no traceback (issue 15.13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG
from test_replay import run_replay
from test_replay_tamper import write_journal

from validator.cli.main import main
from validator.journal.reading import MAX_LINE
from validator.office import export as exporter

NESTED = "[" * 100_000 + "]" * 100_000
BIG = 64 * 1024 * 1024  # the probe used 200 MB; 64 MB shows the same cost, faster


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo journal without HMACs; returns its one file."""
    return write_journal(tmp_path_factory.mktemp("hostile") / "journal", key=None)


def journal_with(plain: Path, directory: Path, line: bytes, repeat: int = 1) -> Path:
    """A copy of ``plain`` with ``line`` * ``repeat`` (and a newline) after the 30th line."""
    lines = plain.read_bytes().splitlines(keepends=True)
    directory.mkdir(parents=True)
    path = directory / plain.name
    with open(path, "wb") as handle:
        handle.writelines(lines[:30])
        for _ in range(repeat):
            handle.write(line)
        handle.write(b"\n")
        handle.writelines(lines[30:])
    return directory


def test_deeply_nested_line_is_unreadable(plain: Path, tmp_path: Path) -> None:
    """A line nested 100,000 deep is an unreadable line 31, never a RecursionError."""
    directory = journal_with(plain, tmp_path / "j", NESTED.encode())
    code, doc = run_replay(str(directory))
    breaks = doc["integrity"]["breaks"]
    assert code == 1 and (breaks[0]["kind"], breaks[0]["line"]) == ("unreadable", 31)
    assert breaks[0]["detail"] == "not a journal entry (nested too deeply)"
    result = CliRunner().invoke(main, ["export", str(directory), "--out", str(tmp_path / "o")])
    assert not isinstance(result.exception, RecursionError), result.output
    assert result.exit_code in (0, 1) and "Traceback" not in result.output


def test_too_long_line_is_unreadable(plain: Path, tmp_path: Path) -> None:
    """A line over the 1 MiB cap is ``unreadable: too long`` with its size, at its line."""
    directory = journal_with(plain, tmp_path / "j", b"x" * (MAX_LINE + 10))
    code, doc = run_replay(str(directory))
    problem = doc["integrity"]["breaks"][0]  # then the next entry's seq goes back: out_of_order
    assert code == 1 and (problem["kind"], problem["line"]) == ("unreadable", 31)
    assert problem["detail"].startswith(f"too long: {MAX_LINE + 10} bytes")


def test_failed_export_leaves_no_file(
    plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export that fails half-way leaves neither the output file nor a temporary one."""
    calls = iter(range(1_000_000))

    def failing_row(entry: dict[str, object]) -> dict[str, object]:
        if next(calls) == 20:
            raise OSError(28, "No space left on device")
        return real_row(entry)

    real_row = exporter.row
    monkeypatch.setattr(exporter, "row", failing_row)
    out = tmp_path / "out"
    for fmt in ("parquet", "csv"):
        with pytest.raises(OSError):
            exporter.export([plain.parent], out, fmt)
        assert list(out.iterdir()) == []
        calls = iter(range(1_000_000))


PROBE = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    from validator.cli.main import main

    def peak():
        # VmHWM: this process's peak RSS in KiB (ru_maxrss would carry pytest's over exec).
        with open("/proc/self/status") as status:
            return next(int(x.split()[1]) for x in status if x.startswith("VmHWM:"))

    config, small, big, out = sys.argv[1:]
    growth = {}
    for command in ("replay", "export"):
        args = {"replay": ["--config", config, "--json"], "export": ["--out"]}[command]
        for n, journal in enumerate((small, small, big)):
            extra = [out + command + str(n)] if command == "export" else []
            result = CliRunner().invoke(main, [command, journal, *args, *extra])
            assert result.exit_code in (0, 1), result.output[-2000:]
            if n == 1:
                before = peak()
        growth[command] = peak() - before
    print(json.dumps(growth))
    """
)


def test_long_line_memory_is_bounded(plain: Path, tmp_path: Path) -> None:
    """A 64 MB line costs replay and export a few MiB, not several times its size."""
    big = journal_with(plain, tmp_path / "big", b"x" * 1024 * 1024, BIG // (1024 * 1024))
    done = subprocess.run(  # noqa: S603 - this interpreter, our probe
        [sys.executable, "-c", PROBE, str(CONFIG), str(plain.parent), str(big), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    growth = json.loads(done.stdout)
    assert growth["replay"] < 16 * 1024, growth  # KiB: under 16 MiB for a 64 MiB line
    assert growth["export"] < 16 * 1024, growth


@pytest.mark.parametrize("kind", ["dev_zero", "fifo"])
@pytest.mark.parametrize("command", ["replay", "export"])
def test_non_regular_file_is_refused(tmp_path: Path, kind: str, command: str) -> None:
    """A symlink to /dev/zero or a FIFO named like a journal file: exit 2 at once, no hang."""
    directory = tmp_path / "j"
    directory.mkdir()
    target = directory / "journal-20260302-0001.jsonl"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    exe = Path(sys.executable).with_name("validator")
    for given in (directory, target):
        args = ["--config", str(CONFIG)] if command == "replay" else ["--out", str(tmp_path / "o")]
        done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [str(exe), command, str(given), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_an_entry_that_does_not_read_breaks_integrity(plain: Path, tmp_path: Path) -> None:
    """A chained entry whose fields do not read (station as text) is a 'malformed' break.

    The last line, so that no later ``prev`` shows the edit: before, replay left the tap out of
    its totals and said the journal was ok.
    """
    lines = plain.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["station"] = "platform 2"
    directory = tmp_path / "j"
    directory.mkdir()
    (directory / plain.name).write_bytes(b"".join(lines[:-1]) + json.dumps(last).encode() + b"\n")
    code, doc = run_replay(str(directory))
    assert code == 1
    assert doc["integrity"]["ok"] is False
    assert doc["integrity"]["counts"] == {"malformed": 1}
    (broken,) = doc["integrity"]["breaks"]
    assert (broken["kind"], broken["seq"], broken["line"]) == ("malformed", last["seq"], len(lines))
    assert "station" in broken["detail"]
