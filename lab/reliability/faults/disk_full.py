# SPDX-License-Identifier: Apache-2.0
"""A full journal disk at every point of a tap: never a charged card without its journal entry.

The real tap (``TapProcessor.process``: the procedure, the pre-Close journal check, the journal
entry) runs on emulated cards and the software SAM, its journal on a simulated disk
(``lab.reliability.faults.infra_disk``). Before APDU number k of the tap (card and SAM counted
together),
for every k, the disk fills: to nothing, to a few bytes (a partial write, then ENOSPC), or to
just below the free space the journal requires (an entry still fits). Invariants, per tap:

- never a charged card without its journal entry: when the card's data changed, the journal
  holds this tap's entry (granted, recovered or unknown) with the card's serial;
- never a grant the card does not back: an entry granted with a debit means the card changed;
- a tap not served says so: a refused tap raises TapNotServedError (the gate goes out of
  service), and one that says "not journaled" left the card as it was;
- the journal verifies (chain whole, no torn tail) after every tap.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from lab.paths import CONFIG
from lab.reliability.faults.crashes import _data as card_data
from lab.reliability.faults.infra_disk import Disk, DiskJournal
from lab.reliability.report import Level, Log, PartResult
from readers.base import ApduHandler, PassThroughHandler
from readers.emulated import EmulatedReader
from sam.software.dispatch import SoftwareSam
from sam.software.link import in_process_sam
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.recording import TapNotServedError
from validator.journal.entry import JournalEntry
from validator.journal.intent import read_record
from validator.journal.verify import verify_journal
from validator.journal.writer import journal_files
from yamlconfig import load_model

NAME = "disk-full"
WHEN = dt.datetime(2026, 3, 2, 8, 30)
STATION = 101
PAID = ("granted", "recovered", "unknown")
FILLS: dict[str, Callable[[DiskJournal], int]] = {
    "nothing-free": lambda journal: 0,
    "a-few-bytes": lambda journal: 300,
    "below-the-minimum": lambda journal: journal.min_free - 1,
}


class _Trip:
    """Counts a tap's APDUs (card and SAM) and fills the disk before number ``at``."""

    def __init__(self) -> None:
        self.count = 0
        self.at: int | None = None
        self.fill: Callable[[], None] = lambda: None

    def before(self) -> None:
        if self.count == self.at:
            self.fill()
        self.count += 1


class _Counted(PassThroughHandler[ApduHandler]):
    """An APDU handler (card or SAM) whose commands pass through the trip first."""

    def __init__(self, inner: ApduHandler, trip: _Trip) -> None:
        super().__init__(inner)
        self.trip = trip

    def process(self, apdu: bytes) -> bytes:
        """Trip first, then the inner handler's answer."""
        self.trip.before()
        return super().process(apdu)


@dataclass
class TapOutcome:
    """What one tap left: whether the card changed, its entry, and whether it was refused."""

    serial: str
    charged: bool
    entry: JournalEntry | None
    refused: TapNotServedError | None
    journal_ok: bool


def check_tap(outcome: TapOutcome) -> list[str]:
    """Violations of one tap (used on fabricated outcomes by the tests too)."""
    problems: list[str] = []
    entry = outcome.entry
    recorded = entry is not None and entry.card == outcome.serial
    if outcome.charged and not (recorded and entry is not None and entry.outcome in PAID):
        problems.append(f"card {outcome.serial} charged without its journal entry")
    if entry is not None and entry.outcome == "granted" and entry.debit:
        if not outcome.charged:
            problems.append(f"entry {entry.seq} grants a debit the card does not show")
    refused = outcome.refused
    if refused is not None and not refused.journaled and outcome.charged:
        problems.append(f"refused as not journaled, yet card {outcome.serial} was charged")
    if refused is not None and refused.card != outcome.serial:
        problems.append(f"refusal names card {refused.card}, not {outcome.serial}")
    if not outcome.journal_ok:
        problems.append("the journal does not verify")
    return problems


class _Bench:
    """One processor (software SAM behind a counting handler) reused for every tap."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.trip = _Trip()
        settings = load_settings(CONFIG)
        rules = load_model(CONFIG / settings.fares, FareRules)
        software = SoftwareSam.from_keys(
            CONFIG / settings.keys,
            random.Random(5).randbytes,  # noqa: S311 - simulation
            allow_simulation=True,
        )
        sam = in_process_sam(_Counted(software, self.trip))
        self.reader = EmulatedReader("card")
        station = build_station(
            CONFIG, settings, reader=self.reader, sam=sam, journal=None, rules=rules
        )
        self.processor = station.processor

    def tap(self, profile: Path, fill: str | None, at: int | None) -> tuple[TapOutcome, int]:
        """One tap of a fresh card of ``profile``; returns its outcome and its APDU count."""
        directory = self.workdir / "journal"
        shutil.rmtree(directory, ignore_errors=True)
        disk = Disk()
        card = CardEmulator.from_profile(profile, rng=random.Random(3).randbytes)  # noqa: S311
        before = card_data(card)
        reader = self.reader
        reader.insert(_Counted(card, self.trip))
        refused: TapNotServedError | None = None
        journal = DiskJournal(directory, disk)
        with journal:
            self.processor.journal = journal
            self.processor.pending.clear()
            self.processor.last_paid.clear()
            self.processor.prefetch()
            self.trip.count, self.trip.at = 0, at
            if fill is not None:
                room = FILLS[fill](journal)
                self.trip.fill = lambda: setattr(disk, "free", room)
            try:
                self.processor.process(reader.connect(), TapContext(WHEN, STATION))
            except TapNotServedError as exc:
                refused = exc
            finally:
                reader.remove()
                self.trip.at = None
        lines = [
            line for path in journal_files(directory) for line in path.read_text().splitlines()
        ]
        # The tap's entry is the last one: a closing intent after it would be this tap's
        # without its entry (a violation if the card was charged, the reserve is for it).
        records = [read_record(json.loads(line)) for line in lines[-1:]]
        entry = next((r for r in records if isinstance(r, JournalEntry)), None)
        outcome = TapOutcome(
            card.serial.hex().upper(),
            card_data(card) != before,
            entry,
            refused,
            verify_journal(directory).ok,
        )
        return outcome, self.trip.count


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Fill the disk before every APDU of a tap, each way, for each profile of the level."""
    profiles = sorted((CONFIG / "cards").glob("*.yaml"))
    if level is Level.SMOKE:
        profiles = [CONFIG / "cards" / "multi_trip.yaml"]
    elif level is Level.QUICK:
        profiles = [CONFIG / "cards" / n for n in ("multi_trip.yaml", "sv_purse.yaml")]
    bench = _Bench(workdir)
    violations: list[str] = []
    taps = charged = refused = 0
    started = time.monotonic()
    for profile in profiles:
        _, apdus = bench.tap(profile, None, None)  # how many points this tap has
        for fill in FILLS:
            for at in range(apdus + 1):
                try:
                    outcome, _ = bench.tap(profile, fill, at)
                    problems = check_tap(outcome)
                    charged += outcome.charged
                    refused += outcome.refused is not None
                except Exception as exc:  # a crash of the tap is a finding, the part goes on
                    problems = [f"the tap raised {exc!r}"]
                violations += [f"{profile.stem}, {fill} before APDU {at}: {p}" for p in problems]
                taps += 1
        log(f"{profile.stem}: {apdus} APDUs x {len(FILLS)} fills, {len(violations)} violations")
    log(f"{taps} taps in {time.monotonic() - started:.0f} s")
    tried = f"{taps} taps, disk filled {len(FILLS)} ways before every APDU, {len(profiles)} cards"
    broke = f"{refused} taps refused (out of service), {charged} charged and journaled"
    figures: dict[str, object] = {"taps": taps, "charged": charged, "refused": refused}
    return PartResult(NAME, tried, broke, violations, figures=figures)
