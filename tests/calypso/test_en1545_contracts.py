# SPDX-License-Identifier: Apache-2.0
"""Intercode contract structures (FFh, 20h, 46h, common format): chosen by the contract list's
type, decoded and encoded from their tables, bit for bit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from test_en1545_roundtrip import values_for

from calypso.en1545 import Structure, decode, encode
from calypso.en1545.contracts import (
    CONTRACT_20,
    CONTRACT_46,
    CONTRACT_COMMON,
    CONTRACT_FF,
    contract_structure,
    contract_type,
    structure_label,
)
from calypso.layouts.intercode import BestContract, IntercodeContract

STRUCTURES = {"FF": CONTRACT_FF, "20": CONTRACT_20, "46": CONTRACT_46, "common": CONTRACT_COMMON}

# One value for every field of the common format, and of the ContractData of 20h and 46h.
COMMON: dict[str, Any] = {
    "ContractProvider": 16,
    "ContractTariff": 0x6601,
    "ContractSerialNumber": 123456,
    "ContractPassengerClass": 2,
    "ContractValidityInfo": {
        "ContractValidityStartDate": "2026-01-01",
        "ContractValidityEndDate": "2026-12-31",
    },
    "ContractStatus": 1,
}
DATA_20: dict[str, Any] = {
    "ContractDataOriginViaDestination": {
        "ContractOrigin1": 1201,
        "ContractVia1": 1202,
        "ContractDestination1": 1203,
    },
    "ContractDataOriginDestination2": {"ContractOrigin2": 1301, "ContractDestination2": 1302},
    "ContractValidityZones": [1, 2, 9, 16],
    "ContractDataSale": {
        "ContractSaleDate": "2025-12-20",
        "ContractSaleDevice": 4711,
        "ContractSaleAgent": 3,
    },
    "ContractDataPayment": {
        "ContractPayMethod": 0x90,
        "ContractPriceAmount": 1690,
        "ContractReceiptDelivered": 1,
    },
    "ContractPassengerTotal": 1,
    "ContractDataPeriod": {"ContractEndPeriod": "2026-06-30", "ContractSoldPeriod": 6},
    "ContractDataSoldUnits": {"ContractSold": 20, "ContractDebitSold": 2},
    "ContractVehicleClassAllowed": 3,
    "ContractLinkedContract": 2,
}
DATA_46: dict[str, Any] = {
    **DATA_20,
    "ContractValidityStartTime": "06:30",
    "ContractValidityEndTime": "21:15",
    "ContractEndInhibitionDate": "2026-02-01",
    "ContractValidityLimitDate": "2026-03-31",
    "ContractGeoLine": 0xABCDEF1,
    "ContractValidityJourneys": 10,
    "ContractSaleSecureDevice": 0x5AFE0001,
}


class TestChoice:
    """The contract list's type chooses the structure."""

    @pytest.mark.parametrize(
        ("tariff", "kind", "structure"),
        [
            (0x0FF1, 0xFF, CONTRACT_FF),
            (0x1200, 0x20, CONTRACT_20),
            (0x0460, 0x46, CONTRACT_46),
            (0x6601, 0x60, CONTRACT_COMMON),
            (0x0010, 0x01, CONTRACT_COMMON),
        ],
    )
    def test_type_is_bits_4_to_11_of_the_tariff(
        self, tariff: int, kind: int, structure: Structure
    ) -> None:
        """(BestContractTariff >> 4) & FFh names FFh, 20h, 46h, or the common format."""
        assert contract_type(tariff) == kind
        assert BestContract(1, tariff).contract_type == kind
        assert contract_structure(kind) is structure

    def test_no_entry_reads_the_generic_layout(self) -> None:
        """Without a list entry the contract is read as FFh, as before its type was known."""
        assert contract_structure(None) is CONTRACT_FF
        assert structure_label(None) == "FFh"
        assert structure_label(0x05) == "common format (type 05h)"


class TestRoundTrip:
    """Each structure decodes what it encodes, bit for bit."""

    @pytest.mark.parametrize(
        ("structure", "values"),
        [
            (CONTRACT_COMMON, COMMON),
            (CONTRACT_20, {**COMMON, "ContractData": DATA_20}),
            (CONTRACT_46, {**COMMON, "ContractData": DATA_46}),
        ],
        ids=["common", "20h", "46h"],
    )
    def test_every_field_round_trips_with_readable_values(
        self, structure: Structure, values: dict[str, Any]
    ) -> None:
        """Every field set (longer than a record): ISO dates, HH:MM times and zone lists come
        back as written."""
        record = encode(structure, values, size=None)
        decoded = decode(structure, record)
        assert decoded.complete and decoded.rest[0] == 0
        assert decoded.to_json()["fields"] == values
        assert decoded.encode() == record

    @pytest.mark.parametrize("name", list(STRUCTURES))
    def test_generated_records_round_trip(self, name: str) -> None:
        """Random values of every structure encode and decode back to the same values and bits."""
        structure = STRUCTURES[name]

        @settings(max_examples=150, deadline=None)
        @given(values=values_for(structure.root))
        def check(values: dict[str, Any]) -> None:
            raw = encode(structure, values, size=None)
            decoded = decode(structure, raw)
            assert decoded.truncated is None
            assert decoded.values == values
            assert decoded.encode() == raw

        check()

    def test_46h_fits_a_record_with_its_data(self) -> None:
        """A 46h contract with origin, zones, sale, sold units, times and journeys: 29 bytes."""
        values = {
            **COMMON,
            "ContractData": {
                "ContractValidityZones": [1, 2, 3],
                "ContractDataSoldUnits": {"ContractSold": 10, "ContractDebitSold": 1},
                "ContractValidityStartTime": "05:00",
                "ContractValidityEndTime": "23:59",
                "ContractValidityJourneys": 10,
            },
        }
        assert len(encode(CONTRACT_46, values)) == 29


class TestWrongTable:
    """Why the type matters: a common-format contract read as FFh is garbage."""

    def test_common_format_read_as_ff_loses_provider_tariff_and_dates(self) -> None:
        """The FF table reads a wrong provider, no tariff and no such validity dates."""
        record = encode(CONTRACT_COMMON, COMMON)
        right = decode(CONTRACT_COMMON, record)
        wrong = decode(CONTRACT_FF, record)
        assert right.get("ContractTariff") == 0x6601 and right.get("ContractProvider") == 16
        assert wrong.get("ContractProvider") != 16
        assert wrong.get("ContractTariff") != 0x6601
        assert (
            wrong.to_json()["fields"].get("ContractValidityInfo") != COMMON["ContractValidityInfo"]
        )

    def test_the_layout_reads_each_type_with_its_table(self) -> None:
        """IntercodeContract takes the list's type: tariff, dates, zones, sold units, times."""
        data = {
            name: DATA_46[name]
            for name in (
                "ContractValidityZones",
                "ContractDataSoldUnits",
                "ContractLinkedContract",
                "ContractValidityStartTime",
                "ContractValidityEndTime",
                "ContractValidityJourneys",
            )
        }
        record = encode(CONTRACT_46, {**COMMON, "ContractData": data})
        contract = IntercodeContract.decode(record, 0x46)
        assert (contract.tariff, contract.status) == (0x6601, 1)
        assert (contract.start_date, contract.end_date) == (
            dt.date(2026, 1, 1),
            dt.date(2026, 12, 31),
        )
        assert (contract.start_time, contract.end_time) == (dt.time(6, 30), dt.time(21, 15))
        assert contract.zone_list == [1, 2, 9, 16]
        assert (contract.sold, contract.debit_sold, contract.linked) == (20, 2, 2)
        assert contract.journeys == 10 and not contract.read_as_ff

    def test_an_ff_contract_under_a_typeless_list_still_reads_as_ff(self) -> None:
        """A list written without the type (01h over an FF contract) reads the contract as FF;
        a genuine common-format contract is never read as FF."""
        ff = encode(CONTRACT_FF, {"ContractNetworkId": "250901", "ContractTariff": 2})
        assert IntercodeContract.decode(ff, 0x01).read_as_ff
        assert IntercodeContract.decode(ff, 0x01).tariff == 2
        common = encode(CONTRACT_COMMON, COMMON)
        read = IntercodeContract.decode(common, 0x01)
        assert not read.read_as_ff and read.tariff == 0x6601
