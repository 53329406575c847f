# SPDX-License-Identifier: Apache-2.0
"""Counters as ``inspect`` shows them: each one read by the contracts that use it.

An Intercode card's counters are read as the gate reads them (validator.engine.layouts.
intercode_titles): the contract list names the contracts and their structures; counter n
belongs to contract n unless a contract's ContractLinkedContract names another (a counter
shared by several contracts); what the counter holds depends on the title that uses it, its
kind coming from the fare rules' product for its network and tariff, else from the card:

* a carnet on the FF layout: 6-bit journeys left and an 18-bit first stamp (section 2.6);
* units sold with ContractDebitSold units a journey: journeys left = units / debit;
* journeys, or a stored-value amount: the plain 24-bit value;
* a contract that uses no counter (a season pass), or no contract: the raw value, nothing more.

A counters record shorter than one counter (3 bytes) is shown as such, with its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from validator.engine.layouts.intercode_titles import CardTitles, CounterReading
from validator.engine.ticketing.model import CounterUnit, Title

COUNTER_BYTES = 3
FIRST_STAMP_MASK = (1 << 18) - 1


@dataclass(frozen=True, slots=True)
class CounterUse:
    """A contract that reads a counter (or owns it without using it), and how."""

    title: Title
    structure: str  # "FFh", "20h", "46h", "common format (type ..)"
    reading: CounterReading | None = None  # None: the contract uses no counter

    def to_json(self, raw: int) -> dict[str, Any]:
        """The use as JSON: the contract, its tariff and network, and the decoded value."""
        out: dict[str, Any] = {
            "contract": self.title.pointer,
            "tariff": self.title.tariff,
            "network": self.title.network,
            "structure": self.structure,
            "kind": self.title.kind.value,
        }
        reading = self.reading
        if reading is None:
            return out
        out["reads_as"] = reading.form
        out[reading.unit.value] = reading.value(raw)
        if reading.shift:
            out["first_stamp_15mn"] = raw & FIRST_STAMP_MASK
        return out

    def text(self, raw: int) -> str:
        """How this contract reads the counter, in one line."""
        title = self.title
        owner = f"contract {title.pointer}, tariff {title.tariff}"
        if title.network is not None:
            owner += f", network {title.network}"
        owner += f", {self.structure}"
        reading = self.reading
        if reading is None:
            return f"raw value {raw} ({owner}: a {title.kind.value} title uses no counter)"
        value = reading.value(raw)
        if reading.shift:
            stamp = raw & FIRST_STAMP_MASK
            return f"carnet: {value} journeys, first stamp {stamp} x 15 min ({owner})"
        if reading.per_journey > 1:
            per = reading.per_journey
            return f"units sold: {value} journeys left, {raw} units, {per} a journey ({owner})"
        if reading.unit is CounterUnit.JOURNEYS:
            return f"journeys: {value} left ({owner})"
        return f"stored value: amount {value} ({owner})"


@dataclass(frozen=True, slots=True)
class CounterView:
    """One counter: its raw value and the contracts that use it."""

    number: int
    raw: int
    uses: tuple[CounterUse, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The counter: number, raw value, the first contract's reading, then all of them."""
        out: dict[str, Any] = {
            "counter": self.number,
            "raw": self.raw,
            "contract": None,
            "tariff": None,
            "kind": None,
        }
        if self.uses:
            out.update(self.uses[0].to_json(self.raw))
            out["used_by"] = [use.to_json(self.raw) for use in self.uses]
        return out

    def lines(self) -> list[str]:
        """Counter n and each contract's reading of it."""
        if not self.uses:
            return [f"Counter{self.number}: raw value {self.raw} (no contract points at it)"]
        shared = len([u for u in self.uses if u.reading is not None]) > 1
        head = f"Counter{self.number}: "
        out = [head + self.uses[0].text(self.raw)]
        out += [" " * len(head) + use.text(self.raw) for use in self.uses[1:]]
        if shared:
            pointers = ", ".join(str(u.title.pointer) for u in self.uses)
            out.append(" " * len(head) + f"(one counter shared by contracts {pointers})")
        return out


@dataclass(frozen=True, slots=True)
class CountersRecord:
    """A counters record read: its counters, or a record too short to hold one."""

    counters: tuple[CounterView, ...]
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
        return [line for counter in self.counters for line in counter.lines()]


def short_record(data: bytes) -> CountersRecord | None:
    """A counters record shorter than one counter, shown as such; None if it holds one."""
    return CountersRecord((), short=data) if len(data) < COUNTER_BYTES else None


def read_counters(data: bytes, read: CardTitles) -> CountersRecord:
    """Decode a counters record by the contracts that use each counter (module docstring)."""
    short = short_record(data)
    if short is not None:
        return short
    by_pointer = {t.pointer: t for t in read.titles}
    views = []
    for index in range(len(data) // COUNTER_BYTES):
        number = index + 1
        raw = int.from_bytes(data[index * COUNTER_BYTES : number * COUNTER_BYTES], "big")
        uses = [
            CounterUse(by_pointer[p], read.contracts[p][1], reading)
            for p, reading in read.readings.items()
            if reading.number == number
        ]
        owner = by_pointer.get(number)
        if not uses and owner is not None and number not in read.readings:
            uses = [CounterUse(owner, read.contracts[number][1])]
        views.append(CounterView(number, raw, tuple(uses)))
    return CountersRecord(tuple(views))
