# SPDX-License-Identifier: Apache-2.0
"""The validator's image of a card: what was read and written, with snapshot and restore."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from calypso.commands.select import ApplicationInfo


@dataclass(frozen=True, slots=True)
class CardSnapshot:
    """A frozen copy of the image's mutable parts, taken at Open Secure Session."""

    records: dict[int, dict[int, bytes]]
    counters: dict[tuple[int, int], int]


@dataclass
class CalypsoCard:
    """Card image: filled by the session engine from parsed answers, never by parsers."""

    application: ApplicationInfo
    records: dict[int, dict[int, bytes]] = field(default_factory=dict)
    counters: dict[tuple[int, int], int] = field(default_factory=dict)
    transaction_counter: int | None = None
    ratified: bool | None = None

    @property
    def serial(self) -> bytes:
        """The full 8-byte serial number (the SAM diversifier)."""
        return self.application.serial

    def record(self, sfi: int, number: int) -> bytes | None:
        """A record's known content, or None if never read or written."""
        return self.records.get(sfi, {}).get(number)

    def set_record(self, sfi: int, number: int, data: bytes) -> None:
        """Store a record as read from the card."""
        self.records.setdefault(sfi, {})[number] = data

    def update_record(self, sfi: int, number: int, data: bytes) -> None:
        """Apply an Update Record: data shorter than the record replaces its first bytes."""
        old = self.record(sfi, number) or b""
        self.set_record(sfi, number, data + old[len(data) :])

    def append_record(self, sfi: int, data: bytes, *, capacity: int | None = None) -> None:
        """Apply an Append Record to a cyclic file: new record 1, older ones shift up."""
        old = self.records.get(sfi, {})
        shifted = {number + 1: body for number, body in old.items()}
        if capacity is not None:
            shifted = {n: b for n, b in shifted.items() if n <= capacity}
        shifted[1] = data
        self.records[sfi] = shifted

    def counter(self, sfi: int, number: int) -> int | None:
        """A counter's known value, or None if never read."""
        return self.counters.get((sfi, number))

    def set_counter(self, sfi: int, number: int, value: int) -> None:
        """Store a counter value (read or returned by Increase/Decrease)."""
        self.counters[(sfi, number)] = value

    def set_counters_from_record(self, sfi: int, data: bytes) -> None:
        """Split a counters-file record into its 3-byte counters: counter n at offset 3(n-1)."""
        for index in range(len(data) // 3):
            self.set_counter(sfi, index + 1, int.from_bytes(data[3 * index : 3 * index + 3], "big"))

    def snapshot(self) -> CardSnapshot:
        """Copy the mutable parts (taken at Open Secure Session)."""
        return CardSnapshot(copy.deepcopy(self.records), dict(self.counters))

    def restore(self, snapshot: CardSnapshot) -> None:
        """Return to a snapshot (after an abort: the card rolled back too)."""
        self.records = copy.deepcopy(snapshot.records)
        self.counters = dict(snapshot.counters)
