# SPDX-License-Identifier: Apache-2.0
"""The parsers under fuzz: one ``Target`` each, with its seed corpus and its expected errors.

A target's ``run`` feeds one input to the parser and then uses what came out the way the
validator does (the FCI's product type and buffer, a decoded record's decision, a loaded fare
file deciding a few taps...). Exceptions of the types in ``expected`` are the parser's
documented refusals; anything else escaping ``run`` is a violation. A few targets also check
a property (``PropertyError``): an EN 1545 record read in full encodes back bit for bit.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from calypso.card_image import CalypsoCard
from calypso.commands import CardIns
from calypso.commands.select import aid_matches, parse_select_application, select_application
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, ProfileError, load_profile
from calypso.en1545 import keyple_demo, tables
from calypso.en1545.codec import decode
from calypso.errors import CardCommandError, CardResponseError
from calypso.pki.errors import PkiError
from lab.paths import CONFIG
from lab.reliability.hostile.fuzz_pki import (
    REVOCATIONS,
    pki_answer,
    pki_answer_seeds,
    pki_certificates,
    shipped_root,
)
from readers.apdu import ApduError, CommandApdu, ResponseApdu, sw_name
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.settings import ValidatorSettings
from validator.app.station import build_station
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import CardState, FareRules, TapContext
from validator.engine.layouts.base import build_layouts
from validator.engine.layouts.demo import DemoLayout
from validator.engine.layouts.intercode import IntercodeLayout
from validator.engine.pki.files import RevocationFile, RootKeyFile
from validator.engine.session import SecureSession
from validator.engine.tap import TapProcessor
from validator.journal.writer import Journal
from validator.office.replay.line import Analyser, Options
from yamlconfig import ConfigError, load_model

SLOT = 29  # record size of both layouts
NOW = dt.datetime(2026, 3, 2, 8, 0)
# What a layout may raise on what a card answered: the procedure maps these to an outcome.
CARD_ERRORS = (CardCommandError, CardResponseError)


class PropertyError(Exception):
    """A parser broke a promise other than 'no unexpected exception' (e.g. a round trip)."""


@dataclass
class Target:
    """One parser: seed inputs, how to run one input, the errors it may raise."""

    name: str
    seeds: list[bytes]
    run: Callable[[bytes], object]
    expected: tuple[type[BaseException], ...] = ()
    text: bool = False  # inputs are YAML or JSON text: structure-aware mutations apply
    cost: float = 1.0  # relative cost per input (sizing: fewer inputs at SMOKE for dear ones)
    extra: dict[str, Any] = field(default_factory=dict)


# --- the seed corpus: real answers and records from emulated taps ----------------------------


def _station(workdir: Path, reader: EmulatedReader) -> tuple[TapProcessor, Journal]:
    settings = load_model(CONFIG / "validator.yaml", ValidatorSettings)
    rules = load_model(CONFIG / settings.fares, FareRules)
    sam = software_sam(
        CONFIG / settings.keys, rng=random.Random(1).randbytes, allow_simulation=True
    )
    journal = Journal(workdir / "seed-journal")
    journal.open()
    station = build_station(CONFIG, settings, reader=reader, sam=sam, journal=journal, rules=rules)
    return station.processor, journal


def profiles() -> list[Path]:
    """Every shipped card profile."""
    return sorted((CONFIG / "cards").glob("*.yaml")) + sorted(
        (CONFIG / "cards" / "other").glob("*.yaml")
    )


@dataclass
class Corpus:
    """Seeds taken from real emulated taps of the demo fleet (one journal, its traces)."""

    commands: list[bytes] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    selects: list[bytes] = field(default_factory=list)
    journal_lines: list[bytes] = field(default_factory=list)

    @classmethod
    def build(cls, workdir: Path) -> Corpus:
        """Tap every demo card (the PKI ones too) a few times and keep the traces."""
        reader = EmulatedReader("card")
        processor, journal = _station(workdir, reader)
        corpus = cls()
        now = NOW
        cards = CONFIG / "cards"
        for path in sorted(cards.glob("*.yaml")) + sorted(cards.glob("pki/*.yaml")):
            card = CardEmulator.from_profile(path, rng=random.Random(2).randbytes)
            for _ in range(2):
                now += dt.timedelta(minutes=7)
                reader.insert(card)
                record = processor.process(reader.connect(), TapContext(now, 101))
                reader.remove()
                for ex in (*record.result.card_trace, *record.result.sam_trace):
                    corpus.commands.append(ex.command)
                    corpus.responses.append(ex.response)
                    if len(ex.command) > 1 and ex.command[1] == CardIns.SELECT:
                        corpus.selects.append(ex.response)
        for path in profiles():
            card = CardEmulator.from_profile(path, rng=random.Random(3).randbytes)
            card.power_on()
            aid = card.profile.aid
            raw = card.process(bytes(select_application(aid)))
            corpus.selects.append(raw)
        journal.close()
        for name in sorted((workdir / "seed-journal").glob("*.jsonl")):
            corpus.journal_lines.extend(name.read_bytes().splitlines())
        return corpus


def _slots(data: bytes, count: int) -> list[bytes]:
    return [data[i * SLOT : (i + 1) * SLOT] for i in range(count)]


def _records_seeds(names: list[str], files: list[tuple[int, int]]) -> list[bytes]:
    seeds = []
    for name in names:
        card = CardEmulator.from_profile(CONFIG / "cards" / f"{name}.yaml")
        seeds.append(
            b"".join(card.read_record(sfi, n)[:SLOT].ljust(SLOT, b"\x00") for sfi, n in files)
        )
    return seeds


# --- record decoding through the layouts, with a session that serves the fuzzed records -------


class _Records:
    """A stand-in session serving fixed records to a layout's reads."""

    def __init__(self, records: Mapping[tuple[int, int], bytes]) -> None:
        self.records = records

    def read_records(
        self, sfi: int, record: int, count: int = 1, *, record_size: int = SLOT
    ) -> dict[int, bytes]:
        """The records asked for that exist (as a card answers a multiple read)."""
        return {
            n: self.records[(sfi, n)]
            for n in range(record, record + count)
            if (sfi, n) in self.records
        }

    def read_counters(
        self, sfi: int, *, record_size: int = SLOT, count: int | None = None
    ) -> dict[int, int]:
        """Counters of the counters record, 3 bytes each (the first ``count`` when given)."""
        data = self.records.get((sfi, 1), b"")
        if count is not None:
            data = data[: 3 * count]
        return {
            n + 1: int.from_bytes(data[3 * n : 3 * n + 3], "big") for n in range(len(data) // 3)
        }


@dataclass(frozen=True)
class _Image:
    serial: bytes
    ratified: bool | None
    records: dict[int, dict[int, bytes]]

    def record(self, sfi: int, number: int) -> bytes | None:
        """A record as the session read it, if it did."""
        return self.records.get(sfi, {}).get(number)


_DEMO_FILES = [(7, 1), (8, 1), (8, 2), (8, 3), (9, 1), (9, 2), (9, 3), (9, 4), (0x19, 1)]
_INTERCODE_FILES = [
    (7, 1),
    (8, 1),
    (8, 2),
    (8, 3),
    (0x1E, 1),
    (9, 1),
    (9, 2),
    (9, 3),
    (9, 4),
    (0x19, 1),
]


def _decide_records(
    layout: DemoLayout | IntercodeLayout, files: list[tuple[int, int]], rules: FareRules
) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        slots = _slots(data, len(files))
        read = {f: s for f, s in zip(files, slots, strict=True) if s}
        session = _Records(read)
        records: dict[int, dict[int, bytes]] = {}
        for (sfi, number), content in read.items():
            records.setdefault(sfi, {})[number] = content
        image = _Image(b"\x00\x00\x00\x00\xc0\xff\xee\x02", bool(data[:1] and data[0] & 1), records)
        fake, card = cast(SecureSession, session), cast(CalypsoCard, image)
        # Head and titles both: every decoder sees the input, whatever decide_early says.
        state = layout.read_titles(fake, card, layout.read_head(fake, card, slots[0]), rules)
        for minutes in (0, 1, 600):
            decision = fares.decide(
                state, TapContext(NOW + dt.timedelta(minutes=minutes), 101), rules
            )
            layout.writes(state, decision, records)  # what the layout would write to the card
        return state

    return run


# --- the targets ---------------------------------------------------------------------------


def _response(data: bytes) -> object:
    response = ResponseApdu.from_bytes(data)
    return sw_name(response.sw), bytes(response) == data, response.hex()


def _command(data: bytes) -> object:
    command = CommandApdu.from_bytes(data)
    again = CommandApdu.from_bytes(bytes(command))
    if len(data) >= 5 and again != command:
        raise PropertyError(f"{data.hex()} re-encodes as {bytes(command).hex()}")
    return command.hex()


def _fci(data: bytes) -> object:
    if len(data) < 2:
        return None  # not an answer at all (the reader reports that, apdu-response fuzzes it)
    response = ResponseApdu.from_bytes(data)
    info = parse_select_application(response, None)
    startup = info.startup
    # What the procedure and the session engine read from the FCI.
    return (
        aid_matches(info.df_name[:9], info.df_name),
        startup.product_type,
        startup.extended_mode,
        startup.has_stored_value,
        startup.card_class,
        startup.payload_capacity,
        startup.session_buffer_bytes,
        startup.session_buffer_commands,
    )


_EN1545 = [*tables.STRUCTURES.values(), *keyple_demo.STRUCTURES.values()]


def _en1545(data: bytes) -> object:
    if not data:
        return None
    structure = _EN1545[data[0] % len(_EN1545)]
    record = data[1:]
    decoded = decode(structure, record)
    decoded.to_json()
    list(decoded.leaves())
    if decoded.truncated is None and decoded.encode() != record:
        raise PropertyError(f"{structure.name} read in full does not encode back")
    return decoded


def _yaml(
    model: type[Any],
    workdir: Path,
    use: Callable[[Any], object],
    error: type[ConfigError] = ConfigError,
) -> Callable[[bytes], object]:
    path = workdir / "fuzz.yaml"

    def run(data: bytes) -> object:
        path.write_bytes(data)
        loaded = load_model(path, model, error=error)
        return use(loaded)

    return run


def _states() -> list[CardState]:
    """Card states of the demo fleet, decoded by the demo layout (for fare files to decide)."""
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    states = []
    for seed in _records_seeds(["multi_trip", "season_pass", "sv_purse", "expired"], _DEMO_FILES):
        run = _decide_records(DemoLayout(), _DEMO_FILES, rules)
        states.append(cast(CardState, run(seed)))
    return states


def _use_fares(states: list[CardState]) -> Callable[[FareRules], object]:
    def use(rules: FareRules) -> object:
        station = rules.station.location_id
        out = []
        for state in states:
            for when in (NOW, NOW + dt.timedelta(hours=10)):
                decision = fares.decide(state, TapContext(when, station), rules)
                fares.wants_purse(decision, rules, True)
                out.append(decision)
        return out

    return use


def _use_settings(settings: ValidatorSettings) -> object:
    """What start-up does with validated settings."""
    return settings.aid_bytes(), settings.key_policy(), build_layouts(settings.layouts)


def _use_profile(profile: CardProfile) -> object:
    card = CardEmulator(profile, rng=random.Random(0).randbytes)
    card.power_on()
    return card.snapshot()


def _journal(analyser: Analyser) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        return analyser.batch([data], [("fuzz.jsonl", 1)])

    return run


def targets(workdir: Path) -> list[Target]:
    """Every fuzz target with its seeds."""
    corpus = Corpus.build(workdir)
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    root = shipped_root()
    analyser = Analyser(
        Options(
            rules=rules,
            keys=CONFIG / "keys.sim.yaml",
            layouts=(("A0000004040125090101", "intercode"),),
            pki_roots=(root,),
        )
    )
    pki_card = load_profile(CONFIG / "cards" / "pki" / "test_pki_multi_trip.yaml").pki
    assert pki_card is not None  # noqa: S101 - the shipped PKI card has its section
    certificate_seeds = [b"\x00" + pki_card.card_certificate, b"\x01" + pki_card.ca_certificate]
    # First byte: which structure reads the record; then a real record of the Intercode card.
    intercode_card = CardEmulator.from_profile(CONFIG / "cards" / "intercode.yaml")
    en1545_seeds = [
        bytes((index,)) + intercode_card.read_record(sfi, n)
        for index in range(len(_EN1545))
        for sfi, n in _INTERCODE_FILES
    ]
    yaml_dir = workdir / "yaml"
    yaml_dir.mkdir(parents=True, exist_ok=True)
    return [
        Target("apdu-response", corpus.responses, _response, (ValueError,)),
        Target("apdu-command", corpus.commands, _command, (ValueError,)),
        Target(
            "fci",
            corpus.selects,
            _fci,
            (CardCommandError, CardResponseError, ApduError),
        ),
        Target(
            "records-demo",
            _records_seeds(
                ["multi_trip", "season_pass", "sv_purse", "expired", "empty"], _DEMO_FILES
            ),
            _decide_records(DemoLayout(), _DEMO_FILES, rules),
            CARD_ERRORS,
            cost=3,
        ),
        Target(
            "records-intercode",
            _records_seeds(["intercode"], _INTERCODE_FILES),
            _decide_records(IntercodeLayout(), _INTERCODE_FILES, rules),
            CARD_ERRORS,
            cost=3,
        ),
        Target("en1545", en1545_seeds, _en1545),
        Target(
            "yaml-settings",
            [(CONFIG / "validator.yaml").read_bytes()],
            _yaml(ValidatorSettings, yaml_dir, _use_settings),
            (ConfigError,),
            text=True,
            cost=10,
        ),
        Target(
            "yaml-fares",
            [(CONFIG / "fares.yaml").read_bytes()],
            _yaml(FareRules, yaml_dir, _use_fares(_states())),
            (ConfigError,),
            text=True,
            cost=20,
        ),
        Target(
            "yaml-card-profile",
            [p.read_bytes() for p in profiles()],
            _yaml(CardProfile, yaml_dir, _use_profile, ProfileError),
            (ProfileError,),
            text=True,
            cost=20,
        ),
        Target("journal-line", corpus.journal_lines, _journal(analyser), (), text=True, cost=10),
        Target("pki-certificates", certificate_seeds, pki_certificates(root), (PkiError,), cost=3),
        Target(
            "pki-answers",
            pki_answer_seeds(corpus.commands, corpus.responses),
            pki_answer,
            (CardCommandError, CardResponseError, ApduError, ValueError),
        ),
        Target(
            "yaml-pki-root",
            [(CONFIG / "pki" / "test_pki_root.yaml").read_bytes()],
            _yaml(RootKeyFile, yaml_dir, lambda loaded: loaded.root()),
            (ConfigError,),
            text=True,
            cost=5,
        ),
        Target(
            "yaml-pki-revocations",
            [REVOCATIONS],
            _yaml(RevocationFile, yaml_dir, lambda loaded: loaded.revocations()),
            (ConfigError,),
            text=True,
            cost=5,
        ),
    ]
