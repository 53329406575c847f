# SPDX-License-Identifier: Apache-2.0
"""Intercode contracts as titles, and counters read by the titles that use them. Pure.

Shared by the Intercode layout (validator.engine.layouts.intercode), which reads a card at the
gate, and by ``validator inspect``, which shows each counter as the contract that uses it.

* The contract list (calypso-data-model 2.4) ranks the contracts in its order; its first entry
  for a pointer counts, and a pointer names a record: 1-4 in SFI 09h, 5-8 in SFI 06h. The
  entry's contract type chooses the contract's structure (calypso.en1545.contracts).
* What a title is comes from the fare rules' product for its network and tariff; a tariff the
  rules do not sell is read from the card's own hints (ContractSold / ContractDebitSold or
  ContractValidityJourneys: a number of journeys), else it is "other".
* Counter n belongs to contract n (section 1.4), unless the contract names another one in
  ContractLinkedContract (types 20h and 46h): the two titles then share that counter. A
  journeys title reads it as a carnet on the FF layout (6-bit journeys, 18-bit first stamp,
  section 2.6), as units sold with ContractDebitSold units a journey (Metrodroid's reading:
  journeys = units / debit), else as journeys; a stored-value title as an amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from calypso.en1545 import Decoded, codes
from calypso.en1545.contracts import structure_label
from calypso.en1545.tables import COUNTERS_IN_FILE
from calypso.en1545.types import EN1545_EPOCH
from calypso.layouts.intercode import (
    CARNET_COUNT_SHIFT,
    BestContract,
    IntercodeContract,
    IntercodeEnvironment,
    decode_contract_list,
)
from validator.engine.fares.rules import FareRules, Product, ProductKind
from validator.engine.layouts.states import with_counter
from validator.engine.ticketing.model import (
    CardEnvironment,
    Counter,
    CounterUnit,
    Title,
    TitleKind,
    TitleStatus,
)

VALID_STATUSES = (None, 0x00, 0x01)  # ContractStatus: valid, never used / valid, used (2.3)
KINDS = {
    ProductKind.SEASON_PASS: TitleKind.SEASON_PASS,
    ProductKind.MULTI_TRIP: TitleKind.TRIPS,
    ProductKind.STORED_VALUE: TitleKind.STORED_VALUE,
}


def network_text(raw: int | None) -> str | None:
    """A network id as its digits (BCD country + network, section 2.1): "250901"."""
    return f"{raw:06X}" if raw is not None else None


def environment(env: IntercodeEnvironment) -> CardEnvironment:
    """The environment record in the model."""
    return CardEnvironment(
        valid_until=env.end_date or EN1545_EPOCH,
        network=network_text(env.network_id),
        holder_profile=env.holder_company,
        format_error=None
        if env.usable
        else f"environment (version {env.version}) is not a readable Intercode I/II one",
    )


@dataclass(frozen=True, slots=True)
class CounterReading:
    """How a title reads the counter it uses: which one, in what unit, and its encoding."""

    number: int
    unit: CounterUnit
    shift: int = 0  # a carnet's journeys are the top 6 of the 24 bits (section 2.6)
    per_journey: int = 1  # counter units one journey debits (ContractDebitSold)

    def value(self, raw: int) -> int:
        """What the counter holds, in ``unit``."""
        return (raw >> self.shift) // self.per_journey

    def units(self, count: int) -> int:
        """The counter units ``count`` journeys (or amount units) take."""
        return (count * self.per_journey) << self.shift

    @property
    def form(self) -> str:
        """How the counter is read, in words."""
        if self.shift:
            return "carnet"
        if self.per_journey > 1:
            return f"units sold, {self.per_journey} a journey"
        return "journeys" if self.unit is CounterUnit.JOURNEYS else "amount"


def listed_contracts(best: Iterable[BestContract]) -> dict[int, BestContract]:
    """Pointer -> its first list entry, in list order, for the pointers that name a record."""
    entries: dict[int, BestContract] = {}
    for entry in best:
        if entry.record is not None:
            entries.setdefault(entry.pointer, entry)
    return entries


def readable(contract: IntercodeContract) -> bool:
    """Read in full, not empty, with a tariff: a title (its status is the decision's)."""
    decoded = contract.decoded
    return decoded.truncated is None and not decoded.empty and contract.tariff is not None


def title_kind(contract: IntercodeContract, product: Product | None) -> TitleKind:
    """The rules' product's kind, else what the card's fields say."""
    if product is not None:
        return KINDS[product.kind]
    if contract.debit_sold or contract.journeys:
        return TitleKind.TRIPS
    return TitleKind.OTHER


def counter_reading(
    pointer: int, contract: IntercodeContract, kind: TitleKind
) -> CounterReading | None:
    """How a title of ``kind`` reads its counter (None: it uses none)."""
    number = pointer
    if contract.linked and 1 <= contract.linked <= COUNTERS_IN_FILE:
        number = contract.linked  # a counter shared with the linked contract
    if not 1 <= number <= COUNTERS_IN_FILE:
        return None
    if kind is TitleKind.STORED_VALUE:
        return CounterReading(number, CounterUnit.AMOUNT)
    if kind is not TitleKind.TRIPS:
        return None
    if contract.debit_sold:
        return CounterReading(number, CounterUnit.JOURNEYS, per_journey=contract.debit_sold)
    if contract.read_as_ff:
        return CounterReading(number, CounterUnit.JOURNEYS, shift=CARNET_COUNT_SHIFT)
    return CounterReading(number, CounterUnit.JOURNEYS)


def contract_title(
    pointer: int,
    contract: IntercodeContract,
    rank: int,
    entry: BestContract | None,
    env: CardEnvironment,
    rules: FareRules | None,
) -> Title:
    """Contract ``pointer`` as a title (its counter is added once read)."""
    network = network_text(contract.network_id)
    network = network or network_text(entry.network_id if entry is not None else None)
    network = network or env.network
    tariff = contract.tariff or 0
    product = rules.product(tariff, network) if rules is not None else None
    status = contract.status
    blocked = status not in VALID_STATUSES
    note = ""
    if blocked and status is not None:
        note = codes.contract_status(status) or f"status {status:02X}h"
    zones = contract.zone_list
    return Title(
        pointer=pointer,
        tariff=tariff,
        network=network,
        kind=title_kind(contract, product),
        rank=rank,
        status=TitleStatus.BLOCKED if blocked else TitleStatus.VALID,
        status_note=note,
        valid_from=contract.start_date,
        valid_from_time=contract.start_time,
        valid_until=contract.end_date or env.valid_until,
        valid_until_time=contract.end_time,
        zones=frozenset(zones) if zones is not None else None,
        journeys=contract.journeys,
        period_journeys=contract.decoded.get("ContractValidityPeriodJourneys"),
    )


def contract_titles(
    entries: Mapping[int, BestContract],
    contracts: Mapping[int, IntercodeContract],
    env: CardEnvironment,
    rules: FareRules | None,
) -> tuple[list[Title], dict[int, CounterReading]]:
    """The listed contracts that read as titles, ranked in list order, and how each reads its
    counter (by title pointer)."""
    titles: list[Title] = []
    readings: dict[int, CounterReading] = {}
    for rank, (pointer, entry) in enumerate(entries.items(), start=1):
        contract = contracts.get(pointer)
        if contract is None or not readable(contract):
            continue
        item = contract_title(pointer, contract, rank, entry, env, rules)
        titles.append(item)
        found = counter_reading(pointer, contract, item.kind)
        if found is not None:
            readings[pointer] = found
    return titles, readings


def with_counters(
    titles: Sequence[Title], readings: Mapping[int, CounterReading], raw: Mapping[int, int]
) -> list[Title]:
    """The titles with the counters they read (a shared counter names every title using it)."""
    users: dict[int, list[int]] = {}
    for pointer, each in readings.items():
        users.setdefault(each.number, []).append(pointer)
    out = []
    for item in titles:
        reading = readings.get(item.pointer)
        if reading is not None:
            counter = Counter(
                reading.number,
                reading.unit,
                reading.value(raw.get(reading.number, 0)),
                tuple(users[reading.number]),
            )
            item = with_counter(item, counter)
        out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class CardTitles:
    """An Intercode card's titles read from its records, as the gate reads them (inspect)."""

    environment: CardEnvironment | None
    contracts: dict[int, tuple[Decoded, str]]  # pointer -> the record decoded, its structure
    titles: list[Title]
    readings: dict[int, CounterReading]  # by title pointer


def card_titles(
    environment_record: bytes | None,
    list_record: bytes | None,
    contract_records: Mapping[int, bytes],
    rules: FareRules | None,
) -> CardTitles:
    """The titles of a card read from its records: the environment, the contract list (None:
    none read, and every contract is read as FF in record order) and the contracts by pointer
    (1-8), each decoded with the structure its list entry names."""
    env = (
        environment(IntercodeEnvironment.decode(environment_record))
        if environment_record is not None
        else None
    )
    if list_record is not None:
        best = decode_contract_list(list_record)
    else:
        best = [BestContract(pointer) for pointer in sorted(contract_records)]
    entries = listed_contracts(best)
    decoded = {
        pointer: IntercodeContract.decode(contract_records[pointer], entry.contract_type)
        for pointer, entry in entries.items()
        if pointer in contract_records
    }
    titles, readings = contract_titles(
        entries, decoded, env or CardEnvironment(EN1545_EPOCH), rules
    )
    labels = {
        pointer: (
            contract.decoded,
            "FFh" if contract.read_as_ff else structure_label(contract.contract_type),
        )
        for pointer, contract in decoded.items()
    }
    return CardTitles(env, labels, titles, readings)
