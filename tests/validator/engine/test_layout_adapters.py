# SPDX-License-Identifier: Apache-2.0
"""The layout adapters alone: a card's records into the ticketing model, a decision back."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import cast

import pytest
from conftest import make_card

from calypso.card_image import CalypsoCard
from calypso.emulator.dispatch import CardEmulator
from calypso.en1545 import decode
from calypso.en1545.tables import CONTRACT_LIST, EVENT
from calypso.layouts import demo as demo_records
from calypso.layouts import intercode as intercode_records
from validator.engine.fares.decide import Decision, FareRules, Reason, TapContext, Verdict, decide
from validator.engine.layouts.demo import DemoLayout, candidate_contracts
from validator.engine.layouts.demo import validation as demo_validation
from validator.engine.layouts.intercode import IntercodeLayout
from validator.engine.layouts.intercode import validation as intercode_validation
from validator.engine.layouts.writes import AppendRecord, Decrease, SvDebit, UpdateRecord
from validator.engine.session import SecureSession
from validator.engine.ticketing.model import (
    CardState,
    Counter,
    CounterUnit,
    Debit,
    TitleKind,
    TitleStatus,
    Transition,
    Validation,
)
from yamlconfig import load_model

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
        """intercode.yaml: network 250901, titles ranked 3, 1, 4, 2 by the list, counters."""
        state, _ = read(IntercodeLayout(), make_card("intercode"), rules)
        assert state.environment.network == "250901"
        assert [t.pointer for t in state.ranked()] == [3, 1, 4, 2]
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
        assert [e["BestContractPointer"] for e in listed] == [1, 4, 2]

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


class DictCard:
    """A card as a dictionary of records and counters (what Records reads)."""

    def __init__(self, records: dict[tuple[int, int], bytes], counters: dict[int, int]) -> None:
        self.records = records
        self.counters = counters

    def read_record(self, sfi: int, record: int) -> bytes:
        """A record (KeyError past the file)."""
        return self.records[(sfi, record)].ljust(29, b"\x00")

    def counter(self, sfi: int, number: int) -> int:
        """A counter's raw 24-bit value."""
        return self.counters.get(number, 0)


NETWORK = "250901"
TICKETS = 0x4001  # a 16-bit tariff: tickets sold as units, two units a journey
VALUE = 0x4002  # stored value sharing the tickets' counter


def structured_card() -> DictCard:
    """An Intercode card whose list names a 20h contract at pointer 5 (SFI 06h record 1) and
    a 46h stored value at pointer 6 linked to counter 5, then an FF carnet at pointer 1."""
    from calypso.en1545 import encode
    from calypso.en1545.contracts import CONTRACT_20, CONTRACT_46, CONTRACT_FF
    from calypso.en1545.tables import ENVIRONMENT

    env = encode(
        ENVIRONMENT,
        {
            "EnvApplicationVersionNumber": 9,
            "EnvNetworkId": NETWORK,
            "EnvApplicationValidityEndDate": "2035-12-31",
        },
    )
    validity = {
        "ContractValidityStartDate": "2026-01-01",
        "ContractValidityEndDate": "2030-12-31",
    }
    tickets = encode(
        CONTRACT_20,
        {
            "ContractTariff": TICKETS,
            "ContractValidityInfo": validity,
            "ContractStatus": 1,
            "ContractData": {"ContractDataSoldUnits": {"ContractSold": 20, "ContractDebitSold": 2}},
        },
    )
    value = encode(
        CONTRACT_46,
        {
            "ContractTariff": VALUE,
            "ContractValidityInfo": validity,
            "ContractData": {"ContractLinkedContract": 5},
        },
    )
    carnet = encode(CONTRACT_FF, {"ContractNetworkId": NETWORK, "ContractTariff": 2})
    listed = intercode_records.encode_contract_list(
        [
            intercode_records.BestContract(5, 0x0200, 0x250901),
            intercode_records.BestContract(6, 0x0460, 0x250901),
            intercode_records.BestContract(1, 0x0FF0, 0x250901),
        ]
    )
    return DictCard(
        {
            (0x07, 1): env,
            (0x08, 1): bytes(29),
            (0x1E, 1): listed,
            (0x09, 1): carnet,
            (0x06, 1): tickets,
            (0x06, 2): value,
        },
        {1: 3 << 18, 5: 18},
    )


@pytest.fixture
def network_rules(tmp_path: Path) -> FareRules:
    """Products of network 250901 by 16-bit tariff, and the demo's carnet on any network."""
    path = tmp_path / "fares.yaml"
    path.write_text(
        "station: {location_id: 101}\nproducts:\n"
        "  - {tariff: 2, kind: multi_trip, name: Carnet}\n"
        f"  - {{network: '{NETWORK}', tariff: {TICKETS}, kind: multi_trip, name: Tickets}}\n"
        f"  - {{network: '{NETWORK}', tariff: {VALUE}, kind: stored_value, name: Value,"
        " units_per_trip: 4}\n"
    )
    return load_model(path, FareRules)


class TestIntercodeStructures:
    """Every list entry is read with its own structure; counters as their titles read them."""

    def test_every_entry_is_read_with_its_structure(self, network_rules: FareRules) -> None:
        """Pointers 5 and 6 (SFI 06h) as 20h and 46h, pointer 1 as FF, ranked in list order."""
        state, _ = read(IntercodeLayout(), structured_card(), network_rules)  # type: ignore[arg-type]
        assert [(t.pointer, t.tariff, t.network) for t in state.ranked()] == [
            (5, TICKETS, NETWORK),
            (6, VALUE, NETWORK),
            (1, 2, NETWORK),
        ]

    def test_counters_are_read_by_the_titles_that_use_them(self, network_rules: FareRules) -> None:
        """Units sold / debit per journey; a linked contract shares the counter; FF carnet."""
        state, _ = read(IntercodeLayout(), structured_card(), network_rules)  # type: ignore[arg-type]
        tickets, value, carnet = state.ranked()
        assert tickets.counter == Counter(5, CounterUnit.JOURNEYS, 9, (5, 6))
        assert value.counter == Counter(5, CounterUnit.AMOUNT, 18, (5, 6))
        assert carnet.counter == Counter(1, CounterUnit.JOURNEYS, 3, (1,))

    def test_a_journey_debits_the_units_a_journey_costs(self, network_rules: FareRules) -> None:
        """The tickets title pays one journey: a Decrease of 2 units of counter 5."""
        state, fake = read(IntercodeLayout(), structured_card(), network_rules)  # type: ignore[arg-type]
        decision = decide(state, TapContext(NOW, 101), network_rules)
        assert (decision.reason, decision.contract, decision.remaining) == (
            Reason.TRIP_DEBITED,
            5,
            8,
        )
        writes = IntercodeLayout().writes(state, decision, fake.records)
        assert writes[0] == Decrease(intercode_records.SFI_COUNTERS, 5, 2)

    def test_the_shared_counter_pays_as_value(self, network_rules: FareRules) -> None:
        """With the tickets retired, the value title pays 4 units from the same counter 5."""
        state, fake = read(IntercodeLayout(), structured_card(), network_rules)  # type: ignore[arg-type]
        blocked = dataclasses.replace(
            state,
            titles=tuple(t for t in state.titles if t.pointer != 5),
        )
        decision = decide(blocked, TapContext(NOW, 101), network_rules)
        assert (decision.reason, decision.contract) == (Reason.VALUE_DEBITED, 6)
        writes = IntercodeLayout().writes(blocked, decision, fake.records)
        assert writes[0] == Decrease(intercode_records.SFI_COUNTERS, 5, 4)
