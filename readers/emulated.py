# SPDX-License-Identifier: Apache-2.0
"""The in-process reader: presents ApduHandlers (card emulator, software SAM) and injects faults."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Self

from readers.apdu import ResponseApdu
from readers.base import (
    ApduHandler,
    CardRemovedError,
    ReaderError,
    ReaderTimeoutError,
    transmit_timeout,
)
from readers.watchdog import Watchdog


class FaultKind(Enum):
    """Where a fault strikes relative to the APDU it is attached to."""

    REMOVED_BEFORE = "removed_before"  # the card leaves before the command reaches it
    REMOVED_DURING = "removed_during"  # the card executes the command, the answer is lost
    REMOVED_AFTER = "removed_after"  # the answer arrives, then the card leaves
    MUTE = "mute"  # the card never answers this command
    SHORT_RESPONSE = "short_response"  # the answer arrives truncated


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault on the Nth APDU (1-based, counted from the card's insertion)."""

    kind: FaultKind
    apdu_index: int
    cut: int = 1  # SHORT_RESPONSE: how many data bytes are lost

    def __post_init__(self) -> None:
        if self.apdu_index < 1:
            raise ValueError("apdu_index counts from 1")


class EmulatedConnection:
    """A connection to the handler currently in an EmulatedReader."""

    def __init__(self, reader: EmulatedReader, handler: ApduHandler, atr: bytes) -> None:
        self._reader = reader
        self._handler = handler
        self._atr = atr
        self._closed = False
        self._deadline: float | None = None

    @property
    def atr(self) -> bytes:
        """The ATR the handler gave at power-on."""
        return self._atr

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Deliver one APDU to the handler, applying any fault set for its index."""
        if self._closed:
            raise ReaderError("connection closed")
        if not self._reader.holds(self._handler):
            raise CardRemovedError("card removed")
        index = self._reader._count_apdu()
        fault = self._reader._fault_for(index)
        kind = fault.kind if fault is not None else None
        if kind is FaultKind.REMOVED_BEFORE:
            self._reader.remove()
            raise CardRemovedError(f"card removed before APDU #{index}")
        if kind is FaultKind.MUTE:
            raise ReaderTimeoutError(f"no answer to APDU #{index}")
        raw = self._process(apdu)
        if kind is FaultKind.REMOVED_DURING:
            self._reader.remove()
            raise CardRemovedError(f"card removed during APDU #{index}")
        if kind is FaultKind.REMOVED_AFTER:
            self._reader.remove()
        if kind is FaultKind.SHORT_RESPONSE and fault is not None:
            data, sw = raw[:-2], raw[-2:]
            raw = data[: max(0, len(data) - fault.cut)] + sw if data else raw[:1]
        try:
            return ResponseApdu.from_bytes(raw)
        except ValueError as exc:
            raise ReaderError(f"malformed answer to APDU #{index}: {raw.hex()!r}") from exc

    def set_deadline(self, deadline: float | None) -> None:
        """Cut transmits at a tap's deadline (time.monotonic()) on a reader built with
        ``cut_slow_cards``, as a real reader's timeout would; otherwise only remembered."""
        self._deadline = deadline

    def _process(self, apdu: bytes) -> bytes:
        timeout = transmit_timeout(None, self._deadline)
        if timeout is None or not self._reader.cut_slow_cards:
            return self._handler.process(apdu)
        return self._reader._watchdog_call(lambda: self._handler.process(apdu), timeout)

    def close(self) -> None:
        """Release the connection (the card stays in the field)."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmulatedReader:
    """A reader slot holding at most one ApduHandler, with thread-safe insert/remove."""

    def __init__(self, name: str = "emulated", *, cut_slow_cards: bool = False) -> None:
        """``cut_slow_cards``: honour a tap's deadline as a real reader's timeout does (the
        handler then answers on a watchdog thread: a thread handoff per APDU)."""
        self.name = name
        self.cut_slow_cards = cut_slow_cards
        self._watchdog: Watchdog | None = None
        self._cond = threading.Condition()
        self._handler: ApduHandler | None = None
        self._atr = b""
        self._apdus = 0
        self._faults: list[Fault] = []
        self._generation = 0  # bumped at each insertion
        self._served = 0  # generation of the card last handed out by connect/wait_for_card

    def _watchdog_call(self, job: Callable[[], bytes], timeout: float) -> bytes:
        """Run ``job`` on this reader's watchdog thread (a fresh one after a hang)."""
        if self._watchdog is None or self._watchdog.stuck:
            if self._watchdog is not None:
                self._watchdog.stop()  # ends once the abandoned answer comes back
            self._watchdog = Watchdog(self.name)
        return self._watchdog.call(job, timeout)

    def insert(self, handler: ApduHandler) -> None:
        """Put a card in the field: it is powered on and the APDU count restarts."""
        with self._cond:
            if self._handler is not None:
                self._remove_locked()
            self._atr = handler.power_on()
            self._handler = handler
            self._apdus = 0
            self._generation += 1
            self._cond.notify_all()

    def remove(self) -> None:
        """Take the card out of the field: its power is cut (volatile state lost)."""
        with self._cond:
            self._remove_locked()

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the card currently (or next) in the field."""
        with self._cond:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Disarm every fault not yet triggered."""
        with self._cond:
            self._faults.clear()

    @property
    def present(self) -> bool:
        """Whether a card is in the field."""
        with self._cond:
            return self._handler is not None

    @property
    def apdu_count(self) -> int:
        """APDUs delivered (or attempted) since the current card was inserted."""
        with self._cond:
            return self._apdus

    def holds(self, handler: ApduHandler) -> bool:
        """Whether this exact handler is the one in the field."""
        with self._cond:
            return self._handler is handler

    def connect(self) -> EmulatedConnection:
        """Connect to the card in the field now (NoCard is a CardRemovedError)."""
        with self._cond:
            if self._handler is None:
                raise CardRemovedError("no card in the field")
            self._served = self._generation
            return EmulatedConnection(self, self._handler, self._atr)

    def wait_for_card(self, timeout: float | None = None) -> EmulatedConnection | None:
        """Block until a card is present and return a connection, or None on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._handler is not None, timeout):
                return None
            handler = self._handler
            if handler is None:  # pragma: no cover - wait_for guarantees a handler
                return None
            self._served = self._generation
            return EmulatedConnection(self, handler, self._atr)

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """Block until the card last connected to has left (even if another took its place)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._handler is None or self._generation != self._served, timeout
            )

    def _remove_locked(self) -> None:
        if self._handler is not None:
            self._handler.power_off()
        self._handler = None
        self._cond.notify_all()

    def _count_apdu(self) -> int:
        with self._cond:
            self._apdus += 1
            return self._apdus

    def _fault_for(self, index: int) -> Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.apdu_index == index:
                    self._faults.remove(fault)
                    return fault
            return None
