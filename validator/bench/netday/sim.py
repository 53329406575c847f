# SPDX-License-Identifier: Apache-2.0
"""The simulation phase of a network day: one process's share of the cards, gate by gate.

Each validator is the tap engine of ``validator run`` (build_station, with its station's
location id and its own software SAM), recording into a ``SpillRecorder`` instead of a journal:
each tap, with the closing intents written before its Close, becomes a ``unit`` spilled to a
scratch file of its station. The journal writer gives seq, chain and write time later, in tap
time order per validator (validator.bench.netday.write); the recorder's provisional numbers
(the seq the engine keeps for an unknown tap) are mapped then.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, FileProfile, load_profile
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.software.link import software_sam
from validator.app.settings import ValidatorSettings, load_fares, load_settings
from validator.app.station import build_station
from validator.bench.netday.plan import DayPlan, validator_ids
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor, TapRecord

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config"

# Share of the fleet per card profile (config/cards/<stem>.yaml); others get DEFAULT_WEIGHT.
WEIGHTS = {"season_pass": 30, "multi_trip": 25, "intercode": 12, "oura": 10, "sv_purse": 10}
DEFAULT_WEIGHT = 3  # expired, empty, wrong keys: the denials a network sees too
TRIPS = (1, 2, 2, 2, 3, 3, 4)  # trips a card makes in the day
REPEAT_TAP = 0.06  # the holder taps again a few seconds later (anti-passback)
WALK_AWAY = 0.25  # after a tear, the holder leaves: settled at the next trip, elsewhere
MAX_PRESENTATIONS = 5  # per trip
_TEARS = (FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING, FaultKind.REMOVED_AFTER)
FLUSH_UNITS = 256  # units kept per station before they are appended to its spill file
DEMO_AID = bytes.fromhex("315449432E49434131")  # 1TIC.ICA1: the demo layout (settings layouts)


class _Written:
    """A closing intent 'made durable' at once (the recorder keeps it in memory)."""

    def __init__(self, written: dict[str, Any]) -> None:
        self.written = written

    def wait(self) -> dict[str, Any]:
        """The intent with its provisional seq."""
        return self.written


class SpillRecorder:
    """A TapRecorder that keeps a tap's records in memory, with provisional seq numbers."""

    def __init__(self) -> None:
        self.seq = 0
        self.records: list[list[Any]] = []  # [kind, provisional seq, record] of the current tap

    def ensure_room(self) -> None:
        """Always room: the journal writer is run later, in the write phase."""

    def check_writable(self) -> None:
        """Always writable (see ensure_room)."""

    def write_intent(self, intent: Mapping[str, Any]) -> _Written:
        """Keep a closing intent; its provisional seq comes back at once."""
        self.seq += 1
        self.records.append(["intent", self.seq, dict(intent)])
        return _Written({**intent, "seq": self.seq})

    def append(self, entry: Mapping[str, Any], *, reserve: bool = True) -> dict[str, Any]:
        """Keep a tap entry; it comes back with its provisional seq."""
        self.seq += 1
        self.records.append(["tap", self.seq, dict(entry)])
        return {**entry, "seq": self.seq}

    def take(self) -> list[list[Any]]:
        """The records of the tap just served (and forget them)."""
        records, self.records = self.records, []
        return records


@dataclasses.dataclass
class _Gate:
    processor: TapProcessor
    recorder: SpillRecorder
    location: int


class Share:
    """One process's share of the day: its validators (built on first use) and spill buffers."""

    def __init__(self, plan: DayPlan, scratch: Path, proc: int) -> None:
        self.plan = plan
        self.scratch = scratch
        self.proc = proc
        self.settings: ValidatorSettings = load_settings(CONFIG)
        self.rules: FareRules = load_fares(CONFIG, self.settings)
        self.ids = validator_ids(plan)
        self.templates: dict[int, TapProcessor] = {}  # by station: the engine as built
        self.gates: dict[int, _Gate] = {}
        self.buffers: dict[int, list[str]] = {}
        self.reader = EmulatedReader("contactless")
        self.rnd = random.Random(f"{plan.seed}:sam:{proc}")  # noqa: S311 - simulation
        self.taps = 0
        self.outcomes: dict[str, int] = {}

    def gate(self, number: int) -> _Gate:
        """Validator ``number``: the station's engine with its own id, SAM and recorder."""
        gate = self.gates.get(number)
        if gate is not None:
            return gate
        station = self.plan.station_of(number)
        location = self.plan.location(station)
        sam = software_sam(
            CONFIG / self.settings.keys, rng=self.rnd.randbytes, allow_simulation=True
        )
        template = self.templates.get(station)
        if template is None:
            rules = self.rules.model_copy(
                update={"station": self.rules.station.model_copy(update={"location_id": location})}
            )
            built = build_station(
                CONFIG, self.settings, reader=self.reader, sam=sam, journal=None, rules=rules
            )
            template = self.templates[station] = built.processor
        recorder = SpillRecorder()
        built_with = {f.name: getattr(template, f.name) for f in dataclasses.fields(template)}
        processor = TapProcessor(
            **{
                **{name: value for name, value in built_with.items() if not name.startswith("_")},
                "sam": sam,
                "validator_id": self.ids[number],
                "journal": recorder,
                "pending": {},
                "last_paid": {},
                "taps": 0,
                # The software SAM in this very process: a SAM thread per session halves the
                # simulation's rate and changes no APDU, MAC or decision.
                "overlap": False,
            }
        )
        gate = self.gates[number] = _Gate(processor, recorder, location)
        return gate

    def tap(
        self, card: CardEmulator, number: int, now: dt.datetime, fault: Fault | None
    ) -> Outcome:
        """Present ``card`` at validator ``number`` at ``now``; spill the tap's unit."""
        gate = self.gate(number)
        reader = self.reader
        reader.insert(card)
        if fault is not None:
            reader.inject(fault)
        connection = reader.connect()
        try:
            record: TapRecord = gate.processor.process(connection, TapContext(now, gate.location))
        finally:
            connection.close()
            reader.clear_faults()
            reader.remove()
        gate.processor.prefetch()  # between taps, as the gate loop does
        outcome = record.result.outcome
        self.taps += 1
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1
        unit = {"t": now.isoformat(), "v": number, "i": record.index, "r": gate.recorder.take()}
        station = self.plan.station_of(number)
        buffer = self.buffers.setdefault(station, [])
        buffer.append(json.dumps(unit, separators=(",", ":")))
        if len(buffer) >= FLUSH_UNITS:
            self.flush(station)
        return outcome

    def flush(self, station: int | None = None) -> None:
        """Append the buffered units of ``station`` (all stations: None) to the spill files."""
        for number in [station] if station is not None else list(self.buffers):
            lines = self.buffers.pop(number, [])
            if lines:
                path = spill_path(self.scratch, number, self.proc)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write("\n".join(lines) + "\n")


def spill_path(scratch: Path, station: int, proc: int) -> Path:
    """The scratch file of one station's units from one process."""
    return scratch / f"station-{station:04d}-{proc:02d}.jsonl"


def _profiles() -> list[tuple[CardProfile, int, int]]:
    """(profile, weight, number) of each top-level card profile (the PKI ones apart)."""
    paths = sorted((CONFIG / "cards").glob("*.yaml"))
    return [
        (load_profile(path), WEIGHTS.get(path.stem, DEFAULT_WEIGHT), number)
        for number, path in enumerate(paths)
    ]


def _card(profile: CardProfile, kind: int, index: int, rnd: random.Random) -> CardEmulator:
    """A card of ``profile`` with a serial of its own (its keys diversified from it) and, on
    the demo layout, records of its own: its holder id, its contracts' sale dates."""
    serial = profile.serial[:3] + bytes([0x40 + kind]) + index.to_bytes(4, "big")
    files = profile.files
    if profile.aid == DEMO_AID:
        files = [_personal(f, index, rnd) for f in files]
    card = profile.model_copy(update={"serial": serial, "files": files})
    return CardEmulator(card, rng=random.Random(rnd.getrandbits(64)).randbytes)  # noqa: S311


def _personal(file: FileProfile, index: int, rnd: random.Random) -> FileProfile:
    """A demo-layout file as one card holds it (calypso-data-model 3.3): the environment's
    holder id is the card's number, each contract was sold up to a year before the profile's
    sale date (its validity end unchanged). Real cards differ so; a replay that keeps decoded
    records by their bytes finds them again only when the same card taps again."""
    if file.name == "environment" and file.content and len(file.content[0]) >= 14:
        record = bytearray(file.content[0])
        record[10:14] = index.to_bytes(4, "big")
        return file.model_copy(update={"content": [bytes(record), *file.content[1:]]})
    if file.name == "contracts" and file.content:
        records = []
        for data in file.content:
            record = bytearray(data)
            if len(record) >= 6:
                sold = int.from_bytes(record[2:4], "big") - rnd.randint(0, 365)
                record[2:4] = max(sold, 0).to_bytes(2, "big")
            records.append(bytes(record))
        return file.model_copy(update={"content": records})
    return file


def _pki_cards(rnd: random.Random) -> list[CardEmulator]:
    """The PKI cards, once each (their certificate names their serial)."""
    paths = sorted((CONFIG / "cards" / "pki").glob("*.yaml"))
    return [
        CardEmulator(load_profile(path), rng=random.Random(rnd.getrandbits(64)).randbytes)  # noqa: S311
        for path in paths
    ]


def _trips(plan: DayPlan, rnd: random.Random) -> list[tuple[dt.datetime, int]]:
    """A card's trips: (time, validator number), in time order, at least ten minutes apart."""
    day = dt.datetime.fromisoformat(plan.day)
    slots = sorted(rnd.sample(range(330, 1410, 20), rnd.choice(TRIPS)))  # minutes of the day
    trips = []
    for minute in slots:
        when = day + dt.timedelta(minutes=minute, seconds=rnd.randint(0, 600))
        trips.append((when, rnd.choice(plan.gates(rnd.randrange(plan.stations)))))
    return trips


def _fault(plan: DayPlan, rnd: random.Random) -> Fault | None:
    """A card pulled out at a random APDU: anywhere in the tap half the time, else around the
    end of the session, where Close (unknown outcome) and the ratification (recovery at the
    next tap) are: at the 6th to 13th APDU, as the cards of config/cards answer."""
    if rnd.random() >= plan.tear_rate:
        return None
    kind = rnd.choice(_TEARS)
    return Fault(kind, rnd.randint(2, 14) if rnd.random() < 0.5 else rnd.randint(6, 13))


def _ride(share: Share, card: CardEmulator, rnd: random.Random, budget: int) -> None:
    """One card's day at the gates, up to ``budget`` taps of the share in all."""
    plan = share.plan
    for when, gate in _trips(plan, rnd):
        for _ in range(MAX_PRESENTATIONS):
            if share.taps >= budget:
                return
            outcome = share.tap(card, gate, when, _fault(plan, rnd))
            if outcome in (Outcome.CARD_LOST, Outcome.UNKNOWN):
                if rnd.random() < WALK_AWAY:
                    break  # an unknown tap is settled at this card's next trip, elsewhere
                when += dt.timedelta(seconds=rnd.randint(2, 12))
                gate = rnd.choice(plan.gates(plan.station_of(gate)))  # this gate or the next
                continue
            if rnd.random() < REPEAT_TAP and share.taps < budget:
                share.tap(card, gate, when + dt.timedelta(seconds=rnd.randint(3, 20)), None)
            break


def simulate_share(plan: DayPlan, scratch: Path, proc: int, procs: int) -> dict[str, Any]:
    """Serve process ``proc``'s share of the taps (cards proc, proc + procs, ...); its counts."""
    share = Share(plan, scratch, proc)
    budget = plan.taps // procs + (plan.taps % procs if proc == 0 else 0)
    profiles = _profiles()
    weights = [weight for _, weight, _ in profiles]
    cards = 0
    if proc == 0:
        for card in _pki_cards(random.Random(f"{plan.seed}:pki")):  # noqa: S311
            _ride(share, card, random.Random(f"{plan.seed}:pki:{card.serial.hex()}"), budget)  # noqa: S311
            cards += 1
    index = proc
    while share.taps < budget:
        rnd = random.Random(f"{plan.seed}:card:{index}")  # noqa: S311 - the same card each run
        profile, _, kind = rnd.choices(profiles, weights)[0]
        _ride(share, _card(profile, kind, index, rnd), rnd, budget)
        cards += 1
        index += procs
    share.flush()
    return {"taps": share.taps, "cards": cards, "outcomes": share.outcomes}
