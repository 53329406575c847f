# SPDX-License-Identifier: Apache-2.0
"""``validator demo``: a stream of passengers on the embedded default.

Everything is real code but the radio: emulated cards personalised from config/cards/*.yaml
(and the PKI cards of config/cards/pki/, which sign their sessions themselves: with the test
root the demo's settings trust, they need no SAM), the software SAM with the simulation keys
behind the same SAM APDUs a hardware SAM gets, and the emulated reader, which can pull a card
out of the field at any APDU as hurried passengers do.
The station is run's: build_station and run_loop, with simulated passengers for a card reader
and a simulated clock, so that the demo exercises the loop the gate runs.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, load_profile
from readers.base import CardConnection
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.software.link import software_sam
from validator.app.clock import clock_range
from validator.app.loop import run_loop
from validator.app.settings import NO_SAM, ValidatorSettings
from validator.app.station import build_station
from validator.engine.outcome import Outcome, TapResult
from validator.engine.recording import JournalError
from validator.engine.tap import TapRecord
from validator.journal.writer import Journal
from yamlconfig import ConfigError

# Chance that the same passenger taps again a few seconds later (anti-passback shows up).
_REPEAT_TAP = 0.08

# Cards per profile in the fleet: most passengers carry a valid title.
_COPIES = {"season_pass": 4, "multi_trip": 6}


@dataclass(frozen=True, slots=True)
class DemoTap:
    """One simulated tap: the simulated time and what the validator did and journaled."""

    at: dt.datetime
    record: TapRecord
    station: int

    @property
    def index(self) -> int:
        """Tap number, from 1."""
        return self.record.index

    @property
    def result(self) -> TapResult:
        """The tap's result."""
        return self.record.result

    def as_json(self) -> dict[str, object]:
        """The tap as one JSON object (the foundation fields, then station and journal links)."""
        summary = self.result.summary()
        if self.result.outcome is Outcome.UNKNOWN:
            summary["debit"] = self.result.sent_debit  # what was sent, pending resolution
        return {
            "tap": self.index,
            "time": self.at.isoformat(timespec="seconds"),
            **summary,
            "station": self.station,
            "recovered_from": self.record.recovered_from,
            "journal_seq": self.record.seq,
        }


def _card_rng(rnd: random.Random) -> Callable[[int], bytes]:
    seeded = random.Random(rnd.getrandbits(64))  # noqa: S311 - simulation randomness, by design
    return seeded.randbytes


def build_fleet(cards_dir: Path, rnd: random.Random) -> list[CardEmulator]:
    """Personalise a few cards per profile, each with its own serial and diversified keys;
    a PKI card (pki/*.yaml) once, as its certificate names its serial."""
    profiles = sorted(cards_dir.glob("*.yaml"))
    if not profiles:
        raise ConfigError(cards_dir, "no card profile (*.yaml) in this folder")
    fleet = []
    for path in profiles + sorted(cards_dir.glob("pki/*.yaml")):
        profile: CardProfile = load_profile(path)
        copies = 1 if profile.pki is not None else _COPIES.get(path.stem, 1)
        for copy in range(copies):
            serial = profile.serial[:6] + (
                (int.from_bytes(profile.serial[6:], "big") + 0x100 * copy) & 0xFFFF
            ).to_bytes(2, "big")
            card = profile.model_copy(update={"serial": serial})
            fleet.append(CardEmulator(card, rng=_card_rng(rnd)))
    return fleet


class DemoOutOfServiceError(Exception):
    """The demo's station went out of service (its SAM, its clock): the demo cannot go on."""


class SimulatedPassengers:
    """The demo's card reader: each wait for a card is the next passenger, on a simulated clock.

    Passengers come every 30 s to 15 min; now and then the same one taps again a few seconds
    later (anti-passback shows), and one whose gate stayed shut by accident (card lost, unknown
    outcome) tries again at once. With ``tear_rate`` a card leaves the field at a random APDU.
    The gate loop reads the time from :meth:`now`, so the whole demo runs at full speed.
    """

    name = "simulated passengers"

    def __init__(
        self, fleet: list[CardEmulator], rnd: random.Random, start: dt.datetime, tear_rate: float
    ) -> None:
        self.fleet = fleet
        self.rnd = rnd
        self.time = start
        self.tear_rate = tear_rate
        self.reader = EmulatedReader("contactless")
        self.card = rnd.choice(fleet)
        self.presented = 0
        self.again = False

    def now(self) -> dt.datetime:
        """The simulated time of the tap in progress (the loop's clock)."""
        return self.time

    def wait_for_card(self, timeout: float | None = None) -> CardConnection | None:
        """The next passenger's card, in the field at its simulated time."""
        rnd = self.rnd
        if self.again or (self.presented and rnd.random() < _REPEAT_TAP):
            self.time += dt.timedelta(seconds=rnd.randint(3, 20))
        else:
            self.time += dt.timedelta(seconds=rnd.randint(30, 900))
            self.card = rnd.choice(self.fleet)
        self.presented += 1
        self.reader.insert(self.card)
        if rnd.random() < self.tear_rate:
            kind = rnd.choice([FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING])
            self.reader.inject(Fault(kind, rnd.randint(2, 9)))
        return self.reader.connect()

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """The passenger walks on at once."""
        self.reader.clear_faults()
        self.reader.remove()
        return True

    def served(self, record: TapRecord) -> None:
        """A passenger whose gate stayed shut by accident tries again at once."""
        self.again = record.result.outcome in (Outcome.CARD_LOST, Outcome.UNKNOWN)


class _DemoGate:
    """Hands each tap to the caller; an outage ends the demo (nothing comes back by itself)."""

    def __init__(
        self,
        passengers: SimulatedPassengers,
        station: int,
        stop: threading.Event,
        on_tap: Callable[[DemoTap], None] | None,
    ) -> None:
        self.passengers = passengers
        self.station = station
        self.stop = stop
        self.on_tap = on_tap
        self.outage: str | None = None

    def feedback(self, record: TapRecord) -> None:
        self.passengers.served(record)
        if self.on_tap is not None:
            self.on_tap(DemoTap(self.passengers.now(), record, self.station))

    def out_of_service(self, reason: str) -> None:
        self.outage = self.outage or reason
        self.stop.set()

    def in_service(self) -> None:
        pass


def run_demo(
    config_dir: Path,
    settings: ValidatorSettings,
    *,
    taps: int,
    seed: int,
    start: dt.datetime,
    journal: Journal | None = None,
    tear_rate: float = 0.05,
    on_tap: Callable[[DemoTap], None] | None = None,
) -> int:
    """Serve ``taps`` simulated passengers through the gate loop; returns the taps served.

    The station is run's (build_station, run_loop) with simulated passengers for its card
    reader and the software SAM with the simulation keys (none when the settings say
    ``sam_reader: none``: then only the PKI passengers pass). ``on_tap`` hears of each tap as
    it is served. A journal that cannot be written ends the demo with JournalError.
    """
    if not settings.simulation:
        raise ConfigError(
            config_dir / "validator.yaml",
            "the demo runs on simulation keys: set 'simulation: true'",
        )
    rnd = random.Random(seed)  # noqa: S311 - simulation randomness, by design
    sam_rng = random.Random(rnd.getrandbits(64))  # noqa: S311
    sam = None
    if settings.sam_reader != NO_SAM:
        sam = software_sam(config_dir / settings.keys, rng=sam_rng.randbytes, allow_simulation=True)
    passengers = SimulatedPassengers(
        build_fleet(config_dir / settings.cards, rnd), rnd, start, tear_rate
    )
    station = build_station(
        config_dir, settings, reader=passengers, sam=sam, journal=journal, rng=sam_rng.randbytes
    )
    stop = threading.Event()
    gate = _DemoGate(passengers, station.location, stop, on_tap)
    served = run_loop(
        station.reader,
        station.processor,
        gate,
        station=station.location,
        max_taps=taps,
        stop=stop,
        clock=passengers.now,
        clock_range=clock_range(settings.layouts.values()),
    )
    if gate.outage is not None:
        if gate.outage.startswith("journal"):
            raise JournalError(gate.outage.removeprefix("journal: "))
        raise DemoOutOfServiceError(gate.outage)
    return served
