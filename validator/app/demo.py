# SPDX-License-Identifier: Apache-2.0
"""``validator demo``: a stream of passengers on the embedded default.

Everything is real code but the radio: emulated cards personalised from config/cards/*.yaml,
the software SAM with the simulation keys behind the same SAM APDUs a hardware SAM gets, and
the emulated reader, which can pull a card out of the field at any APDU as hurried passengers do.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, load_profile
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.software.link import software_sam
from validator.app.settings import ValidatorSettings
from validator.app.station import build_processor
from validator.engine.fares.decide import TapContext
from validator.engine.fares.rules import load_fares
from validator.engine.outcome import Outcome, TapResult
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
    """Personalise a few cards per profile, each with its own serial and diversified keys."""
    profiles = sorted(cards_dir.glob("*.yaml"))
    if not profiles:
        raise ConfigError(cards_dir, "no card profile (*.yaml) in this folder")
    fleet = []
    for path in profiles:
        profile: CardProfile = load_profile(path)
        for copy in range(_COPIES.get(path.stem, 1)):
            serial = profile.serial[:6] + (
                (int.from_bytes(profile.serial[6:], "big") + 0x100 * copy) & 0xFFFF
            ).to_bytes(2, "big")
            card = profile.model_copy(update={"serial": serial})
            fleet.append(CardEmulator(card, rng=_card_rng(rnd)))
    return fleet


def run_demo(
    config_dir: Path,
    settings: ValidatorSettings,
    *,
    taps: int,
    seed: int,
    start: dt.datetime,
    journal: Journal | None = None,
    tear_rate: float = 0.05,
) -> Iterator[DemoTap]:
    """Simulate ``taps`` passengers and yield each tap as it happens (journaled if asked)."""
    if not settings.simulation:
        raise ConfigError(
            config_dir / "validator.yaml",
            "the demo runs on simulation keys: set 'simulation: true'",
        )
    rules = load_fares(config_dir, settings)
    rnd = random.Random(seed)  # noqa: S311 - simulation randomness, by design
    sam_rng = random.Random(rnd.getrandbits(64))  # noqa: S311
    sam = software_sam(config_dir / settings.keys, rng=sam_rng.randbytes, allow_simulation=True)
    processor = build_processor(settings, sam, rules, journal)
    processor.prefetch()
    fleet = build_fleet(config_dir / settings.cards, rnd)
    card_reader = EmulatedReader("contactless")
    station = rules.station.location_id
    now = start
    card = rnd.choice(fleet)
    again = False
    for _ in range(taps):
        if again or (processor.taps and rnd.random() < _REPEAT_TAP):
            now += dt.timedelta(seconds=rnd.randint(3, 20))
        else:
            now += dt.timedelta(seconds=rnd.randint(30, 900))
            card = rnd.choice(fleet)
        card_reader.insert(card)
        if rnd.random() < tear_rate:
            kind = rnd.choice([FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING])
            card_reader.inject(Fault(kind, rnd.randint(2, 9)))
        record = processor.process(card_reader.connect(), TapContext(now, station))
        card_reader.clear_faults()
        card_reader.remove()
        processor.prefetch()  # between taps, off the next passenger's time
        # A passenger whose gate stayed shut by accident tries again at once.
        again = record.result.outcome in (Outcome.CARD_LOST, Outcome.UNKNOWN)
        yield DemoTap(now, record, station)
