# SPDX-License-Identifier: Apache-2.0
"""The two Intercode network profiles validated through pyscard -> pcscd -> vpcd with the
shipped settings: grant, deny, expiry and recovery, each card ending as its in-process twin."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from calypso.emulator.dispatch import CardEmulator
from calypso.en1545 import decode
from calypso.en1545.tables import CONTRACT_LIST
from lab.pcscd import CARD_READER, SAM_READER, InsertCard, PrivatePcscd
from readers.channel import ApduChannel
from readers.pcsc import PcscConnection, PcscReader
from readers.vpcd import VpcdCard
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.settings import ValidatorSettings, load_settings
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.layouts.base import build_layouts
from validator.engine.outcome import Outcome, TapResult

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[2] / "config"
MORNING = dt.datetime(2026, 3, 2, 8, 0)
SFI_CONTRACT_LIST, SFI_COUNTERS = 0x1E, 0x19
# Per profile: the counter its first granted tap debits, in the counter's own units, and the
# contract list once the expired pass has been retired.
PROFILES = {
    "intercode": {"counter": 1, "units": 1 << 18, "listed": [1, 4, 2]},
    "oura": {"counter": 2, "units": 1, "listed": [3, 2]},
}


def card(profile: str, seed: int = 7) -> CardEmulator:
    """A shipped profile with reproducible challenges."""
    path = CONFIG / "cards" / f"{profile}.yaml"
    return CardEmulator.from_profile(path, rng=random.Random(seed).randbytes)


def listed(emulator: CardEmulator) -> list[int]:
    """The pointers of the contract list, in order."""
    best = decode(CONTRACT_LIST, emulator.read_record(SFI_CONTRACT_LIST, 1))
    return [entry["BestContractPointer"] for entry in best.values.get("BestContracts", [])]


@dataclass
class NetworkStation:
    """The shipped settings' AIDs and layouts, the card and the SAM behind pcscd."""

    settings: ValidatorSettings
    rules: FareRules
    card_reader: PcscReader
    card_slot: VpcdCard
    sam: LegacySam

    def tap(
        self, emulator: CardEmulator, now: dt.datetime, *, tear_at: int | None = None
    ) -> TapResult:
        """Insert the card, validate through pcscd, take it away."""
        self.card_slot.insert(emulator)
        if tear_at is not None:
            self.card_slot.tear_on_next_apdu(after=tear_at - 1)
        connection = self.card_reader.wait_for_card(5.0)
        assert connection is not None, "pcscd never reported the card"
        try:
            return validate(
                connection,
                self.sam,
                self.rules,
                TapContext(now, 101),
                aids=self.settings.aid_bytes(),
                layouts=build_layouts(self.settings.layouts),
            )
        finally:
            connection.close()
            self.card_slot.remove()
            assert self.card_reader.wait_for_removal(5.0)


@pytest.fixture
def network_station(
    pcscd: PrivatePcscd, insert_card: InsertCard, rules: FareRules
) -> Iterator[NetworkStation]:
    """The software SAM in the SAM reader, an empty card reader, both through pyscard."""
    keys = CONFIG / "keys.sim.yaml"
    software_sam = SoftwareSam.from_keys(keys, random.Random(98).randbytes, allow_simulation=True)
    insert_card(software_sam, SAM_READER)
    sam_reader = PcscReader(re.escape(SAM_READER), timeout=3.0)
    sam_connection = sam_reader.wait_for_card(5.0)
    assert isinstance(sam_connection, PcscConnection)
    card_reader = PcscReader(re.escape(CARD_READER), timeout=3.0)
    slot = VpcdCard(pcscd.ports[CARD_READER])
    settings = load_settings(CONFIG)
    sam = LegacySam(ApduChannel(sam_connection, label="sam"))
    yield NetworkStation(settings, rules, card_reader, slot, sam)
    slot.remove()
    sam_connection.close()
    sam_reader.close()
    card_reader.close()


def twin_tap(station: Any, emulator: CardEmulator, now: dt.datetime) -> TapResult:
    """The same tap in process (emulated reader), with the shipped settings."""
    settings = load_settings(CONFIG)
    station.card_reader.insert(emulator)
    try:
        return validate(
            station.card_reader.connect(),
            station.sam,
            station.rules,
            TapContext(now, 101),
            aids=settings.aid_bytes(),
            layouts=build_layouts(settings.layouts),
        )
    finally:
        station.card_reader.remove()


@pytest.mark.parametrize("profile", list(PROFILES))
class TestNetworkProfilesThroughPcscd:
    """Each Intercode network profile through the real PC/SC stack, as in process."""

    def test_grant_expiry_then_deny(
        self, network_station: NetworkStation, station: Any, profile: str
    ) -> None:
        """Granted with its counter debited once and the expired pass retired; a minute later
        refused (anti-passback) without a byte changed; the card ends as its twin in process."""
        expected = PROFILES[profile]
        real, twin = card(profile), card(profile)
        before = real.counter(SFI_COUNTERS, expected["counter"])
        granted = network_station.tap(real, MORNING)
        assert granted.outcome is Outcome.GRANTED and granted.mac_verified, granted.explanation
        assert granted.layout == "intercode"
        assert before - real.counter(SFI_COUNTERS, expected["counter"]) == expected["units"]
        assert listed(real) == expected["listed"]
        files = real.snapshot().files
        denied = network_station.tap(real, MORNING + dt.timedelta(minutes=1))
        assert (denied.outcome, denied.reason) == (Outcome.DENIED, "anti_passback")
        assert real.snapshot().files == files
        twin_tap(station, twin, MORNING)
        twin_tap(station, twin, MORNING + dt.timedelta(minutes=1))
        assert real.snapshot() == twin.snapshot()

    def test_recovery_of_an_unanswered_close(
        self, network_station: NetworkStation, profile: str
    ) -> None:
        """Torn on the Close (executed, unanswered): unknown; at the next tap, recovered
        without a new debit; the card paid once."""
        expected = PROFILES[profile]
        apdus = network_station.tap(card(profile), MORNING).card_apdus
        real = card(profile)
        before = real.counter(SFI_COUNTERS, expected["counter"])
        torn = network_station.tap(real, MORNING, tear_at=apdus - 1)  # the Close
        assert torn.outcome is Outcome.UNKNOWN and not torn.outcome.opens_gate
        again = network_station.tap(real, MORNING + dt.timedelta(seconds=40))
        assert (again.outcome, again.debit) == (Outcome.RECOVERED, 0)
        assert again.mac_verified and real.ratified
        assert before - real.counter(SFI_COUNTERS, expected["counter"]) == expected["units"]
