# SPDX-License-Identifier: Apache-2.0
"""The gate loop: wait for a card, validate, journal, give feedback, wait for removal, repeat."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import structlog

from readers.base import CardReader, ReaderError
from sam.base import SamError
from validator.fares import TapContext
from validator.gate import Gate
from validator.journal import JournalError
from validator.processor import TapProcessor

log = structlog.get_logger("validator.loop")


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
) -> int:
    """Serve taps until ``stop`` is set or ``max_taps`` are done; returns the taps served.

    A reader or SAM outage puts the gate out of service (shut) and is retried every
    ``backoff_s``; service resumes by itself. A journal failure stops the loop: no tap may be
    served that cannot be recorded.
    """
    stop = stop or threading.Event()
    served = 0
    sam_ready = _prefetch(processor, gate)
    while not stop.is_set() and (max_taps is None or served < max_taps):
        if not sam_ready:
            if stop.wait(backoff_s):
                break
            sam_ready = _prefetch(processor, gate)
            continue
        try:
            connection = reader.wait_for_card(timeout=poll_s)
        except ReaderError as exc:
            gate.out_of_service(f"card reader: {exc}")
            log.warning("reader_unavailable", reader=reader.name, error=str(exc))
            stop.wait(backoff_s)
            continue
        if connection is None:
            continue
        gate.in_service()
        try:
            record = processor.process(connection, TapContext(clock(), station))
        except JournalError as exc:
            gate.out_of_service(f"journal: {exc}")
            log.error("journal_failure", error=str(exc))
            raise
        finally:
            try:
                connection.close()
            except ReaderError:
                pass
        gate.feedback(record)
        served += 1
        log.info(
            "tap",
            seq=record.seq,
            outcome=record.result.outcome.value,
            reason=record.result.reason,
            ms=round(record.result.elapsed * 1000, 2),
        )
        sam_ready = _prefetch(processor, gate)
        if max_taps is not None and served >= max_taps:
            break
        # A card left on the reader is not validated again: wait until it is taken away.
        while not stop.is_set():
            try:
                if reader.wait_for_removal(timeout=poll_s):
                    break
            except ReaderError:
                break  # the reader will say so at the next wait_for_card
    return served


def _prefetch(processor: TapProcessor, gate: Gate) -> bool:
    """Pre-fetch the next SAM challenge; a SAM that fails puts the gate out of service."""
    try:
        processor.prefetch()
    except (SamError, ReaderError) as exc:
        gate.out_of_service(f"SAM: {exc}")
        log.warning("sam_unavailable", error=str(exc))
        return False
    return True
