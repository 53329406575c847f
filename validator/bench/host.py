# SPDX-License-Identifier: Apache-2.0
"""Host cost per tap, split: the validator itself, the card emulator, the software SAM, and
the journal with and without its fsync (emulated card and software SAM in process).

The validator's share is the process CPU time of ``validate`` (all threads: the SAM worker
included) minus the CPU time spent inside the card emulator's and the software SAM's
``process``. The journal is timed on the wall clock (an fsync waits, it does not compute), with
the time inside ``os.fsync`` counted apart.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from validator.bench.scenarios import STATION, Bench, Scenario, percentile
from validator.engine.fares.decide import TapContext
from validator.engine.tap import TapRecord, journal_entry
from validator.journal.writer import Journal


@contextlib.contextmanager
def replaced_fsync(replacement: Callable[..., None]) -> Iterator[None]:
    """While active, ``os.fsync`` (which the journal calls) is ``replacement``."""
    real = os.fsync
    os.fsync = replacement
    try:
        yield
    finally:
        os.fsync = real


@contextlib.contextmanager
def fsync_timer(account: list[float]) -> Iterator[None]:
    """While active, the wall time spent in ``os.fsync`` is added to ``account``."""
    real = os.fsync

    def timed(fd: Any) -> None:
        start = time.perf_counter()
        try:
            real(fd)
        finally:
            account[0] += time.perf_counter() - start

    with replaced_fsync(timed):
        yield


@dataclass
class HostCost:
    """Per-tap milliseconds of each part of the host, over many taps of one scenario."""

    validator: list[float] = field(default_factory=list)
    card: list[float] = field(default_factory=list)
    sam: list[float] = field(default_factory=list)
    journal: list[float] = field(default_factory=list)  # without the fsync
    fsync: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, float]:
        """The scenario's ``host_ms`` entry."""

        def median(values: list[float]) -> float:
            return round(statistics.median(values), 3)

        return {
            "validator_median": median(self.validator),
            "validator_p99": round(percentile(self.validator, 0.99), 3),
            "card_median": median(self.card),
            "sam_median": median(self.sam),
            "journal_median": median(self.journal),
            "journal_fsync_median": median(self.fsync),
        }


def measure_host(
    config_dir: Path, scenario: Scenario, taps: int = 1000, journal_dir: Path | None = None
) -> HostCost:
    """Run ``taps`` taps of the scenario in process and journal each one."""
    fsync_s = [0.0]
    bench = Bench(config_dir, latency=False)
    cost = HostCost()
    with contextlib.ExitStack() as stack:
        directory = journal_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        journal = Journal(directory / "journal")
        journal.open()
        stack.callback(journal.close)
        stack.enter_context(fsync_timer(fsync_s))
        for index in range(taps):
            result, _ = bench.run(scenario, engine=True)
            card, sam = bench.card_cpu[0], bench.sam_cpu[0]
            cost.validator.append((bench.cpu_s - card - sam) * 1000)
            cost.card.append(card * 1000)
            cost.sam.append(sam * 1000)
            fsync_s[0] = 0.0
            entry = journal_entry(
                TapRecord(index + 1, result, {}), TapContext(bench.now, STATION), "bench", bench.sam
            )
            start = time.perf_counter()
            journal.append(entry)
            spent = time.perf_counter() - start
            cost.fsync.append(fsync_s[0] * 1000)
            cost.journal.append((spent - fsync_s[0]) * 1000)
    return cost
