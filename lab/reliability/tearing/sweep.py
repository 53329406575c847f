# SPDX-License-Identifier: Apache-2.0
"""Part 1 of the campaign: tear every card and SAM APDU of ten kinds of taps (PKI ones too).

For each scenario (lab.reliability.tearing.scenarios) the tap is first run untorn on a copy of the
card, which gives its card and SAM APDU counts and the images the card may hold afterwards (before,
then after each Close). Then, for each card APDU and each SAM APDU of the tap and each way of
losing the card (before the APDU, during it, after it), the tap is torn at validator A (station
101); the card is presented again 15 s later at A, at B (102, same station group) or at C (201,
another station), then back at A three hours later. lab.reliability.tearing.invariants checks the
card
and all three journals. FULL and QUICK run every point; SMOKE every fourth, one place each.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from lab.reliability.report import Level, Log, PartResult
from lab.reliability.tearing.invariants import History, Tap, check
from lab.reliability.tearing.scenarios import (
    KINDS,
    PLACES,
    SCENARIOS,
    START,
    Fleet,
    SamTear,
    Scenario,
    image,
    load_rules,
    make_fleet,
    value,
)
from readers.base import PassThroughHandler
from readers.emulated import Fault
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome, TapResult
from validator.engine.tap import TapRecord
from validator.journal.entry import EntryFormatError, JournalEntry
from validator.journal.intent import read_record
from validator.journal.verify import verify_journal
from validator.journal.writer import journal_files

NAME = "tear-sweep"
RETRY_AFTER = dt.timedelta(seconds=15)
BACK_LATER = dt.timedelta(hours=3)  # past the recovery, anti-passback and transfer windows


def raw_debit(result: TapResult) -> int:
    """Value units the tap's writes take: Decrease deltas, plus the SV Debit amount."""
    total = 0
    for write in result.writes:
        if write[1] == CardIns.DECREASE and len(write) >= 8:
            total += int.from_bytes(write[5:8], "big")
    debit = result.decision.debit if result.decision is not None else None
    if debit is not None and debit.purse and any(w[1] == CardIns.SV_DEBIT for w in result.writes):
        total += debit.units
    return total


def as_tap(record: TapRecord, validator: str, at: dt.datetime) -> Tap:
    """The sweep's view of one processed tap."""
    result = record.result
    return Tap(
        validator,
        PLACES[validator],
        at,
        result.outcome.value,
        result.mac_verified,
        raw_debit(result),
        result.event_sent is not None,
        record.seq,
    )


class _CloseSpy(PassThroughHandler[CardEmulator]):
    """The untorn run's card: records the card image after each Close it answers with 9000."""

    def __init__(self, card: CardEmulator) -> None:
        super().__init__(card)
        self.images = [image(card)]

    def process(self, apdu: bytes) -> bytes:
        """Answer the command; keep the image after a successful Close."""
        raw = super().process(apdu)
        if len(apdu) > 1 and apdu[1] == CardIns.CLOSE_SECURE_SESSION and raw[-2:] == b"\x90\x00":
            self.images.append(image(self.inner))
        return raw


@dataclass
class Untorn:
    """The swept tap run without a tear."""

    card_apdus: int
    sam_apdus: int
    outcome: Outcome
    debit: int
    images: list[frozenset[Any]]
    sessions: int


def untorn(scenario: Scenario, rules: FareRules) -> Untorn:
    """Run the scenario's setup and its tap untorn on a copy of the card."""
    fleet = make_fleet(scenario, rules, None)
    card = scenario.card()
    for step in scenario.setup:
        fleet[step.validator].tap(card, START + dt.timedelta(seconds=step.seconds), step.fault)
    spy = _CloseSpy(card)
    record = fleet["A"].tap(spy, START)
    result = record.result
    opens = sum(1 for ex in result.card_trace if ex.command[1] == CardIns.OPEN_SECURE_SESSION)
    return Untorn(
        result.card_apdus, result.sam_apdus, result.outcome, raw_debit(result), spy.images, opens
    )


def _journal(directory: Path) -> tuple[list[JournalEntry], list[str]]:
    """A validator's tap entries, read as JournalEntry, and the journal's problems (a closing
    intent is no tap: it is read, and left out)."""
    entries: list[JournalEntry] = []
    malformed: list[str] = []
    for path in journal_files(directory):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = read_record(json.loads(line))
            except EntryFormatError as exc:
                malformed.append(f"malformed entry at line {number}: {exc}")
                continue
            if isinstance(record, JournalEntry):
                entries.append(record)
    report = verify_journal(directory)
    return entries, [f"{p.kind} at line {p.line}: {p.detail}" for p in report.problems] + malformed


def run_point(
    scenario: Scenario,
    reference: Untorn,
    fault: Fault | SamTear,
    place: str,
    rules: FareRules,
    directory: Path,
) -> History:
    """Tear the scenario's tap at A with ``fault``, present the card at ``place``, then at A."""
    fleet: Fleet = make_fleet(scenario, rules, directory)
    try:
        card = scenario.card()
        start_value = value(card)
        taps: list[Tap] = []
        for step in scenario.setup:
            at = START + dt.timedelta(seconds=step.seconds)
            taps.append(as_tap(fleet[step.validator].tap(card, at, step.fault), step.validator, at))
        before = image(card)
        taps.append(as_tap(fleet["A"].tap(card, START, fault), "A", START))
        if isinstance(fault, SamTear) and not fleet["A"].sam.hit:
            raise RuntimeError(f"the tap never sent SAM APDU {fault.index}: the sweep is off")
        after = image(card)
        retry_at = START + RETRY_AFTER
        taps.append(as_tap(fleet[place].tap(card, retry_at), place, retry_at))
        taps.append(as_tap(fleet["A"].tap(card, START + BACK_LATER), "A", START + BACK_LATER))
    finally:
        fleet.close()
    journals, problems = {}, {}
    for name in PLACES:
        journals[name], found = _journal(directory / name)
        if found:
            problems[name] = found
    where = (
        f"SAM APDU {fault.index}" if isinstance(fault, SamTear) else f"card APDU {fault.apdu_index}"
    )
    return History(
        label=f"{scenario.name}: {fault.kind.value} at {where}, then {place}",
        taps=taps,
        torn=len(scenario.setup),
        paid=start_value - value(card),
        before=before,
        after=after,
        allowed=reference.images,
        untorn_debit=reference.debit,
        untorn_opens=reference.outcome.opens_gate,
        journals=journals,
        journal_problems=problems,
    )


def tear_points(reference: Untorn) -> list[Fault | SamTear]:
    """Every card APDU and every SAM APDU of the tap, each torn three ways."""
    points: list[Fault | SamTear] = []
    for index in range(1, reference.card_apdus + 1):
        points += [Fault(kind, index) for kind in KINDS]
    for index in range(1, reference.sam_apdus + 1):
        points += [SamTear(kind, index) for kind in KINDS]
    return points


@dataclass
class Tally:
    """Counts for one scenario."""

    card_apdus: int = 0
    sam_apdus: int = 0
    sessions: int = 0
    points: int = 0
    runs: int = 0
    unknown: int = 0
    recovered: int = 0
    violations: int = 0
    torn_outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready figures."""
        return {
            "card_apdus": self.card_apdus,
            "sam_apdus": self.sam_apdus,
            "sessions": self.sessions,
            "tear_points": self.points,
            "torn_taps": self.runs,
            "unknown": self.unknown,
            "recovered": self.recovered,
            "violations": self.violations,
            "torn_outcomes": dict(sorted(self.torn_outcomes.items())),
        }


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Tear every point of every scenario (a subset at SMOKE) and check the invariants."""
    rules = load_rules()
    violations: list[str] = []
    tallies: dict[str, Tally] = {}
    places = list(PLACES)
    step = level.pick(1, 1, 4)
    for scenario in SCENARIOS:
        tally = tallies[scenario.name] = Tally()
        try:
            reference = untorn(scenario, rules)
        except Exception as exc:  # noqa: BLE001 - a crash is a finding, not the end of the part
            violations.append(f"{scenario.name}: untorn tap crashed: {exc!r}")
            continue
        tally.card_apdus, tally.sam_apdus = reference.card_apdus, reference.sam_apdus
        tally.sessions = reference.sessions
        swept = tear_points(reference)
        tally.points = len(swept)
        for number, fault in enumerate(swept):
            if number % step:
                continue
            chosen = places if step == 1 else [places[(number // step) % len(places)]]
            for place in chosen:
                directory = workdir / f"{scenario.name}-{number}-{place}"
                try:
                    history = run_point(scenario, reference, fault, place, rules, directory)
                    found = check(history, rules)
                except Exception as exc:  # noqa: BLE001 - recorded as a violation
                    found = [f"{scenario.name}: point {number} then {place} crashed: {exc!r}"]
                    history = None
                tally.runs += 1
                if history is not None:
                    torn = history.taps[history.torn]
                    tally.torn_outcomes[torn.outcome] += 1
                    tally.unknown += torn.outcome == "unknown"
                    tally.recovered += sum(t.outcome == "recovered" for t in history.taps)
                tally.violations += len(found)
                violations += found
                if not found:
                    shutil.rmtree(directory, ignore_errors=True)
        log(
            f"{scenario.name}: {tally.card_apdus} card + {tally.sam_apdus} SAM APDUs, "
            f"{tally.runs} torn taps, {tally.unknown} unknown, {tally.recovered} recovered, "
            f"{tally.violations} violations"
        )
    total = sum(t.points for t in tallies.values())
    runs = sum(t.runs for t in tallies.values())
    unknown = sum(t.unknown for t in tallies.values())
    recovered = sum(t.recovered for t in tallies.values())
    tried = f"{len(SCENARIOS)} scenarios, {total} tear points x 3 places"
    if step != 1:
        tried = f"{len(SCENARIOS)} scenarios, {runs} of {total * 3} tear points x places"
    return PartResult(
        part=NAME,
        tried=tried,
        broke=f"{runs} taps torn, {unknown} unknown, {recovered} recovered",
        violations=violations,
        figures={name: t.as_dict() for name, t in tallies.items()},
    )
