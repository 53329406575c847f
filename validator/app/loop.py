# SPDX-License-Identifier: Apache-2.0
"""The gate loop: wait for a card, validate, journal, give feedback, wait for removal, repeat."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from readers.base import CardReader, ReaderError
from sam.base import Sam, SamError
from validator.app.clock import DEFAULT_RANGE, ClockError, ClockRange, check_clock
from validator.app.gate import Gate
from validator.engine.fares.decide import TapContext
from validator.engine.recording import JournalError, TapNotServedError
from validator.engine.tap import TapProcessor, TapRecord

log = structlog.get_logger("validator.loop")

# Connects the SAM again: the SAM, or SamError / ReaderError.
SamOpener = Callable[[], Sam]


class LoopObserver(Protocol):
    """What watches the loop (metrics, systemd): called from the loop's thread, must not block."""

    def on_idle(self) -> None:
        """The loop is alive: between polls for a card, for its removal, or for the SAM."""
        ...

    def on_tap(self, record: TapRecord) -> None:
        """A tap was served (journaled, feedback given)."""
        ...

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """An outage (every failed attempt, with its reason) or the return to service."""
        ...


class Observers:
    """Several observers as one; an observer that raises is logged, never stops the gate."""

    def __init__(self, observers: Sequence[LoopObserver] = ()) -> None:
        self.observers = list(observers)

    def on_idle(self) -> None:
        """Tell every observer."""
        for observer in self.observers:
            self._call(observer.on_idle)

    def on_tap(self, record: TapRecord) -> None:
        """Tell every observer."""
        for observer in self.observers:
            self._call(observer.on_tap, record)

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """Tell every observer."""
        for observer in self.observers:
            self._call(observer.on_state, in_service, reason)

    @staticmethod
    def _call(method: Callable[..., None], *args: object) -> None:
        try:
            method(*args)
        except Exception as exc:  # a broken observer must not stop the gate
            log.error("observer_failed", observer=repr(method), error=str(exc))


def run_loop(
    reader: CardReader,
    processor: TapProcessor,
    gate: Gate,
    *,
    station: int,
    max_taps: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], dt.datetime] = dt.datetime.now,
    poll_s: float = 0.25,
    backoff_s: float = 1.0,
    observer: LoopObserver | None = None,
    reopen_sam: SamOpener | None = None,
    clock_range: ClockRange = DEFAULT_RANGE,
) -> int:
    """Serve taps until ``stop`` is set or ``max_taps`` are done; returns the taps served.

    A reader or SAM outage puts the gate out of service (shut) and is retried every
    ``backoff_s``; service resumes by itself. So does a journal that cannot be written (a full
    disk), found at start-up or by the check before a tap's Close: the tap is aborted or, if
    its entry failed, gets no feedback (the gate stays shut), and no card is read again until
    the journal has room (``Journal.check_writable``): no tap may be served that cannot be
    recorded. ``observer`` hears of every poll (``on_idle``: a tap or a
    transmit that hangs stops these calls, hence systemd's watchdog pings), tap and outage.
    ``reopen_sam`` connects the SAM again (a SAM in a PC/SC reader, after pcscd restarted or the
    SAM was reinserted): it is called before each SAM retry, and after a card-reader outage
    (a pcscd restart takes the SAM's connection along). A clock outside ``clock_range`` (the
    dates the card layouts can encode: a host that booted in 1970) keeps the gate out of
    service, "clock not set", without touching a card, until the time is set.
    """
    stop = stop or threading.Event()
    watch = _Watch(gate, observer)
    served = 0
    sam_ready = _prefetch(processor, watch)
    # A journal without room at start-up shows out of service before any card is read.
    journal_ready = _journal_room(processor, watch)
    while not stop.is_set() and (max_taps is None or served < max_taps):
        watch.idle()
        if not _clock_set(clock, clock_range, watch):
            if stop.wait(backoff_s):
                break
            continue
        if not journal_ready:
            if stop.wait(backoff_s):
                break
            journal_ready = _journal_writable(processor, watch)
            sam_ready = sam_ready and (not journal_ready or _prefetch(processor, watch))
            continue
        if not sam_ready:
            if stop.wait(backoff_s):
                break
            sam_ready = _reopen(processor, watch, reopen_sam)
            continue
        try:
            connection = reader.wait_for_card(timeout=poll_s)
        except ReaderError as exc:
            sam_ready = sam_ready and reopen_sam is None
            watch.out_of_service(f"card reader: {exc}")
            log.warning("reader_unavailable", reader=reader.name, error=str(exc))
            stop.wait(backoff_s)
            continue
        watch.reader_ok()
        if connection is None:
            continue
        gate.in_service()
        record: TapRecord | None = None
        try:
            record = processor.process(connection, TapContext(clock(), station))
        except JournalError as exc:
            # Not journaled, so no feedback: the gate stays shut for this tap.
            watch.out_of_service(f"journal: {exc}")
            if isinstance(exc, TapNotServedError):
                # What the card was left with: the operator settles a paid tap from this line.
                log.error(
                    "journal_failure",
                    error=str(exc),
                    card=exc.card,
                    outcome=exc.outcome,
                    debit=exc.debit,
                    journaled=exc.journaled,
                )
            else:
                log.error("journal_failure", error=str(exc))
            journal_ready = False
        finally:
            try:
                connection.close()
            except ReaderError:
                pass
        if record is None:
            _wait_removal(reader, stop, watch, poll_s)  # this card is not tried again
            continue
        gate.feedback(record)
        watch.tap(record)
        served += 1
        log.info(
            "tap",
            seq=record.seq,
            outcome=record.result.outcome.value,
            reason=record.result.reason,
            ms=round(record.result.elapsed * 1000, 2),
        )
        sam_ready = _prefetch(processor, watch)
        if max_taps is not None and served >= max_taps:
            break
        _wait_removal(reader, stop, watch, poll_s)
    return served


def _wait_removal(reader: CardReader, stop: threading.Event, watch: _Watch, poll_s: float) -> None:
    """A card left on the reader is not validated again: wait until it is taken away."""
    while not stop.is_set():
        watch.idle()
        try:
            if reader.wait_for_removal(timeout=poll_s):
                return
        except ReaderError:
            return  # the reader will say so at the next wait_for_card


class _Watch:
    """The loop's side of the observer: outages go to the gate and the observer, in order."""

    def __init__(self, gate: Gate, observer: LoopObserver | None) -> None:
        self.gate = gate
        self.observer = Observers([observer]) if observer is not None else None
        self.outage: dict[str, str] = {}  # what is down ("card reader", "SAM"): its reason

    def idle(self) -> None:
        if self.observer is not None:
            self.observer.on_idle()

    def tap(self, record: TapRecord) -> None:
        if self.observer is not None:
            self.observer.on_tap(record)

    def out_of_service(self, reason: str) -> None:
        self.gate.out_of_service(reason)
        self.outage[reason.partition(":")[0]] = reason
        if self.observer is not None:
            self.observer.on_state(False, reason)

    def reader_ok(self) -> None:
        self._back("card reader")

    def sam_ok(self) -> None:
        self._back("SAM")

    def journal_ok(self) -> None:
        self._back("journal")

    def clock_ok(self) -> None:
        self._back("clock not set")

    def _back(self, part: str) -> None:
        if self.outage.pop(part, None) is None or self.observer is None:
            return
        if self.outage:
            self.observer.on_state(False, next(iter(self.outage.values())))
        else:
            self.observer.on_state(True, None)


def _clock_set(clock: Callable[[], dt.datetime], dates: ClockRange, watch: _Watch) -> bool:
    """Whether the clock can be written onto a card; out of service ("clock not set") if not."""
    try:
        check_clock(clock(), dates)
    except ClockError as exc:
        if "clock not set" not in watch.outage:
            log.error("clock_not_set", error=str(exc))
        watch.out_of_service(str(exc))
        return False
    if "clock not set" in watch.outage:
        log.info("clock_set")
    watch.clock_ok()
    return True


def _journal_writable(processor: TapProcessor, watch: _Watch) -> bool:
    """Whether the journal has room again after a failed append (out of service until then)."""
    if processor.journal is None:
        return True
    try:
        processor.journal.check_writable()
    except JournalError as exc:
        watch.out_of_service(f"journal: {exc}")
        return False
    log.info("journal_writable_again")
    watch.journal_ok()
    return True


def _journal_room(processor: TapProcessor, watch: _Watch) -> bool:
    """Whether the journal has room for the next tap (``Journal.ensure_room``), at start-up."""
    if processor.journal is None:
        return True
    try:
        processor.journal.ensure_room()
    except JournalError as exc:
        watch.out_of_service(f"journal: {exc}")
        log.error("journal_unavailable", error=str(exc))
        return False
    return True


def _reopen(processor: TapProcessor, watch: _Watch, reopen_sam: SamOpener | None) -> bool:
    """Connect the SAM again if we can, then check it with a pre-fetch."""
    if reopen_sam is not None:
        try:
            processor.sam = reopen_sam()
        except (SamError, ReaderError) as exc:
            watch.out_of_service(f"SAM: {exc}")
            log.warning("sam_unavailable", error=str(exc))
            return False
    return _prefetch(processor, watch)


def _prefetch(processor: TapProcessor, watch: _Watch) -> bool:
    """Pre-fetch the next SAM challenge; a SAM that fails puts the gate out of service."""
    try:
        processor.prefetch()
    except (SamError, ReaderError) as exc:
        watch.out_of_service(f"SAM: {exc}")
        log.warning("sam_unavailable", error=str(exc))
        return False
    watch.sam_ok()
    return True
