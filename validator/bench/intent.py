# SPDX-License-Identifier: Apache-2.0
"""What the closing intent costs a tap (issue 20): the tap median with it and without it.

Multi-trip taps through ``TapProcessor.process`` (validation and journal, each journal in a
folder of its own on the disk of the temporary directory), alternately with the closing intent
and without it: without is the same journal behind a recorder that makes none (the engine then
closes with no intent, as before issue 20), a comparison the validator itself never runs. Two
settings: in process (the emulated card and the software SAM answer at once, so the intent's
write and fsync are all on the passenger's path) and on the latency-modelled links of
validator.bench.scenarios (the fsync runs while the card executes the session's writes).
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calypso.emulator.dispatch import CardEmulator
from readers.base import CardConnection
from readers.emulated import EmulatedReader
from validator.app.settings import load_fares, load_settings
from validator.app.station import build_station
from validator.bench.scenarios import (
    CARD_APDU_S,
    CARD_BYTE_S,
    START,
    STATION,
    Bench,
    LatencyConnection,
)
from validator.engine.fares.decide import TapContext
from validator.engine.tap import TapProcessor
from validator.journal.writer import Journal


class _Written:
    """An intent that was never written: ``wait`` returns it at once."""

    def __init__(self, intent: Mapping[str, Any]) -> None:
        self.intent = dict(intent)

    def wait(self) -> dict[str, Any]:
        """The intent, as given."""
        return self.intent


class WithoutIntent:
    """The journal less its closing intent: the baseline of the comparison, never run live."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def ensure_room(self) -> None:
        """As the journal does."""
        self.journal.ensure_room()

    def check_writable(self) -> None:
        """As the journal does."""
        self.journal.check_writable()

    def write_intent(self, intent: Mapping[str, Any]) -> _Written:
        """No intent: nothing written, nothing to wait for."""
        return _Written(intent)

    def append(self, entry: Mapping[str, Any], *, reserve: bool = True) -> dict[str, Any]:
        """As the journal does."""
        return self.journal.append(entry, reserve=reserve)


def _tap_ms(processor: TapProcessor, profile: Path, now: dt.datetime, latency: bool) -> float:
    """One tap of a fresh card of ``profile``, in ms (validation and journal)."""
    reader = EmulatedReader("card")
    reader.insert(CardEmulator.from_profile(profile))
    connection: CardConnection = reader.connect()
    if latency:
        connection = LatencyConnection(connection, CARD_APDU_S, CARD_BYTE_S)
    processor.prefetch()
    start = time.perf_counter()
    processor.process(connection, TapContext(now, STATION))
    elapsed = (time.perf_counter() - start) * 1000
    reader.remove()
    return elapsed


def measure_intent(config_dir: Path, taps: int = 200, latency_taps: int = 30) -> dict[str, Any]:
    """Per setting (``in_process``, ``latency_model``): the tap median without the intent,
    with it, and the difference, in ms; and the intent's size in bytes."""
    settings = load_settings(config_dir)
    rules = load_fares(config_dir, settings)
    profile = config_dir / "cards" / "multi_trip.yaml"
    out: dict[str, Any] = {}
    for name, latency, count in (
        ("in_process", False, taps),
        ("latency_model", True, latency_taps),
    ):
        with tempfile.TemporaryDirectory(prefix="bench-intent-") as tmp:
            times: dict[bool, list[float]] = {False: [], True: []}
            with Journal(Path(tmp) / "with") as with_intent, Journal(Path(tmp) / "without") as bare:
                processors = {}
                for intent in (False, True):
                    station = build_station(
                        config_dir,
                        settings,
                        reader=EmulatedReader("card"),
                        sam=Bench(config_dir, latency=latency).sam,
                        journal=with_intent if intent else None,
                        rules=rules,
                    )
                    if not intent:
                        station.processor.journal = WithoutIntent(bare)
                    processors[intent] = station.processor
                for index in range(count):  # alternately: a drift of the disk hits both alike
                    now = START + dt.timedelta(minutes=index)
                    for intent, processor in processors.items():
                        times[intent].append(_tap_ms(processor, profile, now, latency))
            size = _intent_bytes(Path(tmp) / "with")
        without = round(statistics.median(times[False]), 3)
        with_ = round(statistics.median(times[True]), 3)
        out[name] = {
            "taps": count,
            "without_ms": without,
            "with_ms": with_,
            "cost_ms": round(with_ - without, 3),
            "intent_bytes": size,
        }
    return out


def _intent_bytes(directory: Path) -> int:
    """The median size of an intent's line in the journal of ``directory``."""
    sizes = [
        len(line)
        for path in directory.glob("journal-*.jsonl")
        for line in path.read_bytes().splitlines()
        if b'"kind":"intent"' in line
    ]
    return int(statistics.median(sizes)) if sizes else 0
