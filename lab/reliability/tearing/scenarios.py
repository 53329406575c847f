# SPDX-License-Identifier: Apache-2.0
"""The tear sweep's bench: validators whose card can be pulled at any card or SAM APDU, and the
scenarios (cards, settings, taps before the swept one) the sweep tears.

Each validator is the product's TapProcessor built from the shipped validator.yaml (SAM work
overlapped with the card on its own thread, as by default), with its own software SAM, journal
and card reader. A tear at a SAM APDU pulls the card out of this validator's reader when that SAM
APDU is sent (before), once the SAM answered (during) or just after (after: at the next card or
SAM APDU); card APDUs and removals are serialised by a lock so that a removal never lands inside a
card command (the emulator is not thread-safe; a card command torn half-way is the card tear).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.files import CELL_RATIFIED, CELL_TC
from calypso.emulator.profile import FileType, load_profile
from calypso.layouts.demo import SFI_EVENTS
from lab.paths import ROOT
from readers.apdu import ResponseApdu
from readers.base import CardConnection
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.settings import ValidatorSettings, load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import CardState, Decision, FareRules, TapContext
from validator.engine.layouts.base import CardLayout
from validator.engine.layouts.demo import DemoLayout
from validator.engine.layouts.writes import AppendRecord, apply_writes
from validator.engine.session import SecureSession
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.writer import Journal
from yamlconfig import load_model

CONFIG = ROOT / "config"
CARDS = CONFIG / "cards"
START = dt.datetime(2026, 3, 2, 8, 0)  # a Monday, peak time
PLACES = {"A": 101, "B": 102, "C": 201}  # A and B: one station group; C: another station
KINDS = (FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING, FaultKind.REMOVED_AFTER)
SMALL_BUFFER = "063C2005141001"  # Rev3 buffer indicator 06h: 215 bytes, the smallest

Image = frozenset[tuple[str, bytes]]


def image(card: CardEmulator) -> Image:
    """The card's committed data: every EEPROM cell but the transaction counter and ratification.

    The counter moves at each Open even when the session rolls back, and ratification is the
    recovery mechanism itself: neither is part of "the old or the new image".
    """
    cells = card.snapshot().cells
    return frozenset((k, v) for k, v in cells.items() if k not in (CELL_TC, CELL_RATIFIED))


def value(card: CardEmulator) -> int:
    """Everything a tap can take: every counter of every counters file plus the SV balance."""
    total = card.sv_balance or 0
    for ef in card.profile.files:
        if ef.type is FileType.COUNTERS:
            record = card.read_record(ef.sfi, 1)
            total += sum(
                int.from_bytes(record[i : i + 3], "big") for i in range(0, len(record) - 2, 3)
            )
    return total


class CardSlot:
    """One validator's card reader; SAM traffic can pull the card out of it between card APDUs."""

    def __init__(self, name: str) -> None:
        self.reader = EmulatedReader(name)
        self.lock = threading.Lock()
        self.pending = False  # a SAM "after" tear: remove at the next APDU of either side

    def remove(self) -> None:
        """Take the card away now (waits for a card APDU in progress)."""
        with self.lock:
            self.pending = False
            self.reader.remove()

    def remove_soon(self) -> None:
        """Take the card away at the next card or SAM APDU."""
        with self.lock:
            self.pending = True

    def connect(self) -> _SlotConnection:
        """A connection to the card now in the slot."""
        return _SlotConnection(self, self.reader.connect())


class _SlotConnection:
    """The card connection the processor gets: each APDU holds the slot's lock."""

    def __init__(self, slot: CardSlot, inner: CardConnection) -> None:
        self._slot = slot
        self._inner = inner

    @property
    def atr(self) -> bytes:
        """The card's ATR."""
        return self._inner.atr

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """One card APDU, after a pending SAM tear if any."""
        with self._slot.lock:
            if self._slot.pending:
                self._slot.pending = False
                self._slot.reader.remove()
            return self._inner.transmit(apdu)

    def close(self) -> None:
        """Release the connection."""
        self._inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TearingSamConnection:
    """The SAM connection, able to pull the card at the Nth SAM APDU of a tap."""

    def __init__(self, inner: CardConnection) -> None:
        self._inner = inner
        self._slot: CardSlot | None = None
        self._at = 0
        self._kind: FaultKind | None = None
        self._count = 0
        self.hit = False  # the armed SAM APDU was reached

    @property
    def atr(self) -> bytes:
        """The SAM's ATR."""
        return self._inner.atr

    def arm(self, slot: CardSlot, index: int, kind: FaultKind) -> None:
        """Pull the card out of ``slot`` at SAM APDU ``index`` (1-based, from now)."""
        self._slot, self._at, self._kind, self._count, self.hit = slot, index, kind, 0, False

    def disarm(self) -> None:
        """No more tears."""
        self._slot, self._kind = None, None

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """One SAM APDU; the card leaves before, during or after it when armed for it."""
        slot = self._slot
        if slot is None:
            return self._inner.transmit(apdu)
        if slot.pending:
            slot.remove()  # the previous SAM APDU's "after" tear, if no card APDU came first
        self._count += 1
        kind = self._kind if self._count == self._at else None
        self.hit = self.hit or kind is not None
        if kind is FaultKind.REMOVED_BEFORE:
            slot.remove()
        response = self._inner.transmit(apdu)
        if kind is FaultKind.REMOVED_DURING:
            slot.remove()
        elif kind is FaultKind.REMOVED_AFTER:
            slot.remove_soon()
        return response

    def close(self) -> None:
        """Release the connection."""
        self._inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class SamTear:
    """The card leaves at SAM APDU ``index`` of the tap (before, during or after it)."""

    kind: FaultKind
    index: int


@dataclass
class Validator:
    """One validator: the product's processor, its SAM (with the tear hook), journal, reader."""

    name: str
    station: int
    processor: TapProcessor
    slot: CardSlot
    sam: TearingSamConnection
    journal: Journal | None

    def tap(
        self,
        card: object,
        now: dt.datetime,
        fault: Fault | SamTear | None = None,
    ) -> TapRecord:
        """One tap of ``card`` (an ApduHandler) here at ``now``, then the card goes away."""
        self.slot.reader.insert(card)  # type: ignore[arg-type]
        if isinstance(fault, Fault):
            self.slot.reader.inject(fault)
        elif isinstance(fault, SamTear):
            self.sam.arm(self.slot, fault.index, fault.kind)
        try:
            return self.processor.process(self.slot.connect(), TapContext(now, self.station))
        finally:
            self.sam.disarm()
            self.slot.reader.clear_faults()
            self.slot.remove()
            self.processor.prefetch()  # between taps, as the gate loop does

    def close(self) -> None:
        """Close the journal."""
        if self.journal is not None:
            self.journal.close()


class MultiWriteLayout(DemoLayout):
    """The demo layout whose transaction a 215-byte buffer cannot hold, so that multiple-session
    mode splits it: after the demo writes (Decrease 10 bytes, Append of the event 35), the new
    event record is rewritten in place ``rewrites`` times (35 bytes each, same content: the
    card's data means the same, only the buffer fills up)."""

    name = "demo-multiwrite"

    def __init__(self, rewrites: int = 5) -> None:
        super().__init__()
        self.rewrites = rewrites

    def write(self, session: SecureSession, card: CardState, decision: Decision) -> None:
        """Debit and event as the demo layout, then the event rewritten in place."""
        writes = self.writes(card, decision, session.image.records)
        apply_writes(session, writes)
        event = next((w.data for w in writes if isinstance(w, AppendRecord)), None)
        if event is not None:
            for _ in range(self.rewrites):
                session.update_record(SFI_EVENTS, 1, event)


@dataclass(frozen=True)
class SetupTap:
    """A tap before the swept one (at ``seconds`` from START), possibly torn."""

    validator: str
    seconds: int
    fault: Fault | None = None


@dataclass(frozen=True)
class Scenario:
    """One kind of tap to tear: the card, the validator settings, the taps that come first."""

    name: str
    profile: Path
    startup_info: str | None = None
    setup: tuple[SetupTap, ...] = ()
    multiple_session: bool = False
    layout: Callable[[], CardLayout] | None = None  # replaces the demo AID's layout
    seed: int = 1

    def card(self) -> CardEmulator:
        """A fresh card, the same one at every call (seeded randoms)."""
        profile = load_profile(self.profile)
        if self.startup_info is not None:
            profile = profile.model_copy(update={"startup_info": bytes.fromhex(self.startup_info)})
        return CardEmulator(profile, rng=random.Random(self.seed).randbytes)  # noqa: S311


# The ratification command is card APDU 9 of a granted multi-trip tap: tearing before it leaves
# the card committed but unratified (the gate opened: the card MAC was verified).
UNRATIFIED = (SetupTap("A", -20, Fault(FaultKind.REMOVED_BEFORE, 9)),)
# A PKI card signs its session itself: no SAM APDU to tear. Its first tap at a validator reads
# both certificates (four Get Data), so its ratification command is card APDU 13 there.
PKI_CARD = CARDS / "pki" / "test_pki_multi_trip.yaml"
PKI_UNRATIFIED = (SetupTap("A", -20, Fault(FaultKind.REMOVED_BEFORE, 13)),)

SCENARIOS = (
    Scenario("season_pass", CARDS / "season_pass.yaml"),
    Scenario("multi_trip", CARDS / "multi_trip.yaml"),
    Scenario("stored_value", CARDS / "other" / "stored_value_counter.yaml"),
    Scenario("sv_purse", CARDS / "sv_purse.yaml"),
    Scenario("recovery", CARDS / "multi_trip.yaml", setup=UNRATIFIED),
    Scenario("denied", CARDS / "expired.yaml"),
    Scenario(
        "multi_session",
        CARDS / "multi_trip.yaml",
        startup_info=SMALL_BUFFER,
        multiple_session=True,
        layout=MultiWriteLayout,
    ),
    Scenario("intercode", CARDS / "intercode.yaml"),
    Scenario("pki", PKI_CARD),
    Scenario("pki_recovery", PKI_CARD, setup=PKI_UNRATIFIED),
)


@dataclass
class Fleet:
    """The three validators A, B (same station group) and C (another station)."""

    validators: dict[str, Validator] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Validator:
        return self.validators[name]

    def close(self) -> None:
        """Close every journal."""
        for v in self.validators.values():
            v.close()


def settings_for(scenario: Scenario, name: str) -> ValidatorSettings:
    """The shipped validator.yaml (environment ignored) with this validator's id and mode."""
    settings = load_settings(CONFIG, environ={})
    return settings.model_copy(
        update={"validator_id": f"validator-{name}", "multiple_session": scenario.multiple_session}
    )


def make_fleet(scenario: Scenario, rules: FareRules, journal_dir: Path | None) -> Fleet:
    """Validators A, B, C with seeded software SAMs and (unless None) their own journals."""
    fleet = Fleet()
    for number, (name, station_id) in enumerate(PLACES.items()):
        sam_reader = EmulatedReader(f"sam {name}")
        rng = random.Random(1000 + number).randbytes  # noqa: S311 - reproducible challenges
        sam_reader.insert(
            SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", rng, allow_simulation=True)
        )
        sam_conn = TearingSamConnection(sam_reader.connect())
        sam = LegacySam(ApduChannel(sam_conn, label="sam"))
        journal = None
        if journal_dir is not None:
            journal = Journal(journal_dir / name)
            journal.open()
        slot = CardSlot(f"card {name}")
        settings = settings_for(scenario, name)
        station = build_station(
            CONFIG, settings, reader=slot.reader, sam=sam, journal=journal, rules=rules
        )
        processor = station.processor
        if scenario.layout is not None:
            layouts = dict(processor.layouts or {})
            layouts[load_profile(scenario.profile).aid] = scenario.layout()
            processor.layouts = layouts
        processor.prefetch()
        fleet.validators[name] = Validator(name, station_id, processor, slot, sam_conn, journal)
    return fleet


def load_rules() -> FareRules:
    """The shipped fare rules."""
    return load_model(CONFIG / "fares.yaml", FareRules)
