# SPDX-License-Identifier: Apache-2.0
"""The Intercode / EN 1545 layout (calypso-data-model 2) <-> the ticketing model.

* the environment (read in the Open) is readable when it is a usable Intercode I/II
  environment; its network, EnvApplicationValidityEndDate and HolderCompany;
* the newest event is the last validation: date, time, EventLocationId, EventContractPointer,
  and its transition (EventCode low nibble: 1 entry, 6 interchange entry, 2 exit);
* the contract list (SFI 1Eh) ranks the contracts: the k-th best contract gets rank k
  (section 2.4); a contract is a title with its ContractTariff (16 bits) and network, its
  validity (start, end, else the environment's end date; zones), and its status;
* counter n belongs to contract n (section 1.4), read as the title that uses it reads it: a
  carnet (6-bit journeys left, 18-bit first stamp, section 2.6) or a plain amount.

A decision is written back as a Decrease of the title's counter (journeys << 18 on a carnet),
an Intercode event appended to the cyclic log (EventDateStamp, EventTimeStamp, EventNetworkId,
EventCode, EventResult, EventServiceProvider, EventLocationId, EventContractPointer), and the
contract list without the titles the decision retires.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Mapping

from calypso.card_image import CalypsoCard
from calypso.en1545 import codes
from calypso.en1545.codes import EventResult, TransportMode
from calypso.en1545.codes import Transition as EventTransition
from calypso.en1545.types import EN1545_EPOCH
from calypso.layouts.demo import date_to_compact, time_to_compact
from calypso.layouts.intercode import (
    CARNET_COUNT_SHIFT,
    COUNTERS_RECORD_SIZE,
    EVENT_LOG_RECORDS,
    SFI_CONTRACT_LIST,
    SFI_CONTRACTS,
    SFI_COUNTERS,
    SFI_ENVIRONMENT,
    SFI_EVENTS,
    BestContract,
    IntercodeContract,
    IntercodeEnvironment,
    IntercodeEvent,
    carnet_journeys,
    decode_contract_list,
    encode_contract_list,
    event_code,
)
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import Decision, FareRules, ProductKind
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
    Counter,
    CounterUnit,
    Title,
    TitleKind,
    TitleStatus,
    Transition,
    Validation,
)

DEFAULT_SERVICE_PROVIDER = 3  # written in EventServiceProvider (3 = RATP on Navigo, 2.5)
LOCATION_MASK = 0xFFFF  # EventLocationId is 16 bits (section 2.5; the settings refuse more)
MAX_POINTER = 4  # contracts 1-4 of SFI 09h
VALID_STATUSES = (None, 0x00, 0x01)  # ContractStatus: valid, never used / valid, used (2.3)
TRANSITIONS: dict[int, Transition] = {
    EventTransition.ENTRY: Transition.ENTRY,
    EventTransition.INTERCHANGE_ENTRY: Transition.INTERCHANGE,
    EventTransition.EXIT: Transition.EXIT,
    EventTransition.INTERCHANGE_EXIT: Transition.EXIT,
}
KINDS = {
    ProductKind.SEASON_PASS: TitleKind.SEASON_PASS,
    ProductKind.MULTI_TRIP: TitleKind.TRIPS,
    ProductKind.STORED_VALUE: TitleKind.STORED_VALUE,
}


def network_text(raw: int | None) -> str | None:
    """A network id as its digits (BCD country + network, section 2.1): "250901"."""
    return f"{raw:06X}" if raw is not None else None


def network_raw(text: str | None) -> int | None:
    """A network id's digits back to its 24 BCD bits."""
    return int(text, 16) if text is not None else None


def environment(env: IntercodeEnvironment) -> CardEnvironment:
    """The environment record in the model."""
    usable = env.usable
    return CardEnvironment(
        valid_until=env.end_date or EN1545_EPOCH,
        network=network_text(env.network_id),
        holder_profile=env.holder_company,
        format_error=None
        if usable
        else f"environment (version {env.version}) is not a readable Intercode I/II one",
    )


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


def title(
    pointer: int,
    contract: IntercodeContract,
    rank: int,
    listed: BestContract,
    env: CardEnvironment,
    rules: FareRules,
) -> Title:
    """Contract ``pointer`` in the model; its kind is the rules' product's, its counter is
    added once read."""
    network = network_text(contract.decoded.get("ContractNetworkId")) or network_text(
        listed.network_id
    )
    network = network or env.network
    tariff = contract.tariff or 0
    product = rules.product(tariff, network)
    status = contract.status
    blocked = status not in VALID_STATUSES
    zones = contract.zones
    return Title(
        pointer=pointer,
        tariff=tariff,
        network=network,
        kind=KINDS.get(product.kind, TitleKind.OTHER) if product is not None else TitleKind.OTHER,
        rank=rank,
        status=TitleStatus.BLOCKED if blocked else TitleStatus.VALID,
        status_note=(codes.contract_status(status) or f"status {status:02X}h")
        if blocked and status is not None
        else "",
        valid_from=contract.start_date,
        valid_until=contract.end_date or env.valid_until,
        zones=frozenset(z + 1 for z in range(8) if zones >> z & 1) if zones is not None else None,
    )


def _contract_list(data: bytes) -> tuple[BestContract, ...]:
    return tuple(decode_contract_list(data))


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
        self._contract: Callable[[bytes], IntercodeContract] = IntercodeContract.decode

    def cache_records(self, size: int) -> None:
        """Keep ``size`` decoded environment, contract list and contract records by their bytes
        (replay: a card's records repeat across its taps). Decoding is pure: same results."""
        self._environment = functools.lru_cache(size)(IntercodeEnvironment.decode)
        self._contract_list = functools.lru_cache(size)(_contract_list)
        self._contract = functools.lru_cache(size)(IntercodeContract.decode)

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
        for number in range(1, count + 1):
            read = validation(IntercodeEvent.decode(events.get(number, b"")))
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
        """The contract list, the listed contracts in one Read Records, counters if needed."""
        best: list[BestContract] = []
        if head.environment.format_error is None:
            listed = session.read_records(SFI_CONTRACT_LIST, 1)
            best = list(self._contract_list(listed.get(1, b"")))
        entries: dict[int, BestContract] = {}
        for entry in best:
            if 1 <= entry.pointer <= MAX_POINTER:
                entries.setdefault(entry.pointer, entry)
        titles: list[Title] = []
        if entries:
            first, last = min(entries), max(entries)
            records = session.read_records(SFI_CONTRACTS, first, count=last - first + 1)
            for rank, (pointer, entry) in enumerate(entries.items(), start=1):
                contract = self._contract(records.get(pointer, b""))
                if not _readable(contract):
                    continue
                titles.append(title(pointer, contract, rank, entry, head.environment, rules))
        if titles and fares.needs_counters(titles, rules):
            raw = session.read_counters(
                SFI_COUNTERS,
                record_size=COUNTERS_RECORD_SIZE,
                count=max(t.pointer for t in titles),
            )
            titles = [_with_counter(t, raw) for t in titles]
        return dataclasses.replace(head, titles=tuple(titles), listed=bool(best))

    def writes(
        self, card: CardState, decision: Decision, records: Records
    ) -> tuple[CardWrite, ...]:
        """Decrease the title's counter (or debit the SV purse), append the event, and rewrite
        the contract list without the retired titles."""
        out: list[CardWrite] = []
        debit, new = decision.debit, decision.event
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
            used = card.title(debit.title)
            counter = used.counter if used is not None else None
            number = counter.number if counter is not None else debit.title
            units = debit.units
            if counter is not None and counter.unit is CounterUnit.JOURNEYS:
                units <<= CARNET_COUNT_SHIFT  # a carnet's journeys are its top 6 bits (2.6)
            out.append(Decrease(SFI_COUNTERS, number, units))
        if new is None:
            return tuple(out)
        out.append(AppendRecord(SFI_EVENTS, self.event_record(new, card.environment.network)))
        listed = records.get(SFI_CONTRACT_LIST, {}).get(1)
        if decision.retire and listed is not None:
            kept = [b for b in decode_contract_list(listed) if b.pointer not in decision.retire]
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


def _readable(contract: IntercodeContract) -> bool:
    """Read in full, not empty, with a tariff: a title (its status is the decision's)."""
    decoded = contract.decoded
    return decoded.truncated is None and not decoded.empty and contract.tariff is not None


def _with_counter(item: Title, raw: Mapping[int, int]) -> Title:
    """The title with its counter, read as a carnet for a trips title, else as an amount."""
    value = raw.get(item.pointer, 0)
    if item.kind is TitleKind.TRIPS:
        counter = Counter(
            item.pointer, CounterUnit.JOURNEYS, carnet_journeys(value), (item.pointer,)
        )
    else:
        counter = Counter(item.pointer, CounterUnit.AMOUNT, value, (item.pointer,))
    return dataclasses.replace(item, counter=counter)
