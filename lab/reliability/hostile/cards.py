# SPDX-License-Identifier: Apache-2.0
"""Hostile cards: adversarial emulated cards through the real TapProcessor.

Each hostile card (lab.reliability.hostile.cases) is tapped on a validator built like the embedded
default: the software SAM behind SAM APDUs, the shipped fares, settings, layouts and PKI trust
(with a revocation list naming one test CA), a real Journal. Three families: scripted cases
(extreme records, FCI lies, replayed Close, clones with wrong keys, serial swaps, PKI cards
with a wrong signature, certificate or chain, slow cards), a sweep (every APDU of every
profile's normal tap damaged in every way) and seeded random taps (one answer damaged at a
random APDU, sometimes followed by an honest tap of the same card). Invariants, per tap:

- ``processor.process`` never raises: every behaviour of a card maps to an outcome;
- the gate opens only with a verified card MAC, and only if the real card (the emulator behind
  the lies) holds it: a granted debit is taken from the card named in the result, the event the
  tap appended is in its log; a recovery takes nothing;
- no card gains value, and none loses more than the debit the validator sent;
- a forged, cloned, replayed or swapped card never opens the gate;
- a tap ends within the time budget plus a margin (wall time);

and for the whole run: one journal entry per tap, and the journal verifies.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import FileType
from lab.paths import CONFIG
from lab.pki.cards import REVOKED_CA_REFERENCE
from lab.reliability.hostile.card import HostileCard
from lab.reliability.hostile.cases import PROFILES, Case, Fleet, random_case, scripted, sweep_cases
from lab.reliability.report import Level, Log, PartResult
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.settings import ValidatorSettings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome, TapResult
from validator.engine.tap import TapRecord
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal
from yamlconfig import load_model

NAME = "hostile-cards"
START = dt.datetime(2026, 3, 2, 7, 0)
MARGIN_S = 0.25  # a tap may overrun the budget by this much (the journal's fsync, a busy host)
SFI_EVENTS = 0x08
FOLLOW_UP = 0.3  # chance that a random hostile tap is followed by an honest tap of the card

Ledger = dict[str, int]


def ledger(card: CardEmulator) -> Ledger:
    """What the card really holds, committed: each counter, and the SV balance."""
    out: Ledger = {}
    for ef in card.files.all():
        if ef.type is FileType.COUNTERS:
            record = card.read_record(ef.sfi, 1)
            for n in range(len(record) // 3):
                out[f"{ef.sfi:02X}/{n + 1}"] = int.from_bytes(record[3 * n : 3 * n + 3], "big")
    if card.sv_balance is not None:
        out["SV"] = card.sv_balance
    return out


def events(card: CardEmulator) -> set[bytes]:
    """The event log records the card holds."""
    ef = next((f for f in card.files.all() if f.sfi == SFI_EVENTS), None)
    count = ef.profile.records if ef is not None else 0
    return {card.read_record(SFI_EVENTS, n) for n in range(1, count + 1)}


@dataclass
class Tally:
    """What the part tried and found."""

    taps: int = 0
    raised: int = 0  # taps whose process() raised (a violation each; nothing to journal)
    cases: int = 0
    violations: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    granted_hostile: int = 0  # granted although a layer lied (the lie was harmless)
    paid_but_shut: int = 0  # the card committed a debit, the gate stayed shut
    slowest_s: float = 0.0


class Bench:
    """One validator (software SAM, shipped rules and layouts, a journal) and its clock."""

    def __init__(self, workdir: Path, seed: int) -> None:
        settings = load_model(CONFIG / "validator.yaml", ValidatorSettings)
        revoked = workdir / "revoked.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        revoked.write_text(f"ca_references: [{REVOKED_CA_REFERENCE.hex()}]\n")
        pki = settings.pki.model_copy(update={"revocations": str(revoked)})
        settings = settings.model_copy(update={"pki": pki})
        rules = load_model(CONFIG / settings.fares, FareRules)
        sam_rng = random.Random(seed)  # noqa: S311 - simulation randomness, by design
        sam = software_sam(CONFIG / settings.keys, rng=sam_rng.randbytes, allow_simulation=True)
        self.journal_dir = workdir / "journal"
        self.journal = Journal(self.journal_dir)
        self.journal.open()
        self.reader = EmulatedReader("hostile", cut_slow_cards=True)
        station = build_station(
            CONFIG, settings, reader=self.reader, sam=sam, journal=self.journal, rules=rules
        )
        self.processor = station.processor
        self.budget_s = self.processor.budget_s
        self.location = station.location
        self.now = START
        self.tally = Tally()

    def close(self) -> None:
        """Close the journal."""
        self.journal.close()

    def run(self, case: Case) -> TapRecord | None:
        """Tap the case's prelude cards honestly, then the hostile card; check every tap."""
        self.tally.cases += 1
        for honest in case.prelude:
            self.tap(case, honest, hostile=False)
        return self.tap(case, case.card, hostile=True)

    def follow_up(self, case: Case, first: TapRecord | None) -> None:
        """The same card again, honest, 2 minutes later: an unknown left by the hostile tap
        must be resolved by this tap's journal entry."""
        record = self.tap(case, HostileCard(case.real[0]), hostile=False, gap_min=2)
        if first is None or record is None or first.result.outcome is not Outcome.UNKNOWN:
            return
        if record.result.serial == first.result.serial and (
            record.resolved is None or record.resolved.get("seq") != first.seq
        ):
            self.tally.violations.append(f"{case.name}: unknown tap {first.seq} not resolved")

    def tap(
        self, case: Case, card: HostileCard, *, hostile: bool, gap_min: int = 10
    ) -> TapRecord | None:
        """One tap of ``card`` ``gap_min`` minutes after the previous one, checked."""
        self.now += dt.timedelta(minutes=gap_min)
        before = {id(c): (ledger(c), c.transaction_counter) for c in case.real}
        self.reader.insert(card)
        start = time.perf_counter()
        try:
            record = self.processor.process(
                self.reader.connect(), TapContext(self.now, self.location)
            )
        except Exception as exc:  # noqa: BLE001 - the invariant under test
            self.tally.violations.append(f"{case.name}: process raised {exc!r}")
            self.tally.raised += 1
            return None
        finally:
            wall = time.perf_counter() - start
            self.reader.remove()
            self.tally.taps += 1
            self.tally.slowest_s = max(self.tally.slowest_s, wall)
        self.tally.outcomes[record.result.outcome.value] += 1
        if wall > self.budget_s + MARGIN_S:
            self.tally.violations.append(
                f"{case.name}: tap took {wall * 1000:.0f} ms (budget {self.budget_s * 1000:.0f} ms)"
            )
        for problem in check(case, record, before, hostile=hostile, tally=self.tally):
            self.tally.violations.append(f"{case.name}: {problem}")
        return record


def check(
    case: Case,
    record: TapRecord,
    before: dict[int, tuple[Ledger, int]],
    *,
    hostile: bool,
    tally: Tally,
) -> list[str]:
    """The per-tap invariants against what the real cards hold now."""
    result = record.result
    problems: list[str] = []
    opened = result.outcome.opens_gate
    if opened and not result.mac_verified:
        problems.append(f"gate opened without a verified card MAC ({result.reason})")
    if opened and hostile and case.must_stay_shut:
        problems.append(f"a forged card opened the gate ({result.outcome.value}, {result.reason})")
    if opened and hostile:
        tally.granted_hostile += 1
    sent = result.sent_debit
    for card in case.real:
        old, counter = before[id(card)]
        new = ledger(card)
        taken = {k: old[k] - new.get(k, 0) for k in old}
        gained = [k for k, v in taken.items() if v < 0]
        if gained:
            problems.append(f"card {card.serial.hex()} gained value on {gained}")
        named = result.serial == card.serial
        total = sum(v for v in taken.values() if v > 0)
        if result.outcome is Outcome.GRANTED and named:
            problems.extend(_holds_the_grant(card, result.debit, taken, counter, result))
        elif result.outcome is Outcome.RECOVERED and named and total:
            problems.append(f"a recovery took {taken} from the card")
        elif total and not _within(taken, sent if named else 0):
            lost = {k: v for k, v in taken.items() if v}
            problems.append(f"card {card.serial.hex()} lost {lost}, the tap journaled {sent} sent")
        elif total and not opened:
            tally.paid_but_shut += 1
    return problems


def _within(taken: dict[str, int], sent: int) -> bool:
    """Whether what left the card is at most the one debit sent (a carnet unit is 1 << 18)."""
    lost = [v for v in taken.values() if v > 0]
    return len(lost) <= 1 and all(v in (sent, sent << 18) for v in lost) and sent > 0


def _holds_the_grant(
    card: CardEmulator, debit: int, taken: dict[str, int], counter: int, result: TapResult
) -> list[str]:
    """A granted tap: the card committed a session, holds the debit and the event sent."""
    problems = []
    if card.transaction_counter == counter:
        problems.append("granted but the card committed no session")
    lost = {k: v for k, v in taken.items() if v}
    if debit and not (len(lost) == 1 and next(iter(lost.values())) in (debit, debit << 18)):
        problems.append(f"granted a debit of {debit} but the card lost {lost}")
    if not debit and lost:
        problems.append(f"granted without a debit but the card lost {lost}")
    sent = result.event_sent
    if sent is not None and sent.ljust(29, b"\x00") not in {
        e.ljust(29, b"\x00") for e in events(card)
    }:
        problems.append("granted but the event sent is not on the card")
    return problems


def condense(violations: list[str], keep: int = 5) -> list[str]:
    """The first ``keep`` violations of each kind (same text once case names and numbers are
    set aside), then one line saying how many more taps broke it the same way."""
    kinds: dict[str, list[str]] = {}
    for line in violations:
        text = line.split(": ", 1)[-1]
        kinds.setdefault(re.sub(r"[0-9a-fA-F]{2,}|\d+", "#", text), []).append(line)
    out = []
    for lines in kinds.values():
        out.extend(lines[:keep])
        if len(lines) > keep:
            out.append(f"... and {len(lines) - keep} more taps like: {lines[0].split(': ', 1)[-1]}")
    return out


def normal_apdus(fleet: Fleet, workdir: Path) -> dict[str, int]:
    """APDUs of each profile's normal tap (the range the random mutations aim at)."""
    bench = Bench(workdir / "calibration", seed=0)
    counts = {}
    for profile in PROFILES:
        card = fleet.card(profile)
        bench.reader.insert(card)
        record = bench.processor.process(bench.reader.connect(), TapContext(START, bench.location))
        bench.reader.remove()
        counts[profile] = max(1, record.result.card_apdus)
    bench.close()
    return counts


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Scripted hostile cards, the sweep, and seeded random hostile taps."""
    seed = 9
    fleet = Fleet(CONFIG / "cards", seed)
    apdus = normal_apdus(fleet, workdir)
    bench = Bench(workdir, seed)
    for case in scripted(fleet, bench.budget_s):
        bench.run(case)
    log(f"scripted: {bench.tally.cases} cases, {bench.tally.taps} taps")
    sweep = list(sweep_cases(fleet, apdus, seed))
    rnd = random.Random(seed)  # noqa: S311 - simulation randomness, by design
    if level is Level.SMOKE:
        sweep = [c for c in sweep if c.name.startswith("sweep/multi_trip/")]
    for case in sweep:
        bench.run(case)
    log(f"sweep: {len(sweep)} cases; total {bench.tally.taps} taps")
    for number in range(level.pick(3000, 300, 30)):
        case = random_case(fleet, rnd, apdus, number)
        first = bench.run(case)
        unknown = first is not None and first.result.outcome is Outcome.UNKNOWN
        if rnd.random() < FOLLOW_UP or unknown:
            bench.follow_up(case, first)
    bench.close()
    tally = bench.tally
    report = verify_journal(bench.journal_dir)
    if report.entries != tally.taps - tally.raised:
        returned = tally.taps - tally.raised
        tally.violations.append(f"journal has {report.entries} entries for {returned} taps")
    tally.violations.extend(f"journal: {p.kind} {p.detail}" for p in report.problems)
    log(f"{tally.taps} taps, outcomes {dict(tally.outcomes)}")
    violations = condense(tally.violations)
    return PartResult(
        NAME,
        tried=f"{tally.taps} hostile taps ({tally.cases} cards)",
        broke=(
            f"{tally.outcomes['granted'] + tally.outcomes['recovered']} opened, "
            f"{tally.paid_but_shut} paid but shut"
        ),
        violations=violations,
        figures={
            "violating_taps": len(tally.violations),
            "process_raised": tally.raised,
            "taps": tally.taps,
            "cases": tally.cases,
            "outcomes": dict(tally.outcomes),
            "granted_despite_a_lie": tally.granted_hostile,
            "paid_but_gate_shut": tally.paid_but_shut,
            "slowest_tap_ms": round(tally.slowest_s * 1000, 1),
            "budget_ms": round(bench.budget_s * 1000),
            "journal_entries": report.entries,
        },
    )
