# SPDX-License-Identifier: Apache-2.0
"""Every tear point of a granted tap, then the card again at three places.

For each APDU of a granted multi-trip tap and each way of losing the card (before, during,
after the APDU), the tap is torn at validator A (station 101); the passenger then taps again
15 s later at A, at validator B of the same station group (102), or at C, another station (201),
and finally back at A after the recovery window. Invariants, over all tear points:

- a gate opens only on a verified card MAC;
- same station group: the card pays exactly one unit for the one entry (never twice, never
  free), a recovery only inside the window;
- another station: every unit taken is a granted tap or an ``unknown`` journaled at A;
- every ``unknown`` is resolved in A's journal when the card comes back to A.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CONFIG, DEMO_AID, make_card

from calypso.emulator.dispatch import CardEmulator
from calypso.layouts.demo import SFI_COUNTERS
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, journal_files
from yamlconfig import load_model

START = dt.datetime(2026, 3, 2, 8, 0)
# Card APDUs of a granted tap: select, open, events, contracts, counters, decrease, append, close,
# ratification; for the SV purse: select, open, events, SV Get, SV Debit, append, close, ratify.
TAP_APDUS = {"multi_trip": 9, "sv_purse": 8}
SV_FARE = 150
KINDS = (FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING, FaultKind.REMOVED_AFTER)
PLACES = {"A": 101, "B": 102, "C": 201}


@dataclass
class Validator:
    """One validator: its SAM, its journal, its reader."""

    name: str
    processor: TapProcessor
    journal: Journal
    location: int
    reader: EmulatedReader

    def tap(self, card: CardEmulator, now: dt.datetime, fault: Fault | None = None) -> TapRecord:
        """One tap of ``card`` here at ``now``."""
        self.reader.insert(card)
        if fault is not None:
            self.reader.inject(fault)
        try:
            return self.processor.process(self.reader.connect(), TapContext(now, self.location))
        finally:
            self.reader.clear_faults()
            self.reader.remove()


def make_validator(name: str, tmp_path: Path, rules: FareRules) -> Validator:
    """A validator with its own software SAM and journal."""
    sam_reader = EmulatedReader(f"sam {name}")
    sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    channel = ApduChannel(sam_reader.connect(), label="sam")
    journal = Journal(tmp_path / name)
    journal.open()
    processor = TapProcessor(LegacySam(channel), rules, [DEMO_AID], name, journal)
    return Validator(name, processor, journal, PLACES[name], EmulatedReader(name))


@dataclass
class Tally:
    """What the sweep tried and what broke."""

    tried: int = 0
    violations: list[str] | None = None


def units(card: CardEmulator, profile: str) -> int:
    """Entries' worth of value left on the card: carnet trips, or purse balance in fares."""
    if profile == "sv_purse":
        return card.sv_balance // SV_FARE
    return card.counter(SFI_COUNTERS, 1)


def run_scenario(
    tmp_path: Path, profile: str, index: int, kind: FaultKind, place: str
) -> list[str]:
    """Tear at A, tap again at ``place``, come back to A later; return the violations."""
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    validators = {
        n: make_validator(n, tmp_path / f"{profile}-{index}-{kind.value}-{place}", rules)
        for n in PLACES
    }
    card = make_card(profile, seed=index)
    start_units = units(card, profile)
    problems: list[str] = []
    first = validators["A"].tap(card, START, Fault(kind, index))
    second = validators[place].tap(card, START + dt.timedelta(seconds=15))
    third = validators["A"].tap(card, START + dt.timedelta(hours=3))  # past every window
    taps = [first, second, third]
    for record in taps:
        result = record.result
        if result.outcome.opens_gate and not result.mac_verified:
            problems.append(f"gate opened without a verified MAC: {result.reason}")
    paid = start_units - units(card, profile)
    granted_with_debit = sum(
        1 for r in taps if r.result.outcome is Outcome.GRANTED and r.result.debit
    )
    unknown_committed = bool(second.resolved and second.resolved["committed"]) or bool(
        third.resolved and third.resolved["committed"]
    )
    first_entry_paid = paid - (1 if taps[2].result.outcome is Outcome.GRANTED else 0)
    if PLACES[place] in rules.station_groups["central"]:
        if first_entry_paid != 1:
            problems.append(f"same group: the first entry paid {first_entry_paid} units")
        if not (first.result.outcome.opens_gate or second.result.outcome.opens_gate):
            problems.append("same group: the passenger never got in")
    else:
        expected = granted_with_debit + (1 if unknown_committed else 0)
        if paid != expected:
            problems.append(f"other station: paid {paid}, granted+unknown {expected}")
    for record in taps:
        if record.result.outcome is Outcome.RECOVERED and record is third:
            problems.append("recovered outside the window")
    if first.result.outcome is Outcome.UNKNOWN:
        resolving = [r for r in taps[1:] if r.resolved and r.resolved["seq"] == first.seq]
        if not resolving:
            problems.append("unknown never resolved in A's journal")
    for validator in validators.values():
        validator.journal.close()
        if not verify_journal(validator.journal.directory).ok:
            problems.append(f"journal {validator.name} does not verify")
    if first.result.outcome is Outcome.UNKNOWN:
        a_entries = [
            json.loads(line)
            for p in journal_files(validators["A"].journal.directory)
            for line in p.read_text().splitlines()
        ]
        if not any(e.get("resolves", {}).get("seq") == first.seq for e in a_entries):
            problems.append("no resolution entry in A's journal")
    return [f"{profile}: tear {kind.value}@{index} then {place}: {p}" for p in problems]


@pytest.mark.parametrize("profile", list(TAP_APDUS))
@pytest.mark.parametrize("place", list(PLACES))
def test_tear_sweep(tmp_path: Path, profile: str, place: str) -> None:
    """Every tear point of a granted tap, then the card at ``place``: no violation."""
    tried = 0
    violations: list[str] = []
    for index in range(1, TAP_APDUS[profile] + 1):
        for kind in KINDS:
            tried += 1
            violations += run_scenario(tmp_path, profile, index, kind, place)
    print(f"{profile}: tear points tried: {tried}, then {place}; violations: {len(violations)}")
    assert tried == TAP_APDUS[profile] * len(KINDS)
    assert violations == []
