# SPDX-License-Identifier: Apache-2.0
"""Infrastructure faults: the real gate loop through pcscd + vpcd while its world breaks.

The gate loop (``validator.app.loop.run_loop`` with a PcscReader for the card, the software SAM in a
second vpcd reader behind pcscd, the SAM reopened as ``validator run`` does) runs in a thread of
this process. Faults, each several times: pcscd killed (SIGKILL) and restarted; the SAM removed
and reinserted; the card reader's vpcd client cut in the middle of a tap (vpcd's port closed)
and plugged back; the journal's disk full. Invariants, per fault:

- out of service shown: the loop's observer hears of the outage (pcscd, SAM, disk);
- gate shut: no tap during the fault opens the gate;
- recovery without restart: the next card after the fault is granted by the same loop;
- nothing lost: every tap given feedback is in the journal, which verifies at the end;
- a full disk refuses taps: the tap whose entry did not fit gets no feedback and no entry.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from lab.paths import CONFIG
from lab.pcscd import (
    CARD_READER,
    SAM_READER,
    PrivatePcscd,
    missing_binaries,
    wait_reader_state,
)
from lab.reliability.faults.infra_disk import Disk, DiskJournal
from lab.reliability.report import Level, Log, PartResult
from readers.base import ReaderError
from readers.channel import ApduChannel
from readers.vpcd import VpcdCard
from sam.base import SamError
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.loop import run_loop
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.verify import verify_journal
from yamlconfig import load_model

NAME = "infrastructure"
DEMO_AID = bytes.fromhex("315449432E49434131")
TAP_TIMEOUT_S = 8.0
FAULTS = ("pcscd", "sam", "reader", "disk")


class Watcher:
    """The gate and the loop observer in one: what the passenger and the operator see."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.records: list[TapRecord] = []
        self.outages: list[str] = []
        self.in_service_now = True

    # Gate
    def feedback(self, record: TapRecord) -> None:
        """A tap's feedback (the gate opens for a verified grant)."""
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def out_of_service(self, reason: str) -> None:
        """The gate shows out of service."""
        with self.cond:
            self.outages.append(reason)
            self.in_service_now = False
            self.cond.notify_all()

    def in_service(self) -> None:
        """A card is being served."""

    # LoopObserver
    def on_idle(self) -> None:
        """The loop polls."""

    def on_tap(self, record: TapRecord) -> None:
        """Feedback was given (already seen as a gate)."""

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """An outage or the return to service."""
        with self.cond:
            self.in_service_now = in_service
            self.cond.notify_all()

    def wait(self, predicate: object, timeout: float) -> bool:
        """Wait until ``predicate()`` holds."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)  # type: ignore[arg-type]


@dataclass
class Bench:
    """pcscd, the two vpcd slots, the journal's disk and the loop thread."""

    workdir: Path
    pcscd: PrivatePcscd
    rnd: random.Random
    disk: Disk = field(default_factory=Disk)
    watcher: Watcher = field(default_factory=Watcher)
    stop: threading.Event = field(default_factory=threading.Event)
    now: dt.datetime = dt.datetime(2026, 3, 2, 7, 0)
    violations: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.card_slot = VpcdCard(self.pcscd.ports[CARD_READER])
        self.sam_slot = VpcdCard(self.pcscd.ports[SAM_READER])

    def clock(self) -> dt.datetime:
        """Tap time: a few minutes after the last tap (no anti-passback between fresh cards)."""
        self.now += dt.timedelta(minutes=3)
        return self.now

    def count(self, name: str) -> None:
        """Add one to a figure."""
        self.figures[name] = self.figures.get(name, 0) + 1

    def insert_sam(self) -> None:
        """The software SAM in its vpcd reader."""
        sam = SoftwareSam.from_keys(
            CONFIG / "keys.sim.yaml", random.Random(self.rnd.getrandbits(32)).randbytes,  # noqa: S311
            allow_simulation=True,
        )  # fmt: skip
        self.sam_slot.insert(sam)

    def start_loop(self) -> None:
        """Open the SAM and the journal and run the gate loop in a thread."""
        from readers.pcsc import PcscReader

        self.insert_sam()
        sam_reader = PcscReader(re.escape(SAM_READER), timeout=2.0, retry_interval=0.1)
        card_reader = PcscReader(re.escape(CARD_READER), timeout=2.0, retry_interval=0.1)
        current: list[ApduChannel] = []

        def reopen() -> LegacySam:
            for channel in current:
                try:
                    channel.connection.close()
                except ReaderError:
                    pass
            current.clear()
            connection = sam_reader.wait_for_card(timeout=1.0)
            if connection is None:
                raise SamError("no SAM in the SAM reader")
            channel = ApduChannel(connection, label="sam")
            current.append(channel)
            return LegacySam(channel)

        sam = reopen()
        rules = load_model(CONFIG / "fares.yaml", FareRules)
        journal = DiskJournal(self.workdir / "journal", self.disk)
        journal.open()
        processor = TapProcessor(sam, rules, [DEMO_AID], "infra", journal)

        def serve() -> None:
            try:
                run_loop(
                    card_reader, processor, self.watcher, station=101, stop=self.stop,
                    clock=self.clock, poll_s=0.1, backoff_s=0.2, observer=self.watcher,
                    reopen_sam=reopen,
                )  # fmt: skip
            except Exception as exc:  # the loop must survive every fault: a crash is a finding
                self.violations.append(f"gate loop crashed: {exc!r}")
            finally:
                journal.close()
                card_reader.close()
                sam_reader.close()

        self.thread = threading.Thread(target=serve, name="gate-loop", daemon=True)
        self.thread.start()

    def tap(
        self, *, until: Callable[[], bool] | None = None, timeout: float = TAP_TIMEOUT_S
    ) -> TapRecord | None:
        """Present a fresh multi-trip card until the gate answers (or ``until()``, or timeout)."""
        card = CardEmulator.from_profile(
            CONFIG / "cards" / "multi_trip.yaml",
            rng=random.Random(self.rnd.getrandbits(32)).randbytes,  # noqa: S311
        )
        before = len(self.watcher.records)
        self.card_slot.insert(card)
        answered = until or (lambda: len(self.watcher.records) > before)
        self.watcher.wait(answered, timeout)
        self.card_slot.remove()
        wait_reader_state(CARD_READER, present=False, timeout=5.0)
        records = self.watcher.records[before:]
        return records[0] if records else None

    def granted_after(self, fault: str) -> None:
        """Recovery without restart: the next card is granted by the same loop."""
        record = self.tap()
        alive = self.thread is not None and self.thread.is_alive()
        if not alive or record is None or record.result.outcome is not Outcome.GRANTED:
            outcome = record.result.outcome.value if record else "no answer"
            self.violations.append(f"{fault}: the next card after the fault was {outcome}")
        else:
            self.count(f"{fault}_recovered")

    def shut_during(self, fault: str, records: list[TapRecord]) -> None:
        """Gate shut: no feedback during the fault opened the gate."""
        for record in records:
            if record.result.outcome.opens_gate:
                self.violations.append(f"{fault}: gate opened during the fault (seq {record.seq})")

    def outage_shown(self, fault: str, since: int, prefix: str) -> None:
        """Out of service shown: the loop reported an outage of the right kind."""
        if not any(o.startswith(prefix) for o in self.watcher.outages[since:]):
            self.violations.append(f"{fault}: no out-of-service '{prefix}' shown")

    # --- the faults -------------------------------------------------------------------------

    def pcscd_killed(self) -> None:
        """pcscd SIGKILLed while the loop waits for a card, then started again."""
        since, taps = len(self.watcher.outages), len(self.watcher.records)
        proc = self.pcscd.proc
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        self.card_slot.wait_removed(5.0)
        self.sam_slot.wait_removed(5.0)
        self.watcher.wait(lambda: not self.watcher.in_service_now, 5.0)
        self.outage_shown("pcscd", since, "card reader")
        self.pcscd.stop()
        self.pcscd.start()
        self.insert_sam()  # the SAM is still in its reader: vpcd connects it again
        self.shut_during("pcscd", self.watcher.records[taps:])
        self.granted_after("pcscd")

    def sam_removed(self) -> None:
        """The SAM taken out; a passenger taps meanwhile; the SAM put back."""
        since = len(self.watcher.outages)
        self.sam_slot.remove()
        wait_reader_state(SAM_READER, present=False, timeout=5.0)
        during = self.tap()  # served with a SAM error: feedback, the gate shut
        self.shut_during("sam", [during] if during else [])
        self.watcher.wait(lambda: not self.watcher.in_service_now, 3.0)
        self.outage_shown("sam", since, "SAM")
        self.insert_sam()
        self.granted_after("sam")

    def reader_unplugged(self) -> None:
        """The card reader's vpcd client cut in the middle of a tap, then plugged back."""
        card = CardEmulator.from_profile(
            CONFIG / "cards" / "multi_trip.yaml",
            rng=random.Random(self.rnd.getrandbits(32)).randbytes,  # noqa: S311
        )
        before = len(self.watcher.records)
        muted = self.rnd.randint(1, 8)
        self.card_slot.mute_on_next_apdu(30.0, after=muted - 1)
        self.card_slot.insert(card)
        deadline = time.monotonic() + TAP_TIMEOUT_S
        while self.card_slot.apdu_count < muted and time.monotonic() < deadline:
            time.sleep(0.005)  # the tap is under way; vpcd offers nothing to wait on
        self.card_slot.remove()  # vpcd's client disconnects: the port is closed under pcscd
        if not self.watcher.wait(lambda: len(self.watcher.records) > before, TAP_TIMEOUT_S):
            self.violations.append("reader: the tap cut by the unplug got no feedback")
        wait_reader_state(CARD_READER, present=False, timeout=5.0)
        self.shut_during("reader", self.watcher.records[before:])
        self.granted_after("reader")

    def disk_full(self) -> None:
        """The journal's disk full: the tap is refused, the gate waits for room, then serves."""
        since = len(self.watcher.outages)
        self.disk.free = self.rnd.randint(0, 2000)  # less than one entry (with its trace)
        journal_down = lambda: any(o.startswith("journal") for o in self.watcher.outages[since:])  # noqa: E731
        refused = self.tap(until=journal_down)
        if refused is not None:
            self.violations.append(f"disk: a tap got feedback with a full disk: {refused.entry}")
        self.outage_shown("disk", since, "journal")
        second = self.tap(timeout=0.6)  # still full: the card is not even read
        if second is not None:
            self.violations.append("disk: a tap was served while the disk stayed full")
        self.disk.free = None
        self.granted_after("disk")


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Inject every fault ``level.pick(4, 2, 1)`` times into the running gate loop."""
    reason = missing_binaries()
    if reason is not None:
        log(f"skipped: {reason}")
        return PartResult(NAME, "nothing (no pcscd/vpcd)", "skipped: no pcscd")
    pcscd = PrivatePcscd(workdir / "pcscd")
    pcscd.start()
    try:
        return run_on(pcscd, level, workdir, log)
    finally:
        pcscd.stop()


def run_on(pcscd: PrivatePcscd, level: Level, workdir: Path, log: Log) -> PartResult:
    """The part against a running private pcscd (libpcsclite talks to one daemon per process).

    pcscd is killed and started again on the way; it is left running, its readers empty.
    """
    rounds = level.pick(4, 2, 1)
    rnd = random.Random(11)  # noqa: S311 - reproducible campaign
    bench = Bench(workdir, pcscd, rnd)
    try:
        bench.start_loop()
        for number in range(rounds):
            for fault in rnd.sample(FAULTS, len(FAULTS)):
                try:
                    getattr(bench, _METHODS[fault])()
                    bench.count(f"{fault}_faults")
                except Exception as exc:  # a harness step that breaks is reported, not fatal
                    bench.violations.append(f"{fault} round {number + 1}: {exc!r}")
            log(f"round {number + 1}/{rounds}: {len(bench.violations)} violations")
    finally:
        bench.stop.set()
        if bench.thread is not None:
            bench.thread.join(10)
        bench.card_slot.remove()
        bench.sam_slot.remove()
        if not pcscd.running:
            pcscd.start()
        for reader in (CARD_READER, SAM_READER):
            wait_reader_state(reader, present=False, timeout=5.0)
    _check_journal(bench)
    figures = bench.figures
    tried = ", ".join(f"{figures.get(f'{f}_faults', 0)} {f}" for f in FAULTS) + " faults"
    recovered = sum(figures.get(f"{f}_recovered", 0) for f in FAULTS)
    broke = f"{recovered} recoveries without restart, {bench.disk.refused} writes refused"
    return PartResult(NAME, tried, broke, bench.violations, figures=dict(figures))


_METHODS = {
    "pcscd": "pcscd_killed",
    "sam": "sam_removed",
    "reader": "reader_unplugged",
    "disk": "disk_full",
}


def _check_journal(bench: Bench) -> None:
    """Nothing lost: every tap given feedback is journaled, and the journal verifies."""
    report = verify_journal(bench.workdir / "journal")
    if not report.ok:
        bench.violations.append(f"journal does not verify: {report.problems[:3]}")
    seqs = [r.seq for r in bench.watcher.records]
    if None in seqs or report.entries != len(seqs):
        bench.violations.append(
            f"{len(seqs)} taps given feedback but {report.entries} journal entries"
        )
    bench.figures["taps"] = len(seqs)
