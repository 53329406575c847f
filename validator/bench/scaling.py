# SPDX-License-Identifier: Apache-2.0
"""Per-tap cost as history grows: entries already in the journal, and cards already seen
(the processor's unknown-tap list and its last-paid map). Flat is the target.

Each size gets a fresh validator: a journal pre-filled with that many entries (written by the
real Journal, with its fsync skipped while pre-filling only), or a processor that has already
seen that many cards; then multi-trip taps through ``TapProcessor.process``, journal included.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.settings import load_settings
from validator.app.station import Station, build_station
from validator.bench.host import replaced_fsync
from validator.bench.scenarios import START, STATION
from validator.engine.fares.decide import TapContext
from validator.engine.tap import PendingUnknown, TapProcessor
from validator.journal.writer import Journal

SIZES = (1, 10_000, 1_000_000)


def _prefill(journal: Journal, entries: int) -> None:
    # A million fsyncs would measure the disk, not the validator: pre-filling skips them.
    with replaced_fsync(lambda fd: None):
        for index in range(entries):
            journal.append({"tap_time": START.isoformat(), "card": f"{index:016X}", "outcome": "x"})


def _station(config_dir: Path, journal: Journal | None, reader: EmulatedReader) -> Station:
    """The station ``run`` builds from the settings, over the software SAM and ``reader``."""
    settings = load_settings(config_dir)
    sam = software_sam(config_dir / settings.keys, allow_simulation=settings.simulation)
    return build_station(config_dir, settings, reader=reader, sam=sam, journal=journal)


def _tap_ms(
    config_dir: Path, processor: TapProcessor, reader: EmulatedReader, taps: int
) -> list[float]:
    """Per-tap wall time of ``process`` (validation and journal) for fresh multi-trip cards."""
    profile = config_dir / "cards" / "multi_trip.yaml"
    times = []
    for index in range(taps):
        reader.insert(CardEmulator.from_profile(profile))
        processor.prefetch()
        now = START + dt.timedelta(minutes=index)
        start = time.perf_counter()
        processor.process(reader.connect(), TapContext(now, STATION))
        times.append((time.perf_counter() - start) * 1000)
        reader.remove()
    return times


def journal_scaling(
    config_dir: Path, sizes: tuple[int, ...] = SIZES, taps: int = 200
) -> dict[str, dict[str, float]]:
    """Per size: journal open time and per-tap median with that many entries already there."""
    out: dict[str, dict[str, float]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
            journal = Journal(Path(tmp))
            journal.open()
            _prefill(journal, size)
            journal.close()
            os.sync()  # the pre-fill's dirty pages reach the disk before anything is timed
            started = time.perf_counter()
            journal = Journal(Path(tmp))
            journal.open()
            opened = (time.perf_counter() - started) * 1000
            reader = EmulatedReader("card")
            station = _station(config_dir, journal, reader)
            times = _tap_ms(config_dir, station.processor, reader, taps)
            journal.close()
        out[str(size)] = {"open_ms": round(opened, 2), "tap_median_ms": _median(times)}
    return out


def cards_seen_scaling(
    config_dir: Path, sizes: tuple[int, ...] = SIZES, taps: int = 200
) -> dict[str, dict[str, float]]:
    """Per size: per-tap median once the processor has seen that many cards."""
    out: dict[str, dict[str, float]] = {}
    for size in sizes:
        reader = EmulatedReader("card")
        processor = _station(config_dir, None, reader).processor
        for index in range(size):
            serial = (0x8000_0000_0000_0000 + index).to_bytes(8, "big")
            processor.last_paid[serial] = index
            if index % 100 == 0:  # one card in a hundred left an unknown tap behind
                processor.pending[serial] = PendingUnknown(index, index, index, None, 1)
        times = _tap_ms(config_dir, processor, reader, taps)
        out[str(size)] = {"tap_median_ms": _median(times)}
    return out


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)
