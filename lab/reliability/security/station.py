# SPDX-License-Identifier: Apache-2.0
"""Stations and cards for the security checks: simulation and production set-ups, forgers.

A station is the embedded default's hardware (software SAM, emulated reader) with a real
Journal and the TapProcessor configured by ValidatorSettings. The production set-up is built in
the work directory: a key file of non-simulation KVCs (79h), mode 0600, and settings without
simulation that authorise those keys only. ``CloseRewriter`` sits between the reader and a card
and rewrites the card's Close Secure Session answer, as a forger's card would.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, KeySlot, load_profile
from lab.paths import CONFIG
from readers.base import PassThroughHandler
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.settings import PkiSettings, ValidatorSettings, load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.writer import Journal
from yamlconfig import load_model

CARDS = CONFIG / "cards"
START = dt.datetime(2026, 3, 2, 8, 0)
PROD_KVC = 0x79
KEY_REFS = {"issuer": 0x21, "load": 0x27, "debit": 0x30}


@dataclass
class Station:
    """One validator: processor, journal, card reader, and its simulated clock."""

    processor: TapProcessor
    journal: Journal
    reader: EmulatedReader
    location: int
    now: dt.datetime = START

    def tap(self, card: object, *, gap_s: int = 300) -> TapRecord:
        """Present ``card`` (an ApduHandler) ``gap_s`` seconds after the last tap."""
        self.now += dt.timedelta(seconds=gap_s)
        self.reader.insert(card)  # type: ignore[arg-type]
        try:
            return self.processor.process(
                self.reader.connect(), TapContext(self.now, self.location)
            )
        finally:
            self.reader.remove()
            self.processor.prefetch()

    def close(self) -> None:
        """Release the journal."""
        self.journal.close()


def make_station(
    settings: ValidatorSettings,
    keys: Path,
    journal_dir: Path,
    *,
    seed: int = 1,
    journal_key: bytes | None = None,
) -> Station:
    """A station for ``settings`` with the software SAM of ``keys`` (simulation as set)."""
    rules = load_model(CONFIG / settings.fares, FareRules)
    rng = random.Random(seed)  # noqa: S311 - simulation randomness, by design
    sam = software_sam(keys, rng=rng.randbytes, allow_simulation=settings.simulation)
    journal = Journal(journal_dir, key=journal_key)
    journal.open()
    reader = EmulatedReader("contactless")
    built = build_station(
        CONFIG,
        settings,
        reader=reader,
        sam=sam,
        journal=journal,
        rules=rules,
    )
    built.processor.prefetch()
    return Station(built.processor, journal, reader, built.location)


def simulation_station(journal_dir: Path, *, journal_key: bytes | None = None) -> Station:
    """The embedded default: simulation settings and keys.sim.yaml."""
    return make_station(
        load_settings(CONFIG), CONFIG / "keys.sim.yaml", journal_dir, journal_key=journal_key
    )


def card(profile: str, seed: int, serial_low: int | None = None) -> CardEmulator:
    """A card of a shipped profile (optionally with its own serial)."""
    loaded = load_profile(CARDS / f"{profile}.yaml")
    if serial_low is not None:
        serial = loaded.serial[:4] + serial_low.to_bytes(4, "big")
        loaded = loaded.model_copy(update={"serial": serial})
    return CardEmulator(loaded, rng=random.Random(seed).randbytes)  # noqa: S311


@dataclass(frozen=True)
class Production:
    """A production set-up in the work directory: its key file, masters and settings."""

    key_file: Path
    masters: dict[str, bytes]
    settings: ValidatorSettings

    def card(self, profile: str, seed: int) -> CardEmulator:
        """A card of a shipped profile personalised with the production masters instead."""
        loaded: CardProfile = load_profile(CARDS / f"{profile}.yaml")
        slots = {
            name: KeySlot.model_validate(
                {"kif": f"{KEY_REFS[name]:02X}", "kvc": f"{PROD_KVC:02X}", "master": key.hex()}
            )
            for name, key in self.masters.items()
        }
        keys = loaded.keys.model_copy(update=slots)
        return CardEmulator(
            loaded.model_copy(update={"keys": keys}),
            rng=random.Random(seed).randbytes,  # noqa: S311
        )


def write_production_keys(directory: Path, seed: int, *, mode: int = 0o600) -> Production:
    """Generate a non-simulation key file (KVC 79h) with ``mode``; settings authorising it."""
    rnd = random.Random(seed)  # noqa: S311 - test keys of a throw-away set-up
    masters = {name: rnd.randbytes(16) for name in KEY_REFS}
    lines = ["# Generated by the reliability campaign: test production keys.", "keys:"]
    for name, key in masters.items():
        lines.append(
            f'  - {{kif: "{KEY_REFS[name]:02X}", kvc: "{PROD_KVC:02X}", algorithm: AES128, '
            f'role: {name}, key: "{key.hex().upper()}", label: {name}}}'
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "keys.prod.yaml"
    path.touch(mode=0o600)
    path.chmod(0o600)  # never readable by others, not even while it is written
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(mode)
    authorized = [f"{kif:02X}/{PROD_KVC:02X}" for kif in KEY_REFS.values()]
    settings = load_settings(CONFIG).model_copy(  # no test PKI outside simulation
        update={
            "simulation": False,
            "authorized_keys": authorized,
            "keys": str(path),
            "pki": PkiSettings(),
        }
    )
    return Production(path, masters, settings)


class CloseRewriter(PassThroughHandler[CardEmulator]):
    """An ApduHandler in front of a card that rewrites its Close Secure Session answers."""

    def __init__(self, inner: CardEmulator, rewrite: Callable[[bytes], bytes]) -> None:
        super().__init__(inner)
        self.rewrite = rewrite
        self.closes: list[bytes] = []  # the genuine Close answers, as the card gave them

    def process(self, apdu: bytes) -> bytes:
        """The card's answer, the Close answer rewritten."""
        answer = super().process(apdu)
        if len(apdu) >= 2 and apdu[1] == CardIns.CLOSE_SECURE_SESSION and len(answer) > 2:
            self.closes.append(answer)
            return self.rewrite(answer)
        return answer


def flip_bit(mac_length: int, variant: int) -> Callable[[bytes], bytes]:
    """A rewrite flipping one bit of the card MAC (the last ``mac_length`` data bytes)."""

    def rewrite(answer: bytes) -> bytes:
        data = bytearray(answer)
        byte = len(data) - 3 - (variant % mac_length)
        data[byte] ^= 1 << ((variant // mac_length) % 8)
        return bytes(data)

    return rewrite
