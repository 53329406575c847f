# SPDX-License-Identifier: Apache-2.0
"""Intercode contract structures, chosen by the contract type of the contract list.

A contract record does not say its own structure: its entry in the contract list does, in the
contract type ``(BestContractTariff >> 4) & 0xFF`` (calypso-data-model 2.3, 2.4):

* FFh: the generic layout Navigo writes (``tables.CONTRACT``, section 2.3);
* any other type: the "common format", a bitmap of ContractProvider, ContractTariff,
  ContractSerialNumber, ContractPassengerClass, ContractValidityInfo (start and end dates),
  ContractStatus, then ContractData, whose content is the network's;
* 20h: the common format whose ContractData is a bitmap of an origin/via/destination container,
  a second origin/destination container, a 16-bit zone mask, sale, payment, passenger total,
  period and sold/debit-sold containers, the vehicle classes allowed and a linked contract;
* 46h: the same, then the validity start and end times, the end of inhibition and the
  validity-limit dates, a geographic line, the journeys and the sale's secure device.

Public descriptions these tables are written from (facts only, no code): Metrodroid's
IntercodeSubscription (subFieldsTypeFF, commonFormat, subFieldsType20, subFieldsType46 and the
choice by type, in metrodroid/metrodroid transit/intercode), its contract-type reading of the
contract list in IntercodeTransitData, and section 2.3 of the reference for the FF layout (cardpeek
c250.lua, Metroflip). Field names follow the FF table where the meaning is the same
(ContractValidityStartDate, ContractValidityZones, ContractValidityJourneys...), so that one
reading of a contract serves every structure.
"""

from __future__ import annotations

from calypso.en1545 import codes
from calypso.en1545.schema import Bitmap, Container, Field, Node, Structure, fields
from calypso.en1545.tables import CONTRACT
from calypso.en1545.types import Kind

TYPE_FF = 0xFF  # Navigo's generic layout
TYPE_20 = 0x20
TYPE_46 = 0x46


def contract_type(best_contract_tariff: int | None) -> int | None:
    """The contract type a contract-list entry gives: bits 4-11 of BestContractTariff."""
    return (best_contract_tariff >> 4) & 0xFF if best_contract_tariff is not None else None


def _common(extra: Node) -> Bitmap:
    """The common format: identity, tariff, class, validity dates, status, then ``extra``."""
    return Bitmap(
        None,
        (
            Field("ContractProvider", 8),
            Field("ContractTariff", 16),
            Field("ContractSerialNumber", 32),
            Field("ContractPassengerClass", 8),
            Bitmap(
                "ContractValidityInfo",
                fields(
                    ("ContractValidityStartDate", 14, Kind.DATE),
                    ("ContractValidityEndDate", 14, Kind.DATE),
                ),
            ),
            Field("ContractStatus", 8, meaning=codes.contract_status),
            extra,
        ),
    )


# ContractData of type 20h, in bitmap order (bit 0 first).
_DATA_20: tuple[Node, ...] = (
    Container(
        "ContractDataOriginViaDestination",
        fields(("ContractOrigin1", 16), ("ContractVia1", 16), ("ContractDestination1", 16)),
    ),
    Container(
        "ContractDataOriginDestination2",
        fields(("ContractOrigin2", 16), ("ContractDestination2", 16)),
    ),
    Field("ContractValidityZones", 16, Kind.ZONES),  # zones 1..16
    Container(
        "ContractDataSale",
        fields(
            ("ContractSaleDate", 14, Kind.DATE),
            ("ContractSaleDevice", 16),
            ("ContractSaleAgent", 8),
        ),
    ),
    Container(
        "ContractDataPayment",
        fields(
            ("ContractPayMethod", 11),
            ("ContractPriceAmount", 16, Kind.AMOUNT),
            ("ContractReceiptDelivered", 1),
        ),
    ),
    Field("ContractPassengerTotal", 6),
    Container(
        "ContractDataPeriod",
        fields(("ContractEndPeriod", 14, Kind.DATE), ("ContractSoldPeriod", 6)),
    ),
    # Units sold on the counter, and the units one journey debits (Metrodroid: journeys left
    # = counter / debit).
    Container("ContractDataSoldUnits", fields(("ContractSold", 8), ("ContractDebitSold", 5))),
    Field("ContractVehicleClassAllowed", 4),
    Field("ContractLinkedContract", 5),  # a contract pointer
)
# Type 46h adds, after the fields of 20h:
_DATA_46_MORE: tuple[Node, ...] = fields(
    ("ContractValidityStartTime", 11, Kind.TIME),
    ("ContractValidityEndTime", 11, Kind.TIME),
    ("ContractEndInhibitionDate", 14, Kind.DATE),
    ("ContractValidityLimitDate", 14, Kind.DATE),
    ("ContractGeoLine", 28),
    ("ContractValidityJourneys", 16),
    ("ContractSaleSecureDevice", 32),
)

CONTRACT_FF = CONTRACT
CONTRACT_COMMON = Structure(
    "contract",
    _common(Field("ContractData", 0, Kind.UNKNOWN)),  # the network's: unspecified here
    description="Contract (SFI 09h/06h), common format (contract type other than FFh/20h/46h)",
)
CONTRACT_20 = Structure(
    "contract",
    _common(Bitmap("ContractData", _DATA_20)),
    description="Contract (SFI 09h/06h), contract type 20h: common format + network data",
)
CONTRACT_46 = Structure(
    "contract",
    _common(Bitmap("ContractData", _DATA_20 + _DATA_46_MORE)),
    description="Contract (SFI 09h/06h), contract type 46h: common format + network data",
)
BY_TYPE = {TYPE_FF: CONTRACT_FF, TYPE_20: CONTRACT_20, TYPE_46: CONTRACT_46}


def contract_structure(kind: int | None) -> Structure:
    """The structure of a contract of contract type ``kind`` (None: no list entry says, and
    the generic FF layout is read, as before the list is known)."""
    if kind is None:
        return CONTRACT_FF
    return BY_TYPE.get(kind, CONTRACT_COMMON)


def structure_label(kind: int | None) -> str:
    """How a contract's structure is named: "FFh", "20h", "46h" or "common format (type 05h)"."""
    if kind is None or kind == TYPE_FF:
        return "FFh"
    if kind in BY_TYPE:
        return f"{kind:02X}h"
    return f"common format (type {kind:02X}h)"
