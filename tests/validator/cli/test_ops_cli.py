# SPDX-License-Identifier: Apache-2.0
"""Issue 15.14/15.20/15.21: hostile command lines end in usage errors, closed pipes quietly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from validator.cli.main import main


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in process; returns exit code, stdout, stderr."""
    result = CliRunner().invoke(main, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)  # a traceback, not an exit
    return result.exit_code, result.stdout, result.stderr


def cli(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """The CLI in a child process (real signals, real pipes)."""
    return subprocess.Popen(  # noqa: S603 - our CLI, fixed arguments
        [sys.executable, "-m", "validator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


class TestUsageErrors:
    """Issue 15.14 and 15.20: each is exit 2 with a message, never a traceback."""

    @pytest.mark.parametrize("aid", ["A0000004", "A0" * 17])
    def test_inspect_aid_length(self, aid: str) -> None:
        """--aid shorter than 5 or longer than 16 bytes: a usage error naming --aid."""
        profile = CONFIG / "cards" / "multi_trip.yaml"
        code, _, err = run("inspect", "--card-profile", str(profile), "--aid", aid)
        assert code == 2, err
        assert "--aid" in err and "5 to 16 bytes" in err

    @pytest.mark.parametrize("start", ["1900-01-01", "9999-12-31", "2009-12-31"])
    def test_demo_start_out_of_range(self, start: str) -> None:
        """--start outside what the cards can hold: usage error naming --start."""
        code, _, err = run("demo", "--taps", "2", "--config", str(CONFIG), "--start", start)
        assert code == 2, err
        assert "--start" in err and "encode" in err

    @pytest.mark.parametrize("rate", ["nan", "-0.1", "1.5", "inf"])
    def test_tear_rate(self, rate: str) -> None:
        """--tear-rate nan (or outside 0..1) is refused."""
        code, _, err = run("demo", "--taps", "1", "--config", str(CONFIG), "--tear-rate", rate)
        assert code == 2, err
        assert "--tear-rate" in err

    @pytest.mark.parametrize("record", ["", " "])
    def test_decode_empty(self, record: str) -> None:
        """decode "" is a usage error, not an empty decode or a traceback."""
        code, _, err = run("decode", "--structure", "event", record)
        assert code == 2, err
        assert "empty" in err

    def test_replay_out_checked_before_replaying(self, tmp_path: Path) -> None:
        """replay --out into a folder that cannot hold it fails first, having replayed nothing."""
        journal = tmp_path / "journal"
        journal.mkdir()
        code, out, err = run("replay", str(journal), "--out", "/proc/x", "--json")
        assert code == 2, err
        assert "--out" in err and out == ""


def test_run_json_into_closed_pipe(tmp_path: Path) -> None:
    """Issue 15.21: ``run --json | head -1``: exit 0, no traceback, nothing on stderr but logs."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    child = cli("run", "--config", str(config), "--json", "--max-taps", "6", "--interval", "0")
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    child.stdout.close()  # head -1 exits
    err = child.stderr.read()
    assert child.wait(60) == 0, err
    assert '"tap"' in first
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_demo_signal_says_where_the_journal_is(signum: int) -> None:
    """Issue 15.21: demo stopped by SIGTERM/SIGINT names its temporary journal, kept for replay."""
    child = cli("demo", "--taps", "100000", "--config", str(CONFIG), "--tear-rate", "0")
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline()  # it is serving taps
    time.sleep(0.2)
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signum, err
    assert "Traceback" not in err
    line = next(x for x in err.splitlines() if "journal kept in" in x)
    folder = Path(line.rsplit(" ", 1)[1])
    try:
        assert folder.is_dir() and any(folder.glob("journal-*.jsonl"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert os.path.basename(folder).startswith("validator-demo-journal-")


def test_demo_outside_the_main_thread() -> None:
    """demo embedded in a worker thread runs (the SIGTERM handler is for the main thread only)."""
    import threading

    results: list[tuple[int, str, str]] = []
    args = ("demo", "--taps", "2", "--config", str(CONFIG), "--start", "2026-03-02 07:00:00")
    worker = threading.Thread(target=lambda: results.append(run(*args)))
    worker.start()
    worker.join(60)
    assert results and results[0][0] == 0, results


def test_demo_stop_is_not_an_error() -> None:
    """The demo's SIGTERM stop passes through ``except Exception`` handlers (SamWorker.drain)."""
    from validator.cli.main import _Stopped
    from validator.engine.sam_worker import SamWorker

    worker = SamWorker()

    def stop_while_draining() -> None:
        raise _Stopped

    worker.sync = stop_while_draining  # type: ignore[method-assign]
    with pytest.raises(_Stopped):
        worker.drain()
