# SPDX-License-Identifier: Apache-2.0
"""The Intercode / EN 1545 layout for the procedure (calypso-data-model 2): reads and writes.

The fare rules work on the Keyple demo layout's model (validator.engine.fares.decide.CardState
of calypso.layouts.demo values); this layout translates Intercode records into it:

* the environment (read in the Open) is "version 1" when it is a usable Intercode I/II
  environment, with its EnvApplicationValidityEndDate as end date;
* the contract list (SFI 1Eh) ranks the contracts: the k-th best contract gets priority k, so
  that ``fares.candidate_contracts`` tries them in the card's order (section 2.4); contracts
  whose status forbids a validation or whose zones miss the station's zone are left out;
* a contract's ContractTariff is the fares tariff (or goes through the ``tariffs`` map), its
  validity end is ContractValidityEndDate, else the environment's end date;
* counter n belongs to contract n (section 1.4): a multi-trip contract's counter is a carnet
  (6-bit journeys left, 18-bit first stamp, section 2.6), a stored-value one a plain value;
* the newest event gives the date, time, EventLocationId, EventContractPointer, and whether
  it was an interchange entry (EventCode transition 6).

A granted tap decreases the contract's counter (journeys << 18 on a carnet), appends an
Intercode event (EventDateStamp, EventTimeStamp, EventNetworkId, EventCode, EventResult,
EventServiceProvider, EventLocationId, EventContractPointer) to the cyclic log, and drops
from the contract list the contracts that the decision found expired or used up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from calypso.card_image import CalypsoCard
from calypso.en1545.codes import EventResult, Transition, TransportMode
from calypso.en1545.types import EN1545_EPOCH
from calypso.layouts.demo import (
    MAX_CONTRACTS,
    Contract,
    Environment,
    Event,
    EventType,
    PriorityCode,
    date_to_compact,
    time_to_compact,
)
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
from validator.engine.fares.decide import CardState, Decision, FareRules, ProductKind
from validator.engine.session import SecureSession

DEFAULT_SERVICE_PROVIDER = 3  # written in EventServiceProvider (3 = RATP on Navigo, 2.5)
LOCATION_MASK = 0xFFFF  # EventLocationId is 16 bits (section 2.5)


def _contract_list(data: bytes) -> tuple[BestContract, ...]:
    return tuple(decode_contract_list(data))


@dataclass
class _TapNotes:
    """What the reads learnt that write needs: the card's network, list and carnets."""

    network_id: int | None
    best: list[BestContract]
    priorities: tuple[int, int, int, int]
    carnets: set[int] = field(default_factory=set)


class IntercodeLayout:
    """Environment in the Open, event log, contract list, candidate contracts, counters."""

    name = "intercode"
    open_read = (SFI_ENVIRONMENT, 1)
    event_sfi = SFI_EVENTS

    def __init__(
        self,
        *,
        transport_mode: int = TransportMode.METRO,
        service_provider: int = DEFAULT_SERVICE_PROVIDER,
        tariffs: Mapping[int, int] | None = None,
    ) -> None:
        """``tariffs`` maps a card's ContractTariff to a fares tariff (default: the same)."""
        self.transport_mode = transport_mode
        self.service_provider = service_provider
        self.tariffs = dict(tariffs or {})
        self._notes: WeakKeyDictionary[SecureSession, _TapNotes] = WeakKeyDictionary()
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

        The head's event counts as a title-holder's event (version 1) whenever the card holds
        one: recovery and anti-passback are decided on it before the contract list is read."""
        env = self._environment(open_record)
        count = EVENT_LOG_RECORDS if history else 1
        events = session.read_records(SFI_EVENTS, 1, count=count)
        last = IntercodeEvent.decode(events.get(1, b""))
        self._notes[session] = _TapNotes(env.network_id, [], (0, 0, 0, 0))
        return CardState(
            serial=image.serial,
            environment=Environment(
                version=1 if env.usable else 0,
                application_number=0,
                issuing_date=EN1545_EPOCH,
                end_date=env.end_date or EN1545_EPOCH,
                holder_company=env.holder_company,
                holder_id=env.holder_id,
            ),
            event=self._neutral_event(last, (0, 0, 0, 0), has_titles=last is not None),
            ratified=image.ratified is not False,
        )

    def read_titles(
        self, session: SecureSession, image: CalypsoCard, head: CardState, rules: FareRules
    ) -> CardState:
        """The contract list, the listed contracts in one Read Records, counters if needed."""
        notes = self._notes[session]
        best: list[BestContract] = []
        if head.environment.version == 1:
            listed = session.read_records(SFI_CONTRACT_LIST, 1)
            best = list(self._contract_list(listed.get(1, b"")))
        priorities = [0] * MAX_CONTRACTS
        ranked = [b.pointer for b in best if 1 <= b.pointer <= MAX_CONTRACTS]
        contracts: dict[int, Contract] = {}
        end_date = head.environment.end_date
        if ranked:
            first, last_record = min(ranked), max(ranked)
            records = session.read_records(SFI_CONTRACTS, first, count=last_record - first + 1)
            for rank, pointer in enumerate(dict.fromkeys(ranked), start=1):
                contract = self._contract(records.get(pointer, b""))
                if not contract.usable or not contract.covers_zone(rules.station.zone):
                    continue
                contracts[pointer] = self._neutral_contract(contract, end_date)
                priorities[pointer - 1] = rank
        notes.best = best
        notes.priorities = (priorities[0], priorities[1], priorities[2], priorities[3])
        counters: dict[int, int] = {}
        if fares.needs_counters(contracts, rules):
            raw = session.read_counters(
                SFI_COUNTERS, record_size=COUNTERS_RECORD_SIZE, count=max(contracts)
            )
            for pointer, neutral in contracts.items():
                product = rules.product(neutral.tariff)
                value = raw.get(pointer, 0)
                if product is not None and product.kind is ProductKind.MULTI_TRIP:
                    notes.carnets.add(pointer)
                    value = carnet_journeys(value)
                counters[pointer] = value
        event = head.event
        if event is not None:
            event = dataclasses.replace(
                event, version=1 if best else 0, priorities=notes.priorities
            )
        return dataclasses.replace(head, event=event, contracts=contracts, counters=counters)

    def write(self, session: SecureSession, decision: Decision) -> None:
        """Decrease the contract's counter, append the event, prune the contract list."""
        notes = self._notes.get(session)
        if notes is None:
            raise RuntimeError("IntercodeLayout.write() before read_head() in this session")
        debit = decision.debit
        event = decision.event
        if debit is not None and debit.purse:
            now = event.stamp if event is not None else dt.datetime.combine(EN1545_EPOCH, dt.time())
            session.sv_debit(
                debit.units,
                date=date_to_compact(now.date()).to_bytes(2, "big"),
                time=time_to_compact(now.time()).to_bytes(2, "big"),
            )
        elif debit is not None:
            units = (
                debit.units << CARNET_COUNT_SHIFT if debit.counter in notes.carnets else debit.units
            )
            session.decrease(SFI_COUNTERS, debit.counter, units)
        if event is None:
            return
        session.append_record(SFI_EVENTS, self.event_record(event, notes.network_id))
        expired = {
            record
            for record, priority in enumerate(event.priorities, start=1)
            if priority == PriorityCode.EXPIRED and notes.priorities[record - 1] != priority
        }
        if expired:
            kept = [b for b in notes.best if b.pointer not in expired]
            session.update_record(SFI_CONTRACT_LIST, 1, encode_contract_list(kept))

    def event_record(self, event: Event, network_id: int | None) -> bytes:
        """The Intercode event record for a decision's neutral event (section 2.5)."""
        interchange = event.event_type == EventType.INTERCHANGE
        transition = Transition.INTERCHANGE_ENTRY if interchange else Transition.ENTRY
        return IntercodeEvent(
            date=event.date,
            time=event.time,
            code=event_code(self.transport_mode, transition),
            location=event.location & LOCATION_MASK,
            contract_pointer=event.contract_used or None,
            network_id=network_id,
            result=EventResult.OK,
            service_provider=self.service_provider,
        ).encode()

    def _neutral_contract(self, contract: IntercodeContract, env_end: dt.date) -> Contract:
        tariff = contract.tariff or 0
        end = contract.end_date or env_end
        return Contract(
            version=1,
            tariff=self.tariffs.get(tariff, tariff),
            sale_date=contract.sale_date or EN1545_EPOCH,
            validity_end_date=end,
        )

    @staticmethod
    def _neutral_event(
        last: IntercodeEvent | None, priorities: tuple[int, int, int, int], *, has_titles: bool
    ) -> Event:
        """The newest event with priorities from the contract list (version 0: no title)."""
        version = 1 if has_titles else 0
        if last is None:
            return Event(version, EN1545_EPOCH, dt.time(), 0, 0, priorities)
        interchange = last.transition == Transition.INTERCHANGE_ENTRY
        return Event(
            version=version,
            date=last.date,
            time=last.time,
            location=last.location or 0,
            contract_used=last.contract_pointer or 0,
            priorities=priorities,
            event_type=EventType.INTERCHANGE if interchange else EventType.ENTRY,
        )
