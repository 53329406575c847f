# SPDX-License-Identifier: Apache-2.0
"""The two Intercode network profiles end to end in process, with the shipped settings: grant,
deny, expiry and recovery (the Navigo-like card, 250901; the OùRA-like card, 250502)."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import CONFIG, Station, make_card

from calypso.emulator.dispatch import CardEmulator
from calypso.en1545 import decode
from calypso.en1545.tables import CONTRACT_LIST, EVENT
from calypso.layouts.intercode import SFI_CONTRACT_LIST, SFI_COUNTERS, SFI_EVENTS
from readers.emulated import Fault, FaultKind
from validator.app.settings import load_settings
from validator.engine.attempt import validate
from validator.engine.fares.decide import TapContext
from validator.engine.layouts.base import build_layouts
from validator.engine.outcome import Outcome, TapResult

SETTINGS = load_settings(CONFIG)
MORNING = dt.datetime(2026, 3, 2, 8, 0)


def tap(
    station: Station,
    card: CardEmulator,
    now: dt.datetime,
    *,
    location: int = 101,
    fault: Fault | None = None,
) -> TapResult:
    """One tap with the shipped settings' AIDs and layouts."""
    station.card_reader.insert(card)
    if fault is not None:
        station.card_reader.inject(fault)
    try:
        return validate(
            station.card_reader.connect(),
            station.sam,
            station.rules,
            TapContext(now, location),
            aids=SETTINGS.aid_bytes(),
            layouts=build_layouts(SETTINGS.layouts),
        )
    finally:
        station.card_reader.clear_faults()
        station.card_reader.remove()


def listed(card: CardEmulator) -> list[int]:
    """The contract pointers of the card's contract list, in order."""
    best = decode(CONTRACT_LIST, card.read_record(SFI_CONTRACT_LIST, 1))
    return [entry["BestContractPointer"] for entry in best.values.get("BestContracts", [])]


def newest_event(card: CardEmulator) -> dict[str, object]:
    """The newest event, readable."""
    fields: dict[str, object] = decode(EVENT, card.read_record(SFI_EVENTS, 1)).to_json()["fields"]
    return fields


class TestOura:
    """The OùRA-like card: common-format contracts (46h, 20h), 16-bit tariffs, network 250502."""

    def test_grant_uses_the_16_bit_ticket(self, station: Station) -> None:
        """The expired pass is retired, next year's pass skipped (not retired), and the
        6601h ticket pays one journey: one unit of counter 2, an event for network 250502."""
        card = make_card("oura")
        result = tap(station, card, MORNING)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.layout == "intercode" and result.mac_verified
        assert (result.product, result.debit, result.remaining) == (
            "OùRA ticket (billet tarif normal)",
            1,
            9,
        )
        assert card.counter(SFI_COUNTERS, 2) == 9
        assert listed(card) == [3, 2]
        event = newest_event(card)
        assert (event["EventNetworkId"], event["EventContractPointer"]) == ("250502", 2)

    def test_deny_anti_passback_then_grant(self, station: Station) -> None:
        """Again a minute later: refused, the card unchanged; half an hour later: paid."""
        card = make_card("oura")
        assert tap(station, card, MORNING).outcome is Outcome.GRANTED
        files = card.snapshot().files
        again = tap(station, card, MORNING + dt.timedelta(minutes=1))
        assert (again.outcome, again.reason) == (Outcome.DENIED, "anti_passback")
        assert card.snapshot().files == files
        later = tap(station, card, MORNING + dt.timedelta(minutes=30))
        assert later.outcome is Outcome.GRANTED and later.remaining == 8

    def test_expiry_and_start(self, station: Station) -> None:
        """Before the ticket's first day at 05:00 nothing is valid; once the ten journeys are
        spent the card is refused, and next year the yearly pass opens the gate."""
        card = make_card("oura")
        early = tap(station, card, dt.datetime(2026, 1, 1, 4, 30))
        assert (early.outcome, early.reason) == (Outcome.DENIED, "title_not_yet_valid")
        for hour in range(10):
            assert tap(station, card, MORNING + dt.timedelta(hours=hour)).debit == 1
        spent = tap(station, card, MORNING + dt.timedelta(hours=11))
        assert (spent.outcome, spent.reason) == (Outcome.DENIED, "no_trips_left")
        next_year = tap(station, card, dt.datetime(2027, 2, 1, 8, 0))
        assert (next_year.reason, next_year.product) == ("season_pass_valid", "OùRA pass")

    def test_recovery_after_a_lost_ratification(self, station: Station) -> None:
        """Torn before the ratification command: paid once, recovered at the next tap."""
        twin = make_card("oura")
        apdus = tap(station, twin, MORNING).card_apdus
        card = make_card("oura")
        torn = tap(station, card, MORNING, fault=Fault(FaultKind.REMOVED_BEFORE, apdus))
        assert torn.outcome is Outcome.GRANTED and torn.mac_verified
        assert card.counter(SFI_COUNTERS, 2) == 9 and not card.ratified
        again = tap(station, card, MORNING + dt.timedelta(seconds=40))
        assert (again.outcome, again.debit) == (Outcome.RECOVERED, 0)
        assert card.counter(SFI_COUNTERS, 2) == 9 and card.ratified


class TestNavigoLike:
    """The Navigo-like card (its 16-bit common-format value: test_intercode_layout)."""

    def test_expiry_retires_the_pass_and_recovery_completes(self, station: Station) -> None:
        """The expired pass leaves the list; a lost ratification is recovered, paid once."""
        twin = make_card("intercode")
        apdus = tap(station, twin, MORNING).card_apdus
        card = make_card("intercode")
        torn = tap(station, card, MORNING, fault=Fault(FaultKind.REMOVED_BEFORE, apdus))
        assert torn.outcome is Outcome.GRANTED and 3 not in listed(card)
        assert card.counter(SFI_COUNTERS, 1) >> 18 == 9 and not card.ratified
        again = tap(station, card, MORNING + dt.timedelta(seconds=40))
        assert (again.outcome, again.debit) == (Outcome.RECOVERED, 0)
        assert card.counter(SFI_COUNTERS, 1) >> 18 == 9
        refused = tap(station, card, MORNING + dt.timedelta(minutes=1), location=102)
        assert refused.reason == "anti_passback"


@pytest.mark.parametrize("profile", ["intercode", "oura"])
def test_a_card_past_its_environment_is_refused(station: Station, profile: str) -> None:
    """In 2036 both cards' environments have ended: denied, nothing read past the event."""
    card = make_card(profile)
    result = tap(station, card, dt.datetime(2036, 1, 2, 8, 0))
    assert (result.outcome, result.reason) == (Outcome.DENIED, "environment_expired")
