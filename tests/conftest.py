# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: the shipped configuration, a station (software SAM + emulated readers)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from calypso.emulator.dispatch import CardEmulator
from readers.base import ApduHandler
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import TapResult
from validator.engine.session import Ratification
from yamlconfig import load_model

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
CARDS = CONFIG / "cards"
REFERENCE = ROOT.parent / "shared" / "reference"
DEMO_AID = bytes.fromhex("315449432E49434131")


def seeded(seed: int) -> random.Random:
    """A reproducible random source for card and SAM challenges."""
    return random.Random(seed)


def make_card(profile: str, seed: int = 7) -> CardEmulator:
    """A card emulator from one of the shipped profiles, with reproducible randoms."""
    return CardEmulator.from_profile(CARDS / f"{profile}.yaml", rng=seeded(seed).randbytes)


@dataclass
class Station:
    """A validator's hardware, emulated: a card reader, a SAM reader with the software SAM."""

    rules: FareRules
    sam: LegacySam
    card_reader: EmulatedReader = field(default_factory=lambda: EmulatedReader("card"))
    location_id: int = 101
    ratification: Ratification = Ratification.COMMAND

    def tap(self, card: ApduHandler, now: dt.datetime, faults: Iterable[Fault] = ()) -> TapResult:
        """Present ``card`` for one validation, with optional faults, then take it away."""
        self.card_reader.insert(card)
        for fault in faults:
            self.card_reader.inject(fault)
        try:
            return validate(
                self.card_reader.connect(),
                self.sam,
                self.rules,
                TapContext(now, self.location_id),
                aids=[DEMO_AID],
                ratification=self.ratification,
            )
        finally:
            self.card_reader.clear_faults()
            self.card_reader.remove()


@pytest.fixture
def rules() -> FareRules:
    """The shipped fare rules."""
    return load_model(CONFIG / "fares.yaml", FareRules)


@pytest.fixture
def software_sam() -> SoftwareSam:
    """The software SAM with the shipped simulation keys."""
    return SoftwareSam.from_keys(
        CONFIG / "keys.sim.yaml", seeded(99).randbytes, allow_simulation=True
    )


@pytest.fixture
def station(rules: FareRules, software_sam: SoftwareSam) -> Station:
    """A validator station at location 101 with the software SAM behind its APDUs."""
    sam_reader = EmulatedReader("sam")
    sam_reader.insert(software_sam)
    channel = ApduChannel(sam_reader.connect(), label="sam")
    return Station(rules, LegacySam(channel))


@pytest.fixture
def morning() -> dt.datetime:
    """A fixed time for taps: 2026-03-02 08:00."""
    return dt.datetime(2026, 3, 2, 8, 0)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A local Dask cluster of two single-thread worker processes, started by the test (one
    for each cluster test module that asks for it)."""
    distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address
