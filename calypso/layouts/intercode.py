# SPDX-License-Identifier: Apache-2.0
"""The Intercode / EN 1545 layout of real networks: file map and typed record views.

Records are bit structures (calypso-data-model 2); ``calypso.en1545.tables`` describes them
and ``calypso.en1545.codec`` reads and writes them. This module names the files (1.3 B) and
gives the values the validator works with: the environment's network and end date, the best
contracts list, contracts' tariff and validity, the newest event, carnet counters (2.6).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from calypso.en1545.codec import Decoded, decode, encode
from calypso.en1545.codes import Transition
from calypso.en1545.contracts import CONTRACT_FF, contract_structure, contract_type
from calypso.en1545.schema import Structure
from calypso.en1545.tables import CONTRACT, CONTRACT_LIST, COUNTERS, ENVIRONMENT, EVENT
from calypso.en1545.types import date_from_raw, time_from_raw
from calypso.frozen import fast_init

# File map of a Navigo-like card (section 1.3 B; simulated counters 1.3 C / 1.4).
SFI_ENVIRONMENT = 0x07
SFI_EVENTS = 0x08
SFI_CONTRACTS = 0x09
SFI_CONTRACTS_2 = 0x06  # contracts 5-8 (CD97 structure 2: pointer p >= 5 is record p - 4)
SFI_CONTRACT_LIST = 0x1E
SFI_COUNTERS = 0x19
SFI_SPECIAL_EVENTS = 0x1D
EVENT_LOG_RECORDS = 3
CONTRACT_RECORDS = 4
COUNTERS_RECORD_SIZE = 27  # 9 x 3-byte counters (section 1.3 B)
CARNET_COUNT_SHIFT = 18  # counter = 6-bit journeys left << 18 | 18-bit first stamp (2.6)


@fast_init
@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the layout's map: what it is, where, how many records, how to decode."""

    name: str
    sfi: int
    lid: int
    records: int
    structure: Structure
    record_size: int = 29


FILES = (
    FileEntry("environment", SFI_ENVIRONMENT, 0x2001, 1, ENVIRONMENT),
    FileEntry("event_log", SFI_EVENTS, 0x2010, EVENT_LOG_RECORDS, EVENT),
    FileEntry("contract_list", SFI_CONTRACT_LIST, 0x2050, 1, CONTRACT_LIST),
    FileEntry("contracts_1", SFI_CONTRACTS, 0x2020, CONTRACT_RECORDS, CONTRACT),
    FileEntry("contracts_2", SFI_CONTRACTS_2, 0x2030, CONTRACT_RECORDS, CONTRACT),
    FileEntry("counters", SFI_COUNTERS, 0x2069, 1, COUNTERS, COUNTERS_RECORD_SIZE),
    FileEntry("special_events", SFI_SPECIAL_EVENTS, 0x2040, 3, EVENT),
)


def structure_for(sfi: int) -> Structure | None:
    """The structure of the records of file ``sfi`` in this layout."""
    return next((f.structure for f in FILES if f.sfi == sfi), None)


@fast_init
@dataclass(frozen=True, slots=True)
class IntercodeEnvironment:
    """What the validator needs from the environment + holder record (section 2.2)."""

    version: int
    network_id: int | None
    end_date: dt.date | None
    holder_company: int
    holder_id: int
    decoded: Decoded

    @property
    def usable(self) -> bool:
        """An Intercode I/II application with a network and an end date, read in full."""
        return (
            self.decoded.truncated is None
            and self.version != 0
            and self.version >> 3 in (0, 1)
            and self.network_id is not None
            and self.end_date is not None
        )

    @classmethod
    def decode(cls, data: bytes) -> IntercodeEnvironment:
        """Decode an environment record; missing fields are None (or 0 for the holder)."""
        d = decode(ENVIRONMENT, data)
        end = d.get("EnvApplicationValidityEndDate")
        return cls(
            version=d.get("EnvApplicationVersionNumber") or 0,
            network_id=d.get("EnvNetworkId"),
            end_date=date_from_raw(end) if end is not None else None,
            holder_company=d.get("HolderCompany") or 0,
            holder_id=d.get("HolderIdNumber") or 0,
            decoded=d,
        )


@fast_init
@dataclass(frozen=True, slots=True)
class BestContract:
    """One entry of the contract list (section 2.4)."""

    pointer: int
    tariff: int | None = None
    network_id: int | None = None

    @property
    def contract_type(self) -> int | None:
        """The contract type: bits 4-11 of BestContractTariff (Metrodroid's reading)."""
        return contract_type(self.tariff)

    @property
    def record(self) -> tuple[int, int] | None:
        """(SFI, record) of the contract it points at: 1-4 in 09h, 5-8 in 06h (CD97
        structure 2, section 2.4); None past 8."""
        if 1 <= self.pointer <= CONTRACT_RECORDS:
            return SFI_CONTRACTS, self.pointer
        if CONTRACT_RECORDS < self.pointer <= 2 * CONTRACT_RECORDS:
            return SFI_CONTRACTS_2, self.pointer - CONTRACT_RECORDS
        return None


def decode_contract_list(data: bytes) -> list[BestContract]:
    """The best contracts in list order (the card's preference), those with a pointer."""
    d = decode(CONTRACT_LIST, data)
    return [
        BestContract(
            item["BestContractPointer"],
            item.get("BestContractTariff"),
            item.get("BestContractNetworkId"),
        )
        for item in d.values.get("BestContracts", [])
        if "BestContractPointer" in item
    ]


def encode_contract_list(entries: Sequence[BestContract]) -> bytes:
    """A contract list record from its entries."""
    items = []
    for entry in entries:
        item = {"BestContractPointer": entry.pointer}
        if entry.tariff is not None:
            item["BestContractTariff"] = entry.tariff
        if entry.network_id is not None:
            item["BestContractNetworkId"] = entry.network_id
        items.append(item)
    return encode(CONTRACT_LIST, {"BestContracts": items})


@fast_init
@dataclass(frozen=True, slots=True)
class IntercodeContract:
    """What the validator needs from a contract record, in any of its structures (2.3): the
    generic FF layout, the common format, types 20h and 46h (calypso.en1545.contracts)."""

    tariff: int | None
    status: int | None
    start_date: dt.date | None
    end_date: dt.date | None
    sale_date: dt.date | None
    zones: int | None  # ContractValidityZones bitmap (bit 0 = zone 1), 8 or 16 bits
    decoded: Decoded
    contract_type: int | None = None  # from the contract list; None: read as FF
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    journeys: int | None = None  # ContractValidityJourneys
    sold: int | None = None  # ContractSold: units sold on the counter
    debit_sold: int | None = None  # ContractDebitSold: units one journey debits
    linked: int | None = None  # ContractLinkedContract: the contract whose counter it shares
    network_id: int | None = None  # ContractNetworkId (FF only)

    @property
    def usable(self) -> bool:
        """Read in full, with a tariff, and a status that allows a validation (0 or 1)."""
        return (
            self.decoded.truncated is None
            and not self.decoded.empty
            and self.tariff is not None
            and self.status in (None, 0x00, 0x01)
        )

    @property
    def zone_list(self) -> list[int] | None:
        """The zones it is valid in, 1 first (None: no zone list, valid everywhere)."""
        if self.zones is None:
            return None
        field = self.decoded.structure.field("ContractValidityZones")
        width = field.bits if field is not None else 8
        return [zone + 1 for zone in range(width) if self.zones >> zone & 1]

    def covers_zone(self, zone: int) -> bool:
        """Whether the contract is valid in ``zone`` (no zone list: everywhere)."""
        zones = self.zone_list
        return zones is None or zone in zones

    @property
    def read_as_ff(self) -> bool:
        """Whether it was read with the generic FF layout."""
        return self.decoded.structure is CONTRACT_FF

    @classmethod
    def decode(cls, data: bytes, contract_type: int | None = None) -> IntercodeContract:
        """Decode a contract record with the structure of its contract type.

        A contract the list's type does not read (no ContractTariff) that the FF layout reads
        cleanly (in full, nothing after it) is read as FF: contract lists written without the
        type (this project's Navigo-like card before issue 18 wrote types 01h-03h over FF
        contracts) still read as their issuer meant. A genuine common-format contract has its
        tariff, and is never read as FF."""
        d = decode(contract_structure(contract_type), data)
        if d.get("ContractTariff") is None and d.structure is not CONTRACT_FF:
            generic = decode(CONTRACT_FF, data)
            clean = generic.truncated is None and not generic.unknown and not generic.rest[0]
            if clean and generic.get("ContractTariff") is not None:
                d = generic

        def date(name: str) -> dt.date | None:
            raw = d.get(name)
            return date_from_raw(raw) if raw is not None else None

        def time(name: str) -> dt.time | None:
            raw = d.get(name)
            return time_from_raw(raw) if raw is not None else None

        return cls(
            tariff=d.get("ContractTariff"),
            status=d.get("ContractStatus"),
            start_date=date("ContractValidityStartDate"),
            end_date=date("ContractValidityEndDate"),
            sale_date=date("ContractSaleDate"),
            zones=d.get("ContractValidityZones"),
            decoded=d,
            contract_type=contract_type,
            start_time=time("ContractValidityStartTime"),
            end_time=time("ContractValidityEndTime"),
            journeys=d.get("ContractValidityJourneys"),
            sold=d.get("ContractSold"),
            debit_sold=d.get("ContractDebitSold"),
            linked=d.get("ContractLinkedContract"),
            network_id=d.get("ContractNetworkId"),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class IntercodeEvent:
    """The fields of an event record the validator reads and writes (section 2.5)."""

    date: dt.date
    time: dt.time
    code: int | None = None
    location: int | None = None
    contract_pointer: int | None = None
    network_id: int | None = None
    result: int | None = None
    service_provider: int | None = None

    @property
    def stamp(self) -> dt.datetime:
        """Date and time as one naive local datetime."""
        return dt.datetime.combine(self.date, self.time)

    @property
    def transition(self) -> int | None:
        """The EventCode low nibble."""
        return self.code & 0xF if self.code is not None else None

    @classmethod
    def decode(cls, data: bytes) -> IntercodeEvent | None:
        """The event, or None for an empty or unreadable record."""
        d = decode(EVENT, data)
        date, time = d.get("EventDateStamp"), d.get("EventTimeStamp")
        if d.empty or date is None or time is None:
            return None
        return cls(
            date=date_from_raw(date),
            time=time_from_raw(time),
            code=d.get("EventCode"),
            location=d.get("EventLocationId"),
            contract_pointer=d.get("EventContractPointer"),
            network_id=d.get("EventNetworkId"),
            result=d.get("EventResult"),
            service_provider=d.get("EventServiceProvider"),
        )

    def encode(self) -> bytes:
        """The 29-byte event record with the fields that are set."""
        values: dict[str, object] = {"EventDateStamp": self.date, "EventTimeStamp": self.time}
        optional = {
            "EventNetworkId": self.network_id,
            "EventCode": self.code,
            "EventResult": self.result,
            "EventServiceProvider": self.service_provider,
            "EventLocationId": self.location,
            "EventContractPointer": self.contract_pointer,
        }
        values.update({k: v for k, v in optional.items() if v is not None})
        return encode(EVENT, values)


def event_code(mode: int, transition: Transition) -> int:
    """EventCode: transport mode in the high nibble, transition in the low one."""
    return (mode & 0xF) << 4 | transition


def counter_values(data: bytes) -> dict[int, int]:
    """Raw 24-bit counters of a counters record, by number from 1 (section 1.4)."""
    d = decode(COUNTERS, data)
    return {
        n: (c["CounterContractCount"] << CARNET_COUNT_SHIFT) | c["CounterRelativeFirstStamp15mn"]
        for n in range(1, 10)
        if len(c := d.values.get(f"Counter{n}", {})) == 2
    }


def carnet_journeys(raw: int) -> int:
    """Journeys left on a carnet counter: the top 6 of its 24 bits (section 2.6)."""
    return raw >> CARNET_COUNT_SHIFT
