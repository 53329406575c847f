# SPDX-License-Identifier: Apache-2.0
"""Full validations of the Navigo-like Intercode card through the procedure (fares unchanged)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from conftest import CARDS, DEMO_AID, Station, seeded

from calypso.emulator.dispatch import CardEmulator
from calypso.en1545 import decode
from calypso.en1545.tables import CONTRACT_LIST, EVENT
from calypso.layouts.intercode import (
    SFI_CONTRACT_LIST,
    SFI_COUNTERS,
    SFI_EVENTS,
    decode_contract_list,
)
from validator.cli.main import main
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.layouts.base import build_layouts
from validator.engine.layouts.intercode import IntercodeLayout
from validator.engine.outcome import Outcome, TapResult

NAVIGO_AID = bytes.fromhex("A0000004040125090101")
JOURNEY = 1 << 18  # one carnet journey in the 24-bit counter (section 2.6)


def intercode_card(seed: int = 7) -> CardEmulator:
    """The shipped Navigo-like card."""
    return CardEmulator.from_profile(CARDS / "intercode.yaml", rng=seeded(seed).randbytes)


def tap(
    station: Station,
    card: CardEmulator,
    now: dt.datetime,
    *,
    location: int = 101,
    rules: FareRules | None = None,
) -> TapResult:
    """One tap with the demo and Intercode AIDs configured, the Intercode layout by AID."""
    station.card_reader.insert(card)
    try:
        return validate(
            station.card_reader.connect(),
            station.sam,
            rules or station.rules,
            TapContext(now, location),
            aids=[DEMO_AID, NAVIGO_AID],
            layouts={NAVIGO_AID: IntercodeLayout()},
        )
    finally:
        station.card_reader.remove()


def newest_event(card: CardEmulator) -> dict[str, object]:
    """The newest event record, decoded to readable values."""
    fields: dict[str, object] = decode(EVENT, card.read_record(SFI_EVENTS, 1)).to_json()["fields"]
    return fields


class TestIntercodeValidation:
    """The carnet is used, the event is an Intercode event, anti-passback holds."""

    def test_first_tap_debits_the_carnet_and_writes_the_event(
        self, station: Station, morning: dt.datetime
    ) -> None:
        """Expired pass skipped, carnet 10 -> 9, event with every written field."""
        card = intercode_card()
        before = card.counter(SFI_COUNTERS, 1)
        result = tap(station, card, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.mac_verified
        assert (result.reason, result.debit, result.remaining) == ("trip_debited", 1, 9)
        assert card.counter(SFI_COUNTERS, 1) == before - JOURNEY
        assert card.counter(SFI_COUNTERS, 1) >> 18 == 9
        assert newest_event(card) == {
            "EventDateStamp": "2026-03-02",
            "EventTimeStamp": "08:00",
            "EventNetworkId": "250901",
            "EventCode": 0x31,  # metro, entry
            "EventResult": 0,
            "EventServiceProvider": 3,
            "EventLocationId": 101,
            "EventContractPointer": 1,
        }
        # The previous event moved down the cyclic log.
        assert decode(EVENT, card.read_record(SFI_EVENTS, 2)).get("EventLocationId") == 201

    def test_expired_contract_leaves_the_contract_list(
        self, station: Station, morning: dt.datetime
    ) -> None:
        """The expired monthly pass (contract 3) is dropped from the best contracts."""
        card = intercode_card()
        listed = decode_contract_list(card.read_record(SFI_CONTRACT_LIST, 1))
        assert [b.pointer for b in listed] == [3, 1, 4, 2]
        tap(station, card, morning)
        listed_after = decode(CONTRACT_LIST, card.read_record(SFI_CONTRACT_LIST, 1))
        assert [e["BestContractPointer"] for e in listed_after.values["BestContracts"]] == [
            1,
            4,
            2,
        ]

    def test_second_tap_inside_anti_passback_is_denied(
        self, station: Station, morning: dt.datetime
    ) -> None:
        """Tapping again a minute later is refused and nothing on the card changes."""
        card = intercode_card()
        assert tap(station, card, morning).outcome is Outcome.GRANTED
        files = card.snapshot().files
        again = tap(station, card, morning + dt.timedelta(minutes=1))
        assert (again.outcome, again.reason) == (Outcome.DENIED, "anti_passback")
        assert card.snapshot().files == files
        later = tap(station, card, morning + dt.timedelta(minutes=30))
        assert later.outcome is Outcome.GRANTED and later.remaining == 8

    def test_interchange_entry_is_written_as_transition_6(
        self, station: Station, morning: dt.datetime
    ) -> None:
        """A paid entry at 101 then an entry at 201 inside the transfer window is free."""
        card = intercode_card()
        tap(station, card, morning)
        counter = card.counter(SFI_COUNTERS, 1)
        result = tap(station, card, morning + dt.timedelta(minutes=20), location=201)
        assert (result.outcome, result.reason, result.debit) == (Outcome.GRANTED, "transfer", 0)
        assert card.counter(SFI_COUNTERS, 1) == counter
        event = newest_event(card)
        assert event["EventCode"] == 0x36  # metro, interchange entry
        assert event["EventLocationId"] == 201
        # An interchange never opens another one: the next entry elsewhere pays.
        paid = tap(station, card, morning + dt.timedelta(minutes=40), location=102)
        assert paid.reason == "trip_debited"

    def test_stored_value_when_the_carnet_is_used_up(
        self, station: Station, morning: dt.datetime
    ) -> None:
        """After 10 journeys the common-format contract 4 (the 16-bit tariff 5001h, network
        250901's "Navigo value") pays 190 from counter 4, a plain 24-bit decrement."""
        card = intercode_card()
        for n in range(10):
            assert tap(station, card, morning + n * dt.timedelta(hours=1)).outcome is (
                Outcome.GRANTED
            )
        assert card.counter(SFI_COUNTERS, 1) >> 18 == 0
        units = card.counter(SFI_COUNTERS, 4)
        result = tap(station, card, morning + dt.timedelta(hours=11))
        assert (result.reason, result.product, result.debit) == (
            "value_debited",
            "Navigo value",
            190,
        ), result.explanation
        assert card.counter(SFI_COUNTERS, 4) == units - 190
        assert newest_event(card)["EventContractPointer"] == 4

    def test_contract_zones_are_checked(
        self, station: Station, rules: FareRules, morning: dt.datetime
    ) -> None:
        """At a zone 3 station the carnet (zones 1-2) is skipped for stored value."""
        zone3 = rules.model_copy(update={"station": rules.station.model_copy(update={"zone": 3})})
        card = intercode_card()
        result = tap(station, card, morning, rules=zone3)
        assert result.reason == "value_debited", result.explanation
        assert card.counter(SFI_COUNTERS, 1) >> 18 == 10


class TestLayoutRegistry:
    """The settings name the layout by AID."""

    def test_build_layouts_knows_intercode(self) -> None:
        """``layouts: {AID: intercode}`` gives an IntercodeLayout for that AID."""
        layouts = build_layouts({NAVIGO_AID.hex(): "intercode"})
        assert isinstance(layouts[NAVIGO_AID], IntercodeLayout)


class TestDemoFleet:
    """``validator demo`` mixes both layouts."""

    def test_demo_validates_the_intercode_card(self, tmp_path: Path) -> None:
        """With a demo card and the Navigo-like card in the fleet, both are served and granted."""
        config = tmp_path / "config"
        shutil.copytree(CARDS.parent, config)
        for profile in (config / "cards").rglob("*.yaml"):
            if profile.name not in ("intercode.yaml", "multi_trip.yaml"):
                profile.unlink()
        result = CliRunner().invoke(
            main, ["demo", "--taps", "20", "--seed", "1", "--json", "--config", str(config)]
        )
        assert result.exit_code == 0, result.output
        taps = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
        granted = {t["card"][:12] for t in taps if t["outcome"] == "granted"}
        assert granted == {"00000000AB1D", "00000000C0FF"}  # both layouts
