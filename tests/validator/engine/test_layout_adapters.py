# SPDX-License-Identifier: Apache-2.0
"""The layout adapters alone: a card's records into the ticketing model, a decision back."""

from __future__ import annotations

import datetime as dt
from typing import cast

import pytest
from conftest import make_card

from calypso.card_image import CalypsoCard
from calypso.emulator.dispatch import CardEmulator
from calypso.en1545 import decode
from calypso.en1545.tables import CONTRACT_LIST, EVENT
from calypso.layouts import demo as demo_records
from calypso.layouts import intercode as intercode_records
from validator.engine.fares.decide import Decision, FareRules, Reason, Verdict
from validator.engine.layouts.demo import DemoLayout, candidate_contracts
from validator.engine.layouts.demo import validation as demo_validation
from validator.engine.layouts.intercode import IntercodeLayout
from validator.engine.layouts.intercode import validation as intercode_validation
from validator.engine.layouts.writes import AppendRecord, Decrease, SvDebit, UpdateRecord
from validator.engine.session import SecureSession
from validator.engine.ticketing.model import (
    CardState,
    CounterUnit,
    Debit,
    TitleKind,
    TitleStatus,
    Transition,
    Validation,
)

NOW = dt.datetime(2026, 3, 2, 8, 0)


class Records:
    """A session that serves a card's records as read, and an image that keeps them."""

    def __init__(self, card: CardEmulator, counters_size: int = 27) -> None:
        self.card = card
        self.records: dict[int, dict[int, bytes]] = {}
        self.serial = bytes.fromhex("00000000C0FFEE02")
        self.ratified = True
        self.counters_size = counters_size

    def read_records(
        self, sfi: int, record: int, count: int = 1, *, record_size: int = 29
    ) -> dict[int, bytes]:
        """The records asked for that the card holds."""
        got = {}
        for number in range(record, record + count):
            try:
                got[number] = self.card.read_record(sfi, number)
            except Exception:  # noqa: BLE001, S112 - past the file: as a card answers
                continue
        self.records.setdefault(sfi, {}).update(got)
        return got

    def read_counters(
        self, sfi: int, *, record_size: int = 29, count: int | None = None
    ) -> dict[int, int]:
        """The card's counters 1..count."""
        return {n: self.card.counter(sfi, n) for n in range(1, (count or 9) + 1)}

    def record(self, sfi: int, number: int) -> bytes | None:
        """A record as read."""
        return self.records.get(sfi, {}).get(number)


def read(
    layout: DemoLayout | IntercodeLayout, card: CardEmulator, rules: FareRules
) -> tuple[CardState, Records]:
    """The head then the titles, as the procedure reads them."""
    fake = Records(card)
    session, image = cast(SecureSession, fake), cast(CalypsoCard, fake)
    env = fake.read_records(layout.open_read[0], layout.open_read[1])[layout.open_read[1]]
    head = layout.read_head(session, image, env)
    return layout.read_titles(session, image, head, rules), fake


class TestDemoAdapter:
    """The demo layout's records in the model and back."""

    def test_a_carnet_card_reads_as_one_trips_title(self, rules: FareRules) -> None:
        """multi_trip.yaml: environment, the last validation, one carnet with 10 journeys."""
        state, _ = read(DemoLayout(), make_card("multi_trip"), rules)
        assert state.environment.format_error is None
        assert state.environment.network is None
        last = state.last
        assert last is not None and last.title == 1 and last.transition is Transition.ENTRY
        assert last.location == 1
        (title,) = state.titles
        assert (title.pointer, title.tariff, title.kind, title.rank) == (1, 2, TitleKind.TRIPS, 2)
        assert title.counter is not None and title.counter.value == 10
        assert title.counter.unit is CounterUnit.JOURNEYS

    def test_a_clean_card_lists_nothing(self, rules: FareRules) -> None:
        """empty.yaml: a version-0 event is no validation, and the card lists no title."""
        state, _ = read(DemoLayout(), make_card("empty"), rules)
        assert state.validations == () and not state.listed and state.titles == ()

    def test_candidates_skip_empty_and_expired(self) -> None:
        """Only slots with a live priority are read, best first."""
        event = demo_records.Event(1, NOW.date(), NOW.time(), 1, 1, (31, 3, 0, 1))
        assert candidate_contracts(event) == [4, 2]

    def test_a_grant_is_a_decrease_then_the_event_with_retired_titles(
        self, rules: FareRules
    ) -> None:
        """Debit title 1, retire title 3: Decrease counter 1, event with priority 3 -> 31."""
        state, fake = read(DemoLayout(), make_card("multi_trip"), rules)
        fake.records[demo_records.SFI_EVENTS][1] = demo_records.Event(
            1, NOW.date(), NOW.time(), 9, 1, (2, 0, 1, 0)
        ).encode()
        decision = Decision(
            Verdict.GRANT,
            Reason.TRIP_DEBITED,
            "",
            contract=1,
            debit=Debit(1, 1),
            event=Validation(NOW, 101, 1),
            retire=(3,),
        )
        decrease, append = DemoLayout().writes(state, decision, fake.records)
        assert decrease == Decrease(demo_records.SFI_COUNTERS, 1, 1)
        assert isinstance(append, AppendRecord) and append.sfi == demo_records.SFI_EVENTS
        event = demo_records.Event.decode(append.data)
        assert (event.version, event.stamp, event.location, event.contract_used) == (1, NOW, 101, 1)
        assert event.priorities == (2, 0, 31, 0) and event.event_type == 0

    def test_the_purse_pays_with_an_sv_debit_and_a_titleless_event(self, rules: FareRules) -> None:
        """An SV debit carries the event's DateCompact and TimeCompact; contract used 0."""
        state, fake = read(DemoLayout(), make_card("multi_trip"), rules)
        decision = Decision(
            Verdict.GRANT,
            Reason.SV_DEBITED,
            "",
            debit=Debit(0, 150, True),
            event=Validation(NOW, 101),
        )
        debit, append = DemoLayout().writes(state, decision, fake.records)
        days = (NOW.date() - dt.date(2010, 1, 1)).days
        assert debit == SvDebit(150, days.to_bytes(2, "big"), (8 * 60).to_bytes(2, "big"))
        assert isinstance(append, AppendRecord)
        assert demo_records.Event.decode(append.data).contract_used == 0

    def test_an_event_round_trips_through_the_model(self, rules: FareRules) -> None:
        """An interchange written from the model reads back as the same validation."""
        state, fake = read(DemoLayout(), make_card("multi_trip"), rules)
        written = Validation(NOW, 4242, 1, Transition.INTERCHANGE)
        decision = Decision(Verdict.GRANT, Reason.TRANSFER, "", contract=1, event=written)
        (append,) = DemoLayout().writes(state, decision, fake.records)
        assert isinstance(append, AppendRecord)
        assert demo_validation(demo_records.Event.decode(append.data)) == written


class TestIntercodeAdapter:
    """The Navigo-like card's records in the model and back."""

    def test_the_contract_list_ranks_the_titles(self, rules: FareRules) -> None:
        """intercode.yaml: network 250901, titles ranked 3, 1, 2 by the list, carnet counter."""
        state, _ = read(IntercodeLayout(), make_card("intercode"), rules)
        assert state.environment.network == "250901"
        assert [t.pointer for t in state.ranked()] == [3, 1, 2]
        by_pointer = {t.pointer: t for t in state.titles}
        assert by_pointer[1].kind is TitleKind.TRIPS and by_pointer[1].network == "250901"
        assert by_pointer[1].valid_from == dt.date(2026, 1, 1)
        assert by_pointer[1].zones == frozenset({1, 2})
        assert by_pointer[3].valid_until == dt.date(2025, 12, 31)
        carnet = by_pointer[1].counter
        assert carnet is not None and (carnet.unit, carnet.value) == (CounterUnit.JOURNEYS, 10)
        purse = by_pointer[2].counter
        assert purse is not None and (purse.unit, purse.value) == (CounterUnit.AMOUNT, 40)
        assert all(t.status is TitleStatus.VALID for t in state.titles)
        last = state.last
        assert last is not None and (last.location, last.title) == (201, 1)

    def test_a_grant_decreases_journeys_and_prunes_the_list(self, rules: FareRules) -> None:
        """One journey is 1 << 18 on a carnet; a retired title leaves the contract list."""
        state, fake = read(IntercodeLayout(), make_card("intercode"), rules)
        decision = Decision(
            Verdict.GRANT,
            Reason.TRIP_DEBITED,
            "",
            contract=1,
            debit=Debit(1, 1),
            event=Validation(NOW, 101, 1),
            retire=(3,),
        )
        decrease, append, update = IntercodeLayout().writes(state, decision, fake.records)
        assert decrease == Decrease(intercode_records.SFI_COUNTERS, 1, 1 << 18)
        assert isinstance(append, AppendRecord) and isinstance(update, UpdateRecord)
        event = decode(EVENT, append.data).to_json()["fields"]
        assert (event["EventNetworkId"], event["EventLocationId"], event["EventCode"]) == (
            "250901",
            101,
            0x31,
        )
        listed = decode(CONTRACT_LIST, update.data).values["BestContracts"]
        assert [e["BestContractPointer"] for e in listed] == [1, 2]

    def test_an_exit_is_not_an_entry(self) -> None:
        """EventCode transition 2 reads as an exit, so that it opens no free interchange."""
        exit_event = intercode_records.IntercodeEvent(NOW.date(), NOW.time(), code=0x32)
        read_back = intercode_validation(exit_event)
        assert read_back is not None and read_back.transition is Transition.EXIT


@pytest.mark.parametrize("profile", ["multi_trip", "season_pass", "sv_purse", "expired"])
def test_demo_profiles_decode_without_format_errors(profile: str, rules: FareRules) -> None:
    """Every shipped demo passenger reads into the model with readable records."""
    state, _ = read(DemoLayout(), make_card(profile), rules)
    assert state.environment.format_error is None
    assert all(t.format_error is None for t in state.titles)
