# SPDX-License-Identifier: Apache-2.0
"""Soak: 100,000 taps in one process on the embedded default, 5% torn, memory watched.

The demo fleet of config/cards/ (``validator.app.demo.build_fleet``: its PKI cards too), the
software SAM, the emulated reader, a real Journal (rotating as configured) and the
TapProcessor. A card is pulled
out of the field at a random APDU (before, during or after it) in 5% of the taps; a passenger
whose gate stayed shut by accident taps again at once, as in ``validator demo``. A card that
paid before and now lacks value is replaced by a fresh card of the same profile (a new serial:
a passenger buying a new carnet; a PKI card certified anew for it), so the soak keeps
debiting. Simulated time moves on at each tap, so anti-passback denies only the quick repeats.

A card whose transaction counter reached 0 (it answers 6900 to Open Secure Session: the end of
its life) is replaced too; its ``error`` taps are expected. Invariants checked at every tap,
from the card's committed state before and after it: a gate opens only on a verified card MAC;
value leaves a card only in a granted or unknown tap, by the journaled amount (demo layout)
and never twice; an ``unknown`` is resolved when the card comes back, and the resolution says
what the card really did; no exception escapes; the journal verifies at the end with one entry
per tap. Memory: RSS (VmRSS) after a warm-up and
at the end; growth over 10% is a violation.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, FileType, load_profile
from lab.paths import CONFIG
from lab.pki.cards import recertified
from lab.reliability.report import Level, Log, PartResult
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.software.link import software_sam
from validator.app.demo import build_fleet
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, Reason, TapContext
from validator.engine.outcome import Outcome, TapResult
from validator.engine.tap import TapRecord
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal
from yamlconfig import load_model

NAME = "soak"
START = dt.datetime(2026, 3, 2, 7, 0)
TEAR_RATE = 0.05
MAX_TEAR_APDU = 10  # a multi-trip tap is 9 card APDUs; 10 tears some taps after the last
TEAR_KINDS = (FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING, FaultKind.REMOVED_AFTER)
REPEAT_TAP = 0.08  # the same passenger again a few seconds later (anti-passback)
MAX_GROWTH = 0.10
MAX_DETAILS = 30  # violation lines kept (all are counted)
# Denials that mean "no value left": a card that paid before is then replaced.
OUT_OF_VALUE = {
    Reason.NO_TRIPS_LEFT.value,
    Reason.INSUFFICIENT_VALUE.value,
    Reason.NO_VALID_TITLE.value,
    Reason.EMPTY_CARD.value,
}
# Cells that change without any value moving: the counter of sessions, ratification, PIN tries.
_BOOKKEEPING = {"TC", "RATIFIED", "PIN_TRIES"}


def rss_mb() -> float:
    """This process's resident set size (VmRSS) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Passenger:
    """One card of the fleet: the emulator, its profile, and whether it ever paid."""

    card: CardEmulator
    profile: CardProfile
    paid: bool = False


@dataclass(frozen=True, slots=True)
class CardState:
    """The committed state that matters: value (counters, SV balance) and everything else."""

    value: tuple[int, ...]
    cells: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, card: CardEmulator) -> CardState:
        """Read the card's committed (EEPROM) state."""
        cells = card.snapshot().cells
        value: list[int] = []
        for ef in card.files.all():
            if ef.profile.type is FileType.COUNTERS:
                record = cells[f"EF{ef.sfi:02X}.1"]
                value += [
                    int.from_bytes(record[i : i + 3], "big") for i in range(0, len(record) - 2, 3)
                ]
        balance = card.sv_balance
        value.append(balance if balance is not None else 0)
        kept = tuple(sorted((k, v) for k, v in cells.items() if k not in _BOOKKEEPING))
        return cls(tuple(value), kept)

    def taken(self, after: CardState) -> int:
        """Value units that left the card (sum of the decreases)."""
        return sum(max(0, b - a) for b, a in zip(self.value, after.value, strict=True))


@dataclass
class Tally:
    """What the soak did and what broke."""

    taps: int = 0
    tears: int = 0
    replaced: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    unknowns: int = 0
    resolved: int = 0

    def violation(self, message: str) -> None:
        """Count a broken invariant (details for the first MAX_DETAILS)."""
        self.violation_count += 1
        if len(self.violations) < MAX_DETAILS:
            self.violations.append(message)


class Soak:
    """The soak's station, fleet and running checks."""

    def __init__(self, workdir: Path, seed: int) -> None:
        settings = load_settings(CONFIG)
        rules = load_model(CONFIG / settings.fares, FareRules)
        self.rnd = random.Random(seed)  # noqa: S311 - simulation randomness, by design
        sam_rng = random.Random(self.rnd.getrandbits(64))  # noqa: S311
        sam = software_sam(CONFIG / settings.keys, rng=sam_rng.randbytes, allow_simulation=True)
        self.journal = Journal(workdir / "journal")
        self.journal.open()
        self.reader = EmulatedReader("contactless")
        station = build_station(
            CONFIG, settings, reader=self.reader, sam=sam, journal=self.journal, rules=rules
        )
        self.processor = station.processor
        self.processor.prefetch()
        cards = CONFIG / "cards"
        profiles = {
            p.description: p
            for p in map(
                load_profile, sorted(cards.glob("*.yaml")) + sorted(cards.glob("pki/*.yaml"))
            )
        }
        self.fleet = [
            Passenger(card, profiles[card.profile.description])
            for card in build_fleet(CONFIG / settings.cards, self.rnd)
        ]
        self.station = rules.station.location_id
        self.now = START
        self.tally = Tally()
        self.pending: dict[int, tuple[bytes, bool]] = {}  # unknown seq -> (serial, committed)
        self._serials = 0

    def close(self) -> None:
        """Release the journal."""
        self.journal.close()

    def run(self, taps: int) -> None:
        """Serve ``taps`` taps (plus what it takes to resolve a last unknown)."""
        passenger = self.rnd.choice(self.fleet)
        again = False
        served = 0
        while served < taps or (again and served < taps + 5):
            if again or (served and self.rnd.random() < REPEAT_TAP):
                self.now += dt.timedelta(seconds=self.rnd.randint(3, 20))
            else:
                self.now += dt.timedelta(seconds=self.rnd.randint(30, 300))
                passenger = self.rnd.choice(self.fleet)
            tear = served < taps and self.rnd.random() < TEAR_RATE
            record = self.tap(passenger, tear)
            served += 1
            outcome = record.result.outcome if record is not None else Outcome.ERROR
            again = outcome in (Outcome.CARD_LOST, Outcome.UNKNOWN)
            if record is not None and not again:
                self._maybe_replace(passenger, record.result)

    def tap(self, passenger: Passenger, tear: bool) -> TapRecord | None:
        """One tap, checked against the card's state before and after it."""
        card = passenger.card
        before = CardState.of(card)
        self.reader.insert(card)
        if tear:
            self.tally.tears += 1
            kind = self.rnd.choice(TEAR_KINDS)
            self.reader.inject(Fault(kind, self.rnd.randint(1, MAX_TEAR_APDU)))
        try:
            # Closed after the tap, as the gate loop does (it stops the connection's watchdog).
            with self.reader.connect() as connection:
                record = self.processor.process(connection, TapContext(self.now, self.station))
        except Exception as exc:  # a crash is a violation; the soak goes on
            self.tally.taps += 1
            self.tally.outcomes["exception"] += 1
            self.tally.violation(f"tap {self.tally.taps}: exception {exc!r}")
            return None
        finally:
            self.reader.clear_faults()
            self.reader.remove()
            self.processor.prefetch()
        self.tally.taps += 1
        self.tally.outcomes[record.result.outcome.value] += 1
        self._check(record, before, CardState.of(card), worn_out=card.transaction_counter == 0)
        return record

    def _check(
        self, record: TapRecord, before: CardState, after: CardState, *, worn_out: bool = False
    ) -> None:
        result = record.result
        where = f"tap {self.tally.taps} ({result.outcome.value}, {result.reason})"
        taken = before.taken(after)
        changed = before.cells != after.cells
        if result.outcome.opens_gate and not result.mac_verified:
            self.tally.violation(f"{where}: gate opened without a verified card MAC")
        if result.outcome is Outcome.ERROR and not worn_out:
            self.tally.violation(f"{where}: error outcome: {result.explanation}")
        if taken and result.outcome not in (Outcome.GRANTED, Outcome.UNKNOWN):
            self.tally.violation(f"{where}: {taken} units taken without a paid tap")
        if result.outcome is Outcome.GRANTED:
            if bool(taken) != bool(result.debit):
                self.tally.violation(f"{where}: debit {result.debit}, card lost {taken} units")
            elif result.layout == "demo" and taken != result.debit:
                self.tally.violation(f"{where}: debit {result.debit}, card lost {taken} units")
        if changed and result.outcome in (Outcome.DENIED, Outcome.CARD_LOST, Outcome.ERROR):
            self.tally.violation(f"{where}: the card changed in a tap that wrote nothing")
        if result.outcome is Outcome.UNKNOWN:
            self.tally.unknowns += 1
            if record.seq is None or result.serial is None:
                self.tally.violation(f"{where}: unknown tap not journaled")
            else:
                self.pending[record.seq] = (result.serial, changed)
            if result.layout == "demo" and taken not in (0, result.sent_debit):
                self.tally.violation(f"{where}: sent {result.sent_debit}, card lost {taken}")
        if record.resolved is not None:
            self._check_resolution(where, record.resolved)

    def _check_resolution(self, where: str, resolved: dict[str, object]) -> None:
        seq = resolved.get("seq")
        if not isinstance(seq, int) or seq not in self.pending:
            self.tally.violation(f"{where}: resolves seq {seq}, not a pending unknown")
            return
        _, committed = self.pending.pop(seq)
        self.tally.resolved += 1
        if bool(resolved.get("committed")) != committed:
            self.tally.violation(
                f"{where}: unknown seq {seq} resolved committed={resolved.get('committed')}, "
                f"the card says {committed}"
            )

    def _maybe_replace(self, passenger: Passenger, result: TapResult) -> None:
        """A card that paid and now lacks value, or is worn out: the passenger gets a fresh one."""
        worn_out = passenger.card.transaction_counter == 0  # 6900 at Open: end of the card's life
        if result.outcome is Outcome.GRANTED and result.debit:
            passenger.paid = True
        elif worn_out or (
            passenger.paid and result.outcome is Outcome.DENIED and result.reason in OUT_OF_VALUE
        ):
            self._serials += 1
            serial = bytes.fromhex("5041") + self._serials.to_bytes(6, "big")  # "PA"...
            profile = passenger.profile.model_copy(update={"serial": serial})
            if profile.pki is not None:  # a PKI card's certificate names its serial
                profile = recertified(profile, serial)
            seeded = random.Random(self.rnd.getrandbits(64))  # noqa: S311
            passenger.card = CardEmulator(profile, rng=seeded.randbytes)
            passenger.paid = False
            self.tally.replaced += 1


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Soak the embedded default; report taps, outcomes, violations and memory growth."""
    taps = level.pick(100_000, 5_000, 300)
    warmup = level.pick(2_000, 500, 100)
    soak = Soak(workdir, seed=9)
    started = time.monotonic()
    try:
        soak.run(warmup)
        gc.collect()
        rss_start = rss_mb()
        measured = time.monotonic()
        step = max(1, (taps - warmup) // 10)
        done = warmup
        while done < taps:
            chunk = min(step, taps - done)
            soak.run(chunk)
            done += chunk
            log(f"{soak.tally.taps} taps, {rss_mb():.1f} MB RSS")
        gc.collect()
        rss_end = rss_mb()
        elapsed = time.monotonic() - measured
    finally:
        soak.close()
    tally = soak.tally
    for seq, (serial, _) in soak.pending.items():
        tally.violation(f"unknown seq {seq} (card {serial.hex().upper()}) never resolved")
    report = verify_journal(soak.journal.directory)
    if not report.ok:
        tally.violation(f"journal does not verify: {report.problems[:3]}")
    if report.entries != tally.taps - tally.outcomes["exception"]:
        tally.violation(f"journal holds {report.entries} entries for {tally.taps} taps")
    growth = (rss_end - rss_start) / rss_start if rss_start else 0.0
    if growth > MAX_GROWTH:
        tally.violation(f"memory grew {growth:.1%} ({rss_start:.1f} -> {rss_end:.1f} MB)")
    violations = list(tally.violations)
    if tally.violation_count > len(violations):
        violations.append(f"... {tally.violation_count - len(violations)} more violations")
    rate = (tally.taps - warmup) / elapsed if elapsed else 0.0
    figures: dict[str, object] = {
        "taps": tally.taps,
        "taps_per_s": round(rate, 1),
        "total_s": round(time.monotonic() - started, 1),
        "tears": tally.tears,
        "outcomes": dict(tally.outcomes),
        "unknowns": tally.unknowns,
        "resolved": tally.resolved,
        "cards_replaced": tally.replaced,
        "journal_entries": report.entries,
        "journal_files": len(list(soak.journal.directory.glob("journal-*.jsonl"))),
        "sam_channel_exchanges": len(soak.processor.sam.exchanges if soak.processor.sam else ()),
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "growth_percent": round(100 * growth, 2),
    }
    granted = tally.outcomes["granted"] + tally.outcomes["recovered"]
    return PartResult(
        NAME,
        f"{tally.taps} taps ({granted} granted), {rate:.0f} taps/s",
        f"{tally.tears} tears, {tally.unknowns} unknown, RSS {rss_start:.0f}->{rss_end:.0f} MB "
        f"({100 * growth:+.1f}%)",
        violations,
        figures=figures,
    )
