# SPDX-License-Identifier: Apache-2.0
"""The Keyple demo layout (calypso-data-model section 3) <-> the ticketing model.

* the environment (read in the Open) is readable at version 1; its end date, HolderCompany;
* the newest event (record 1 of the cyclic log) is the last validation; a version-0 event is a
  clean card, which lists no title; its byte 14 (a project extension, EventType) says whether
  it was an interchange;
* the event's four ContractPriority bytes rank contract records 1-4 (lower first; FORBIDDEN 0
  and EXPIRED 31 are not read): a contract is a title, its ContractTariff is both its tariff
  and its kind (section 3.2: 1 season pass, 2 multi-trip, 3 stored value);
* counter n belongs to contract n (section 3.3).

A decision is written back as a Decrease of the title's counter (or an SV Debit), then a new
event carrying the priorities read, with the titles the decision retires set to EXPIRED.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping

from calypso.card_image import CalypsoCard
from calypso.errors import CardResponseError
from calypso.layouts.demo import (
    MAX_CONTRACTS,
    SFI_CONTRACTS,
    SFI_COUNTERS,
    SFI_ENVIRONMENT,
    SFI_EVENTS,
    Contract,
    Environment,
    Event,
    EventType,
    PriorityCode,
    date_to_compact,
    time_to_compact,
)
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import Decision, FareRules
from validator.engine.layouts.states import with_titles
from validator.engine.layouts.writes import (
    AppendRecord,
    CardWrite,
    Decrease,
    Records,
    SvDebit,
    apply_writes,
)
from validator.engine.session import SecureSession
from validator.engine.ticketing.model import (
    CardEnvironment,
    CardState,
    Counter,
    CounterUnit,
    Title,
    TitleKind,
    Transition,
    Validation,
)

EVENT_LOG_RECORDS = 3
KINDS: dict[int, TitleKind] = {
    PriorityCode.SEASON_PASS: TitleKind.SEASON_PASS,
    PriorityCode.MULTI_TRIP: TitleKind.TRIPS,
    PriorityCode.STORED_VALUE: TitleKind.STORED_VALUE,
}
TRANSITIONS: dict[int, Transition] = {
    EventType.ENTRY: Transition.ENTRY,
    EventType.INTERCHANGE: Transition.INTERCHANGE,
}


def environment(env: Environment) -> CardEnvironment:
    """The environment record in the model: readable at version 1 only."""
    return CardEnvironment(
        valid_until=env.end_date,
        holder_profile=env.holder_company,
        format_error=None if env.version == 1 else f"environment version {env.version} is not 1",
    )


def validation(event: Event) -> Validation | None:
    """An event record in the model; None for a clean (version 0) record."""
    if event.version == 0:
        return None
    return Validation(
        when=event.stamp,
        location=event.location,
        title=event.contract_used or None,
        transition=TRANSITIONS.get(event.event_type, Transition.OTHER),
        format_error=None if event.version == 1 else f"event version {event.version} is not 1",
    )


def _validation_of(data: bytes) -> Validation | None:
    """The validation an event record holds (None: a clean record)."""
    return validation(Event.decode(data))


def title(
    record: int, contract: Contract, rank: int, counters: Mapping[int, int] | None = None
) -> Title:
    """Contract record ``record`` in the model, with its counter once ``counters`` are read."""
    kind = KINDS.get(contract.tariff, TitleKind.OTHER)
    counter = None
    if counters is not None:  # counter n belongs to contract n (section 3.3)
        unit = CounterUnit.JOURNEYS if kind is TitleKind.TRIPS else CounterUnit.AMOUNT
        counter = Counter(record, unit, counters.get(record, 0), (record,))
    return Title(
        pointer=record,
        tariff=contract.tariff,
        kind=kind,
        rank=rank,
        valid_until=contract.validity_end_date,
        counter=counter,
        format_error=(
            None if contract.version == 1 else f"contract {record} has version {contract.version}"
        ),
    )


def candidate_contracts(event: Event | None) -> list[int]:
    """Contract records worth reading, best priority first (FORBIDDEN and EXPIRED skipped)."""
    if event is None or event.version != 1:
        return []
    ranked = [
        (priority, record)
        for record, priority in enumerate(event.priorities[:MAX_CONTRACTS], start=1)
        if priority not in (PriorityCode.FORBIDDEN, PriorityCode.EXPIRED)
    ]
    return [record for _, record in sorted(ranked)]


class DemoLayout:
    """Environment in the Open, the event log, candidate contracts, counters when needed."""

    name = "demo"
    open_read = (SFI_ENVIRONMENT, 1)
    event_sfi = SFI_EVENTS

    def __init__(self) -> None:
        self._environment: Callable[[bytes], Environment] = Environment.decode
        self._contract: Callable[[bytes], Contract] = Contract.decode
        self._event: Callable[[bytes], Event] = Event.decode
        self._validation: Callable[[bytes], Validation | None] = _validation_of

    def cache_records(self, size: int) -> None:
        """Keep ``size`` decoded Environment, Contract and Event records by their bytes (replay:
        a card's records repeat across its taps, an event across the next three). Decoding is
        pure: the results are the same."""
        self._environment = functools.lru_cache(size)(Environment.decode)
        self._contract = functools.lru_cache(size)(Contract.decode)
        self._event = functools.lru_cache(size)(Event.decode)
        self._validation = functools.lru_cache(size)(_validation_of)

    def read_head(
        self,
        session: SecureSession,
        image: CalypsoCard,
        open_record: bytes,
        *,
        history: bool = True,
    ) -> CardState:
        """The environment (read in the Open) and the event log: one APDU."""
        env = self._environment(open_record)
        # The newest event decides; the older ones (``history``) let the processor recognise
        # an interrupted Close of its own on the card (validator.engine.tap).
        count = EVENT_LOG_RECORDS if history else 1
        events = session.read_records(SFI_EVENTS, 1, count=count)
        newest = events.get(1)
        if newest is None:
            raise CardResponseError("Read Records", "the event log gave no record 1")
        validations: list[Validation] = []
        decoded = self._validation
        for number in range(1, count + 1):
            read = decoded(events[number]) if number in events else None
            if read is None:
                break  # a clean record: nothing older was written either
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
        """The candidate contracts in one Read Records, the counters only when needed."""
        newest = image.record(SFI_EVENTS, 1)
        event = self._event(newest) if newest is not None else None
        ok = head.environment.format_error is None
        wanted = candidate_contracts(event) if ok and event is not None else []
        if not wanted or event is None:
            return head
        first, last = min(wanted), max(wanted)
        records = session.read_records(SFI_CONTRACTS, first, count=last - first + 1)
        contract = self._contract
        read = [(n, contract(records[n]), event.priorities[n - 1]) for n in wanted if n in records]
        titles = [title(*each) for each in read]
        if titles and fares.needs_counters(titles, rules):
            # Counter n belongs to contract n: read up to the last contract read.
            counters = session.read_counters(SFI_COUNTERS, count=max(t.pointer for t in titles))
            titles = [title(*each, counters=counters) for each in read]
        return with_titles(head, tuple(titles))

    def writes(
        self, card: CardState, decision: Decision, records: Records
    ) -> tuple[CardWrite, ...]:
        """Decrease the title's counter (or debit the SV purse), then append the new event."""
        out: list[CardWrite] = []
        debit, new = decision.debit, decision.event
        if debit is not None and debit.purse:
            date = date_to_compact(new.when.date()) if new is not None else 0
            time = time_to_compact(new.when.time()) if new is not None else 0
            out.append(SvDebit(debit.units, date.to_bytes(2, "big"), time.to_bytes(2, "big")))
        elif debit is not None:
            out.append(Decrease(SFI_COUNTERS, debit.title, debit.units))
        if new is not None:
            read = records.get(SFI_EVENTS, {}).get(1)
            out.append(AppendRecord(SFI_EVENTS, event_record(new, decision.retire, read)))
        return tuple(out)

    def write(self, session: SecureSession, card: CardState, decision: Decision) -> None:
        """Send the decision's writes in the session."""
        apply_writes(session, self.writes(card, decision, session.image.records))


def event_record(new: Validation, retire: tuple[int, ...], read: bytes | None) -> bytes:
    """The event record of a new validation: the priorities of the event read (none if it was
    clean), the retired titles set to EXPIRED (section 3.10, pitfall 2 designed around)."""
    before = Event.decode(read) if read is not None else None
    priorities = list(before.priorities) if before is not None and before.version == 1 else [0] * 4
    for pointer in retire:
        if 1 <= pointer <= MAX_CONTRACTS:
            priorities[pointer - 1] = PriorityCode.EXPIRED
    if new.transition is Transition.INTERCHANGE:
        kind = int(EventType.INTERCHANGE)
    elif new.transition is Transition.ENTRY or before is None:
        kind = int(EventType.ENTRY)
    else:
        kind = before.event_type  # a recovery repeats the validation it completes
    return Event(
        version=1,
        date=new.when.date(),
        time=dt.time(new.when.hour, new.when.minute),
        location=new.location,
        contract_used=new.title or 0,
        priorities=(priorities[0], priorities[1], priorities[2], priorities[3]),
        event_type=kind,
    ).encode()
