# SPDX-License-Identifier: Apache-2.0
"""The Keyple demo layout for the procedure (calypso-data-model section 3): reads and writes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from calypso.card_image import CalypsoCard
from calypso.errors import CardResponseError
from calypso.layouts.demo import (
    SFI_CONTRACTS,
    SFI_COUNTERS,
    SFI_ENVIRONMENT,
    SFI_EVENTS,
    Contract,
    Environment,
    Event,
    date_to_compact,
    time_to_compact,
)
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import CardState, Decision, FareRules
from validator.engine.session import SecureSession

EVENT_LOG_RECORDS = 3


class DemoLayout:
    """Environment in the Open, the event log, candidate contracts, counters when needed."""

    name = "demo"
    open_read = (SFI_ENVIRONMENT, 1)
    event_sfi = SFI_EVENTS

    def __init__(self) -> None:
        self._environment: Callable[[bytes], Environment] = Environment.decode
        self._contract: Callable[[bytes], Contract] = Contract.decode

    def cache_records(self, size: int) -> None:
        """Keep ``size`` decoded Environment and Contract records by their bytes (replay: a
        card's records repeat across its taps). Decoding is pure: the results are the same."""
        self._environment = functools.lru_cache(size)(Environment.decode)
        self._contract = functools.lru_cache(size)(Contract.decode)

    def read_head(
        self,
        session: SecureSession,
        image: CalypsoCard,
        open_record: bytes,
        *,
        history: bool = True,
    ) -> CardState:
        """The environment (read in the Open) and the event log: one APDU."""
        environment = self._environment(open_record)
        # The newest event decides; the older ones (``history``) let the processor recognise
        # an interrupted Close of its own on the card (processor.TapProcessor._resolve).
        count = EVENT_LOG_RECORDS if history else 1
        events = session.read_records(SFI_EVENTS, 1, count=count)
        newest = events.get(1)
        if newest is None:
            raise CardResponseError("Read Records", "the event log gave no record 1")
        return CardState(
            serial=image.serial,
            environment=environment,
            event=Event.decode(newest),
            ratified=image.ratified is not False,
        )

    def read_titles(
        self, session: SecureSession, image: CalypsoCard, head: CardState, rules: FareRules
    ) -> CardState:
        """The candidate contracts in one Read Records, the counters only when needed."""
        contracts: dict[int, Contract] = {}
        counters: dict[int, int] = {}
        wanted = fares.candidate_contracts(head.event) if head.environment.version == 1 else []
        if wanted:
            first, last = min(wanted), max(wanted)
            records = session.read_records(SFI_CONTRACTS, first, count=last - first + 1)
            contract = self._contract
            contracts = {n: contract(records[n]) for n in wanted if n in records}
            if fares.needs_counters(contracts, rules):
                # Counter n belongs to contract n: read up to the last contract read.
                counters = session.read_counters(SFI_COUNTERS, count=max(contracts))
        return dataclasses.replace(head, contracts=contracts, counters=counters)

    def write(self, session: SecureSession, decision: Decision) -> None:
        """Decrease the contract's counter, then append the new event."""
        debit = decision.debit
        if debit is not None and debit.purse:
            now = decision.event.stamp if decision.event is not None else None
            date = date_to_compact(now.date()) if now is not None else 0
            time = time_to_compact(now.time()) if now is not None else 0
            session.sv_debit(
                debit.units, date=date.to_bytes(2, "big"), time=time.to_bytes(2, "big")
            )
        elif debit is not None:
            session.decrease(SFI_COUNTERS, debit.counter, debit.units)
        if decision.event is not None:
            session.append_record(SFI_EVENTS, decision.event.encode())
