# SPDX-License-Identifier: Apache-2.0
"""The Intercode / EN 1545 layout (calypso-data-model 2) <-> the ticketing model.

* the environment (read in the Open) is readable when it is a usable Intercode I/II
  environment; its network, EnvApplicationValidityEndDate and HolderCompany;
* the newest event is the last validation: date, time, EventLocationId, EventContractPointer,
  and its transition (EventCode low nibble: 1 entry, 6 interchange entry, 2 exit);
* the contract list (SFI 1Eh) ranks the contracts: the k-th entry's contract gets rank k
  (section 2.4), every entry is read (pointers 1-4 in SFI 09h, 5-8 in SFI 06h), and the
  entry's contract type chooses the contract's structure (FFh, 20h, 46h or the common format,
  calypso.en1545.contracts);
* a contract is a title with its ContractTariff (16 bits) and network, its validity (start and
  end dates and times, else the environment's end date; zones; journeys) and its status;
* counter n belongs to contract n (section 1.4), or to the contract a ContractLinkedContract
  names (a shared counter), and is read as the title that uses it reads it: a carnet on the FF
  layout (6-bit journeys left, 18-bit first stamp, section 2.6), units sold with a debit per
  journey (ContractSold / ContractDebitSold: journeys = units / debit), journeys, or an amount.

A decision is written back as a Decrease of the title's counter in the counter's own units,
an Intercode event appended to the cyclic log (EventDateStamp, EventTimeStamp, EventNetworkId,
EventCode, EventResult, EventServiceProvider, EventLocationId, EventContractPointer), and the
contract list without the titles the decision retires.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping

from calypso.card_image import CalypsoCard
from calypso.en1545.codes import EventResult, TransportMode
from calypso.en1545.codes import Transition as EventTransition
from calypso.layouts.demo import date_to_compact, time_to_compact
from calypso.layouts.intercode import (
    COUNTERS_RECORD_SIZE,
    EVENT_LOG_RECORDS,
    SFI_CONTRACT_LIST,
    SFI_COUNTERS,
    SFI_ENVIRONMENT,
    SFI_EVENTS,
    BestContract,
    IntercodeContract,
    IntercodeEnvironment,
    IntercodeEvent,
    decode_contract_list,
    encode_contract_list,
    event_code,
)
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import Decision, FareRules
from validator.engine.layouts.intercode_titles import (
    CounterReading,
    contract_titles,
    counter_reading,
    environment,
    listed_contracts,
    network_text,
    with_counters,
)
from validator.engine.layouts.states import with_titles
from validator.engine.layouts.writes import (
    AppendRecord,
    CardWrite,
    Decrease,
    Records,
    SvDebit,
    UpdateRecord,
    apply_writes,
)
from validator.engine.session import SecureSession
from validator.engine.ticketing.model import (
    CardEnvironment,
    CardState,
    Title,
    Transition,
    Validation,
)

DEFAULT_SERVICE_PROVIDER = 3  # written in EventServiceProvider (3 = RATP on Navigo, 2.5)
LOCATION_MASK = 0xFFFF  # EventLocationId is 16 bits (section 2.5; the settings refuse more)
TRANSITIONS: dict[int, Transition] = {
    EventTransition.ENTRY: Transition.ENTRY,
    EventTransition.INTERCHANGE_ENTRY: Transition.INTERCHANGE,
    EventTransition.EXIT: Transition.EXIT,
    EventTransition.INTERCHANGE_EXIT: Transition.EXIT,
}
ContractDecoder = Callable[[bytes, "int | None"], IntercodeContract]
TitlesReader = Callable[
    [
        Mapping[int, BestContract],
        Mapping[int, IntercodeContract],
        CardEnvironment,
        "FareRules | None",
    ],
    tuple[list[Title], dict[int, CounterReading]],
]


def network_raw(text: str | None) -> int | None:
    """A network id's digits back to its 24 BCD bits."""
    return int(text, 16) if text is not None else None


def validation(event: IntercodeEvent | None) -> Validation | None:
    """An event record in the model; None for an empty or unreadable record."""
    if event is None:
        return None
    transition = event.transition
    return Validation(
        when=event.stamp,
        location=event.location or 0,
        title=event.contract_pointer or None,
        transition=TRANSITIONS.get(transition, Transition.OTHER)
        if transition is not None
        else Transition.OTHER,
        ok=event.result in (None, EventResult.OK),
        network=network_text(event.network_id),
    )


def listed_records(
    entries: dict[int, BestContract], records: Records, decoder: ContractDecoder
) -> dict[int, IntercodeContract]:
    """The listed contracts found in ``records``, each decoded with its entry's structure."""
    contracts = {}
    for pointer, entry in entries.items():
        where = entry.record
        data = records.get(where[0], {}).get(where[1]) if where is not None else None
        if data is not None:
            contracts[pointer] = decoder(data, entry.contract_type)
    return contracts


def _validation_of(data: bytes) -> Validation | None:
    """The validation an event record holds (None: an empty or unreadable record)."""
    return validation(IntercodeEvent.decode(data))


def _contract_list(data: bytes) -> tuple[BestContract, ...]:
    return tuple(decode_contract_list(data))


_Kept = tuple[
    tuple[Title, ...], dict[int, CounterReading], tuple[IntercodeContract, ...], "FareRules | None"
]


class KeptTitles:
    """``contract_titles``, its last ``size`` results kept by their inputs: the list entries,
    the contracts (by identity: the layout's cache gives the same object for the same record),
    the environment and the rules (by identity). A kept result holds its contracts and rules,
    so that no other object takes their ids while it is kept. Replay: a card's contracts turn
    into the same titles at every tap; their counters are read afresh each time."""

    def __init__(self, size: int) -> None:
        """Keep up to ``size`` results (the oldest dropped first)."""
        self.size = size
        # key -> (titles, readings, the contracts and rules the key names by id)
        self._kept: dict[tuple[object, ...], _Kept] = {}
        self.hits = self.misses = 0

    def __call__(
        self,
        entries: Mapping[int, BestContract],
        contracts: Mapping[int, IntercodeContract],
        env: CardEnvironment,
        rules: FareRules | None,
    ) -> tuple[list[Title], dict[int, CounterReading]]:
        """What ``contract_titles`` gives for these inputs."""
        key = (
            tuple(entries.items()),
            tuple([(pointer, id(each)) for pointer, each in contracts.items()]),
            env,
            id(rules),
        )
        held = self._kept.get(key)
        if held is None:
            self.misses += 1
            titles, readings = contract_titles(entries, contracts, env, rules)
            held = (tuple(titles), readings, tuple(contracts.values()), rules)
            if self.size > 0:
                if len(self._kept) >= self.size:
                    del self._kept[next(iter(self._kept))]
                self._kept[key] = held
        else:
            self.hits += 1
        return list(held[0]), dict(held[1])


class IntercodeLayout:
    """Environment in the Open, event log, contract list, listed contracts, counters."""

    name = "intercode"
    open_read = (SFI_ENVIRONMENT, 1)
    event_sfi = SFI_EVENTS

    def __init__(
        self,
        *,
        transport_mode: int = TransportMode.METRO,
        service_provider: int = DEFAULT_SERVICE_PROVIDER,
    ) -> None:
        """``transport_mode`` and ``service_provider`` go into the events this validator writes."""
        self.transport_mode = transport_mode
        self.service_provider = service_provider
        self._environment: Callable[[bytes], IntercodeEnvironment] = IntercodeEnvironment.decode
        self._contract_list: Callable[[bytes], tuple[BestContract, ...]] = _contract_list
        self._contract: ContractDecoder = IntercodeContract.decode
        self._validation: Callable[[bytes], Validation | None] = _validation_of
        self._titles: TitlesReader = contract_titles

    def cache_records(self, size: int) -> None:
        """Keep ``size`` decoded environment, contract list, contract and event records by
        their bytes (replay: a card's records repeat across its taps, an event across the next
        three), and the titles ``size`` sets of contracts read as (KeptTitles). Decoding is pure:
        same results."""
        self._environment = functools.lru_cache(size)(IntercodeEnvironment.decode)
        self._contract_list = functools.lru_cache(size)(_contract_list)
        self._contract = functools.lru_cache(size)(IntercodeContract.decode)
        self._validation = functools.lru_cache(size)(_validation_of)
        self._titles = KeptTitles(size)

    def read_head(
        self,
        session: SecureSession,
        image: CalypsoCard,
        open_record: bytes,
        *,
        history: bool = True,
    ) -> CardState:
        """The environment (read in the Open) and the event log: one APDU.

        A card with an event counts as listing titles until the contract list says otherwise:
        recovery and anti-passback are decided on the event before the list is read."""
        env = self._environment(open_record)
        count = EVENT_LOG_RECORDS if history else 1
        events = session.read_records(SFI_EVENTS, 1, count=count)
        validations: list[Validation] = []
        decoded = self._validation
        for number in range(1, count + 1):
            read = decoded(events.get(number, b""))
            if read is None:
                break
            validations.append(read)
        return CardState(
            serial=image.serial,
            environment=environment(env),
            validations=tuple(validations),
            listed=bool(validations),
            ratified=image.ratified is not False,
        )

    def read_titles(
        self, session: SecureSession, image: CalypsoCard, head: CardState, rules: FareRules
    ) -> CardState:
        """The contract list, every listed contract (one Read Records a contracts file), and
        the counters when a title the rules sell uses one."""
        best: tuple[BestContract, ...] = ()
        if head.environment.format_error is None:
            listed = session.read_records(SFI_CONTRACT_LIST, 1)
            best = self._contract_list(listed.get(1, b""))
        entries = listed_contracts(best)
        records: dict[int, dict[int, bytes]] = {}
        for sfi in dict.fromkeys(e.record[0] for e in entries.values() if e.record is not None):
            numbers = [e.record[1] for e in entries.values() if e.record and e.record[0] == sfi]
            first, last = min(numbers), max(numbers)
            records[sfi] = session.read_records(sfi, first, count=last - first + 1)
        contracts = listed_records(entries, records, self._contract)
        titles, readings = self._titles(entries, contracts, head.environment, rules)
        if titles and fares.needs_counters(titles, rules) and readings:
            raw = session.read_counters(
                SFI_COUNTERS,
                record_size=COUNTERS_RECORD_SIZE,
                count=max(r.number for r in readings.values()),
            )
            titles = with_counters(titles, readings, raw)
        return with_titles(head, tuple(titles), bool(best))

    def writes(
        self, card: CardState, decision: Decision, records: Records
    ) -> tuple[CardWrite, ...]:
        """Decrease the title's counter in its own units (or debit the SV purse), append the
        event, and rewrite the contract list without the retired titles."""
        out: list[CardWrite] = []
        debit, new = decision.debit, decision.event
        listed = records.get(SFI_CONTRACT_LIST, {}).get(1)
        best = decode_contract_list(listed) if listed is not None else []
        if debit is not None and debit.purse:
            when = new.when if new is not None else dt.datetime(2010, 1, 1)
            out.append(
                SvDebit(
                    debit.units,
                    date_to_compact(when.date()).to_bytes(2, "big"),
                    time_to_compact(when.time()).to_bytes(2, "big"),
                )
            )
        elif debit is not None:
            out.append(self._decrease(card, debit.title, debit.units, best, records))
        if new is None:
            return tuple(out)
        out.append(AppendRecord(SFI_EVENTS, self.event_record(new, card.environment.network)))
        if decision.retire and listed is not None:
            kept = [b for b in best if b.pointer not in decision.retire]
            out.append(UpdateRecord(SFI_CONTRACT_LIST, 1, encode_contract_list(kept)))
        return tuple(out)

    def write(self, session: SecureSession, card: CardState, decision: Decision) -> None:
        """Send the decision's writes in the session."""
        apply_writes(session, self.writes(card, decision, session.image.records))

    def event_record(self, new: Validation, network: str | None) -> bytes:
        """The Intercode event record of a new validation (section 2.5)."""
        interchange = new.transition is Transition.INTERCHANGE
        transition = EventTransition.INTERCHANGE_ENTRY if interchange else EventTransition.ENTRY
        return IntercodeEvent(
            date=new.when.date(),
            time=dt.time(new.when.hour, new.when.minute),
            code=event_code(self.transport_mode, transition),
            location=new.location & LOCATION_MASK,
            contract_pointer=new.title or None,
            network_id=network_raw(network),
            result=EventResult.OK,
            service_provider=self.service_provider,
        ).encode()

    def _decrease(
        self,
        card: CardState,
        pointer: int,
        count: int,
        best: list[BestContract],
        records: Records,
    ) -> Decrease:
        """The Decrease of ``count`` journeys or amount units from the title's counter, in the
        counter's own units (the title's contract, read again, says how it reads it)."""
        used = card.title(pointer)
        contract = listed_records(listed_contracts(best), records, self._contract).get(pointer)
        if used is not None and contract is not None:
            reading = counter_reading(pointer, contract, used.kind)
            if reading is not None:
                return Decrease(SFI_COUNTERS, reading.number, reading.units(count))
        return Decrease(SFI_COUNTERS, pointer, count)
