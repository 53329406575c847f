# SPDX-License-Identifier: Apache-2.0
"""The optional Prometheus endpoint: taps, latency, APDUs, errors, service state, journal.

Off unless ``metrics_address`` is set in validator.yaml (``metrics_port``, default 9108). Each
``ValidatorMetrics`` has its own registry (no global state), and is a gate-loop observer. Labels
are bounded: outcomes, the products of fares.yaml, and the error sources. No card serial or key
material is ever a label or a value.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from validator.app.settings import ValidatorSettings
from validator.engine.tap import TapRecord
from validator.journal.writer import FILE_PREFIX, Journal

PREFIX = "calypso_validator"
# Tap latency buckets, in seconds: a tap is a few ms emulated, 100-300 ms on real cards.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
# What an outage reason starts with (validator.app.loop), and the error source it counts as.
ERROR_SOURCES = {"card reader": "reader", "SAM": "sam", "journal": "journal"}


def journal_bytes(directory: Path) -> int:
    """Total size of the journal files of a directory (0 when it cannot be read)."""
    total = 0
    try:
        for path in directory.glob(f"{FILE_PREFIX}*"):
            try:
                total += path.stat().st_size
            except OSError:
                continue
    except OSError:
        return 0
    return total


class ValidatorMetrics:
    """The validator's Prometheus metrics, updated as a gate-loop observer."""

    def __init__(self, validator_id: str = "validator-1", *, simulation: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.taps = Counter(
            f"{PREFIX}_taps",
            "Taps served, by outcome and product.",
            ["outcome", "product"],
            registry=reg,
        )
        self.latency = Histogram(
            f"{PREFIX}_tap_duration_seconds",
            "Time of one tap, first APDU to journal (host time).",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.card_apdus = Counter(f"{PREFIX}_card_apdus", "Card APDUs sent.", registry=reg)
        self.sam_apdus = Counter(f"{PREFIX}_sam_apdus", "SAM APDUs sent.", registry=reg)
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Failed attempts that put the gate out of service, by source.",
            ["source"],
            registry=reg,
        )
        for source in ERROR_SOURCES.values():
            self.errors.labels(source=source)
        self.out_of_service = Gauge(
            f"{PREFIX}_out_of_service", "1 while the gate is out of service.", registry=reg
        )
        self.journal_size = Gauge(
            f"{PREFIX}_journal_bytes", "Size of the journal files.", registry=reg
        )
        self.journal_seq = Gauge(
            f"{PREFIX}_journal_last_seq", "Sequence number of the last journal entry.", registry=reg
        )
        self.last_tap = Gauge(
            f"{PREFIX}_last_tap_timestamp_seconds", "Unix time of the last tap.", registry=reg
        )
        info = Gauge(
            f"{PREFIX}_info", "This validator (value 1).", ["validator_id", "mode"], registry=reg
        )
        info.labels(
            validator_id=validator_id, mode="simulation" if simulation else "production"
        ).set(1)
        self._journal: Journal | None = None

    @classmethod
    def from_settings(cls, settings: ValidatorSettings) -> ValidatorMetrics:
        """Metrics named after the settings' validator and mode."""
        return cls(settings.validator_id, simulation=settings.simulation)

    def attach_journal(self, journal: Journal) -> None:
        """Report this journal's size and last sequence number (read at each scrape)."""
        self._journal = journal
        directory = journal.directory
        self.journal_size.set_function(lambda: journal_bytes(directory))
        self.journal_seq.set_function(lambda: journal.last_seq)

    # --- the gate-loop observer -------------------------------------------------------------

    def on_idle(self) -> None:
        """Nothing to count while idle."""

    def on_tap(self, record: TapRecord) -> None:
        """Count the tap, its APDUs and its latency."""
        result = record.result
        self.taps.labels(outcome=result.outcome.value, product=result.product or "none").inc()
        self.latency.observe(result.elapsed)
        self.card_apdus.inc(result.card_apdus)
        self.sam_apdus.inc(result.sam_apdus)
        self.last_tap.set(time.time())
        self.out_of_service.set(0)

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """Track the service state; count each failed attempt by its source."""
        self.out_of_service.set(0 if in_service else 1)
        if not in_service and reason is not None:
            prefix = reason.partition(":")[0]
            self.errors.labels(source=ERROR_SOURCES.get(prefix, "other")).inc()


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``port`` is the bound one (useful with port 0)."""

    address: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(metrics: ValidatorMetrics, address: str, port: int) -> MetricsServer:
    """Start the HTTP endpoint in a daemon thread (OSError when the address cannot be bound)."""
    server, thread = start_http_server(port, addr=address, registry=metrics.registry)
    return MetricsServer(address, int(server.server_port), server, thread)
