# SPDX-License-Identifier: Apache-2.0
"""A full journal disk: a refused entry never surfaces later, and the gate loop waits for room."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

from conftest import CONFIG, make_card

from lab.reliability.faults.infra_disk import Disk, DiskJournal
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor
from validator.journal.verify import verify_journal
from yamlconfig import load_model

# The kernel's own full-disk behaviour, unprivileged: a file size limit makes the write of an
# entry partial and then fail (EFBIG), as ENOSPC does on a full filesystem.
_FILE_LIMIT_SCRIPT = """
import resource, signal, sys
from pathlib import Path
from validator.engine.recording import JournalError
from validator.journal.writer import Journal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
directory = Path(sys.argv[1])
with Journal(directory) as journal:
    journal.append({"tap": 1, "pad": "x" * 500})
    size = sum(p.stat().st_size for p in directory.glob("journal-*"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 200, hard))
    for call in (lambda: journal.append({"tap": 2, "pad": "y" * 500}), journal.check_writable):
        try:
            call()
            print("accepted")
        except JournalError:
            print("refused")
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    journal.check_writable()
    journal.append({"tap": 3, "pad": "z" * 500})
"""


def test_a_refused_entry_never_reaches_the_journal(tmp_path: Path) -> None:
    """A write cut short by the kernel is undone: the chain continues, the refused tap is absent."""
    done = subprocess.run(  # noqa: S603 - our own script, fixed argv
        [sys.executable, "-c", _FILE_LIMIT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    verdicts = [w for w in done.stdout.split() if w in ("accepted", "refused")]  # not log lines
    assert verdicts == ["refused", "refused"]
    report = verify_journal(tmp_path)
    assert report.ok, report.problems
    lines = "".join(p.read_text() for p in tmp_path.glob("journal-*")).splitlines()
    assert [('"tap":1' in line, '"tap":3' in line) for line in lines] == [
        (True, False),
        (False, True),
    ]
    assert not list(tmp_path.glob("quarantine-*"))


def _processor(journal: DiskJournal) -> TapProcessor:
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    sam = SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
    reader = EmulatedReader("sam")
    reader.insert(sam)
    channel = ApduChannel(reader.connect(), label="sam")
    aid = bytes.fromhex("315449432E49434131")
    return TapProcessor(LegacySam(channel), rules, [aid], "disk-test", journal)


class _Started(threading.Event):
    """Set at the loop's first poll."""

    def on_idle(self) -> None:
        """The loop polls."""
        self.set()

    def on_tap(self, record: object) -> None:
        """Not needed."""

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """Not needed."""


def test_loop_stays_shut_while_the_disk_is_full_then_serves(tmp_path: Path) -> None:
    """Full disk: no feedback for the failed tap, out of service, then the next card is granted."""
    disk = Disk()
    gate = NullGate()
    reader = EmulatedReader("card")
    stop = threading.Event()
    clock = [dt.datetime(2026, 3, 2, 8, 0)]
    started = _Started()
    with DiskJournal(tmp_path, disk) as journal:
        processor = _processor(journal)

        def passengers() -> None:
            started.wait(5)  # the loop polls: its start-up check has passed
            disk.free = 100  # the first passenger's entry does not fit
            reader.insert(make_card("multi_trip", seed=1))
            while not any(o.startswith("journal") for o in gate.outages):
                stop.wait(0.01)
            reader.remove()
            stop.wait(0.2)  # still full: the loop probes and stays out of service
            disk.free = None
            clock[0] += dt.timedelta(minutes=5)
            reader.insert(make_card("season_pass", seed=2))

        feeder = threading.Thread(target=passengers, daemon=True)
        feeder.start()
        served = run_loop(
            reader,
            processor,
            gate,
            station=101,
            max_taps=1,
            stop=stop,
            clock=lambda: clock[0],
            poll_s=0.05,
            backoff_s=0.05,
            observer=started,
        )
        feeder.join(5)
    assert served == 1
    assert [r.result.outcome for r in gate.records] == [Outcome.GRANTED]
    assert gate.records[0].result.serial == make_card("season_pass").serial
    assert any(o.startswith("journal: the journal has no room") for o in gate.outages)
    assert disk.refused >= 1
    report = verify_journal(tmp_path)
    assert report.ok and report.entries == 1
