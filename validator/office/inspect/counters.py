# SPDX-License-Identifier: Apache-2.0
"""Counters as ``inspect`` shows them: each one decoded by the contract that points at it.

In the Intercode layout counter n belongs to contract n of the contracts file (calypso-data-model
1.4, as ``layouts.intercode`` reads it). What the counter holds depends on that contract's
product, looked up by its ContractTariff in the fare rules:

* a carnet (``multi_trip``): 6-bit journeys left and an 18-bit first stamp (section 2.6);
* stored value: a plain 24-bit amount;
* no contract, or a tariff the rules do not sell: the raw 24-bit value, nothing more.

A counters record shorter than one counter (3 bytes) is shown as such, with its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from calypso.layouts.intercode import CARNET_COUNT_SHIFT
from validator.engine.fares.decide import FareRules, ProductKind

COUNTER_BYTES = 3
FIRST_STAMP_MASK = (1 << CARNET_COUNT_SHIFT) - 1


@dataclass(frozen=True, slots=True)
class CounterReading:
    """One counter: its raw value and what the contract pointing at it makes of it."""

    number: int
    raw: int
    contract: int | None = None  # the contract record that points at it
    tariff: int | None = None
    kind: ProductKind | None = None

    def to_json(self) -> dict[str, Any]:
        """The counter as JSON: number, raw value, contract, kind and the decoded value."""
        out: dict[str, Any] = {
            "counter": self.number,
            "raw": self.raw,
            "contract": self.contract,
            "tariff": self.tariff,
            "kind": self.kind.value if self.kind is not None else None,
        }
        if self.kind is ProductKind.MULTI_TRIP:
            out["journeys"] = self.raw >> CARNET_COUNT_SHIFT
            out["first_stamp_15mn"] = self.raw & FIRST_STAMP_MASK
        elif self.kind is ProductKind.STORED_VALUE:
            out["amount"] = self.raw
        return out

    def text(self) -> str:
        """One line for the tree view."""
        owner = f"contract {self.contract}, tariff {self.tariff}" if self.contract else ""
        if self.kind is ProductKind.MULTI_TRIP:
            journeys, stamp = self.raw >> CARNET_COUNT_SHIFT, self.raw & FIRST_STAMP_MASK
            return f"carnet: {journeys} journeys, first stamp {stamp} x 15 min ({owner})"
        if self.kind is ProductKind.STORED_VALUE:
            return f"stored value: amount {self.raw} ({owner})"
        if self.contract is not None:
            return f"raw value {self.raw} ({owner}: {self._why()})"
        return f"raw value {self.raw} (no contract points at it)"

    def _why(self) -> str:
        if self.kind is None:
            return "a tariff the fare rules do not sell"
        return f"{self.kind.value} uses no counter"


@dataclass(frozen=True, slots=True)
class CountersRecord:
    """A counters record read: its counters, or a record too short to hold one."""

    counters: tuple[CounterReading, ...]
    short: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON: the counters, or ``short_record`` with the record's length and bytes."""
        if self.short is not None:
            return {"short_record": {"length": len(self.short), "hex": self.short.hex().upper()}}
        return {"counters": [c.to_json() for c in self.counters]}

    def lines(self) -> list[str]:
        """The lines of the tree view."""
        if self.short is not None:
            size = len(self.short)
            return [
                f"short record: {size} byte{'s' if size != 1 else ''} "
                f"{self.short.hex().upper()}, less than one {COUNTER_BYTES}-byte counter"
            ]
        return [f"Counter{c.number}: {c.text()}" for c in self.counters]


def contract_tariffs(contract_records: Sequence[tuple[int, dict[str, int]]]) -> dict[int, int]:
    """Contract number -> ContractTariff, from (record number, decoded leaves) pairs."""
    out: dict[int, int] = {}
    for number, leaves in contract_records:
        tariff = leaves.get("ContractTariff")
        if tariff is not None:
            out[number] = tariff
    return out


def read_counters(data: bytes, tariffs: dict[int, int], rules: FareRules | None) -> CountersRecord:
    """Decode a counters record: counter n by contract n's product (module docstring)."""
    if len(data) < COUNTER_BYTES:
        return CountersRecord((), short=data)
    readings = []
    for index in range(len(data) // COUNTER_BYTES):
        number = index + 1
        raw = int.from_bytes(data[index * COUNTER_BYTES : number * COUNTER_BYTES], "big")
        tariff = tariffs.get(number)
        product = rules.product(tariff) if rules is not None and tariff is not None else None
        kind = product.kind if product is not None else None
        contract = number if tariff is not None else None
        readings.append(CounterReading(number, raw, contract, tariff, kind))
    return CountersRecord(tuple(readings))
