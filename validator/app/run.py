# SPDX-License-Identifier: Apache-2.0
"""``validator run``: build the readers, the SAM, the journal and the gate from the settings.

Reader specs: ``emulated`` (in-process reader fed by simulated passengers from the card
profiles), ``pcsc:REGEX`` and ``nfc:PATH`` (real readers, see readers.spec). SAM specs:
``software`` (the CSIM1 software SAM with the key file of the settings) or ``pcsc:REGEX``.
"""

from __future__ import annotations

import random
import signal
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from readers.base import CardReader
from readers.emulated import EmulatedReader
from validator.app.clock import clock_range
from validator.app.demo import build_fleet
from validator.app.gate import Gate
from validator.app.loop import LoopObserver, Observers, run_loop
from validator.app.settings import ValidatorSettings, load_fares
from validator.app.station import (
    NO_SAM,
    SOFTWARE_SAM_SPECS,
    Station,
    build_station,
    open_card_reader,
    open_sam,
    sam_reopener,
    station_journal,
)
from validator.engine.tap import TapRecord
from validator.journal.pending import CheckpointObserver, restore_pending
from validator.journal.writer import Journal
from yamlconfig import ConfigError

__all__ = ["serve"]

log = structlog.get_logger("validator.run")


class _SignallingGate:
    """Passes feedback on, and tells the simulated passengers that their tap is done."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.done = threading.Event()

    def feedback(self, record: TapRecord) -> None:
        self.gate.feedback(record)
        self.done.set()

    def out_of_service(self, reason: str) -> None:
        self.gate.out_of_service(reason)

    def in_service(self) -> None:
        self.gate.in_service()


@dataclass
class Passengers:
    """Simulated passengers presenting emulated cards to an emulated reader, one at a time."""

    reader: EmulatedReader
    cards_dir: Path
    done: threading.Event
    interval_s: float = 0.5
    seed: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        # The cards are built here, in the caller's thread: a bad card profile is a
        # ConfigError of ``serve`` (exit 2), not a dead thread the gate waits for forever.
        self._rnd = random.Random(self.seed)  # noqa: S311 - simulation randomness, by design
        self._fleet = build_fleet(self.cards_dir, self._rnd)

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        thread = threading.Thread(target=self._run, name="passengers", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        rnd, fleet = self._rnd, self._fleet
        while not self.stop.is_set():
            self.done.clear()
            self.reader.insert(rnd.choice(fleet))
            self.done.wait(5.0)
            self.reader.remove()
            self.stop.wait(self.interval_s)


def serve(
    config_dir: Path,
    settings: ValidatorSettings,
    gate: Gate,
    *,
    card_spec: str,
    sam_spec: str,
    max_taps: int | None,
    stop: threading.Event | None = None,
    interval_s: float = 0.5,
    seed: int | None = None,
    observer: LoopObserver | None = None,
) -> int:
    """Run the gate loop until stopped or ``max_taps`` are served; returns the taps served.

    With ``metrics_address`` set, the Prometheus endpoint runs meanwhile; under systemd
    ($NOTIFY_SOCKET) the loop sends READY=1, its status line and the watchdog pings. SIGTERM
    stops the loop once the tap in progress is journaled (main thread only).
    ``observer`` (tests, embedding) hears of the loop's events too.
    """
    rules = load_fares(config_dir, settings)
    for spec in (card_spec, sam_spec):  # a malformed spec stops here, before any hardware
        if spec not in ("emulated", NO_SAM, *SOFTWARE_SAM_SPECS):
            open_card_reader(spec, config_dir)
    sam = open_sam(sam_spec, config_dir, settings)
    stop = stop or threading.Event()
    signalling = _SignallingGate(gate)
    passengers: Passengers | None = None
    reader: CardReader
    if card_spec == "emulated":
        if not settings.simulation:
            raise ConfigError(
                config_dir / "validator.yaml", "the emulated card reader needs 'simulation: true'"
            )
        emulated = EmulatedReader("emulated contactless")
        passengers = Passengers(
            emulated,
            config_dir / settings.cards,
            signalling.done,
            interval_s=interval_s,
            seed=seed,
            stop=stop,
        )
        reader = emulated
    else:
        reader = open_card_reader(card_spec, config_dir)
    with ExitStack() as stack:
        station: Station | None = None

        def let_go_of_the_sam() -> None:
            # A PC/SC SAM is held until let go: the one in use (the loop may have reconnected
            # it), or the one opened if the journal could not be.
            if station is not None:
                station.release_sam()
            elif sam is not None:
                sam.close()

        stack.callback(let_go_of_the_sam)
        journal = stack.enter_context(station_journal(config_dir, settings))
        station = build_station(
            config_dir, settings, reader=reader, sam=sam, journal=journal, rules=rules
        )
        processor = station.processor
        restored = restore_pending(processor, journal)
        if restored:
            log.info("unknown_taps_restored", count=restored)
        observers = _operations(stack, settings, journal)
        checkpoint = CheckpointObserver(processor, journal)
        observers.append(checkpoint)
        stack.callback(checkpoint.save)  # at a clean stop: the next start-up reads nothing more
        if observer is not None:
            observers.append(observer)
        if passengers is not None:
            passengers.start()
        _stop_on_sigterm(stack, stop)
        try:
            return run_loop(
                station.reader,
                processor,
                signalling,
                station=station.location,
                max_taps=max_taps,
                stop=stop,
                observer=Observers(observers) if observers else None,
                reopen_sam=sam_reopener(sam_spec, config_dir, settings, sam),
                clock_range=clock_range(settings.layouts.values()),
            )
        finally:
            stop.set()
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack swallows nothing


def _stop_on_sigterm(stack: ExitStack, stop: threading.Event) -> None:
    """SIGTERM (systemctl stop) ends the loop after the tap in progress, not in its middle."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set signal handlers; the caller owns ``stop``

    def handler(signum: int, frame: object) -> None:
        log.info("stopping", signal=signum)
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    stack.callback(signal.signal, signal.SIGTERM, previous)


def _operations(
    stack: ExitStack, settings: ValidatorSettings, journal: Journal
) -> list[LoopObserver]:
    """Start what the settings and the environment ask for: metrics endpoint, sd_notify."""
    from validator.app.systemd import Notifier, SystemdObserver

    observers: list[LoopObserver] = []
    if settings.metrics_address:
        from validator.app.metrics import ValidatorMetrics, serve_metrics

        metrics = ValidatorMetrics.from_settings(settings)
        metrics.attach_journal(journal)
        where = f"{settings.metrics_address}:{settings.metrics_port}"
        try:
            server = serve_metrics(metrics, settings.metrics_address, settings.metrics_port)
        except socket.gaierror as exc:  # not an address at all: a person must fix it (exit 2)
            raise ConfigError(
                Path("validator.yaml"), f"metrics_address {settings.metrics_address!r}: {exc}"
            ) from None
        except OSError as exc:
            # A busy port (another program, a second instance) must not take the gate down:
            # serve without metrics; `validator doctor` says so too.
            log.warning("metrics_unavailable", endpoint=where, error=str(exc))
        else:
            stack.callback(server.stop)
            log.info("metrics_endpoint", url=server.url)
            observers.append(metrics)
    notifier = Notifier()
    if notifier.enabled:
        systemd = SystemdObserver(notifier)
        notifier.ready(systemd.status_line())
        stack.callback(notifier.close)
        stack.callback(notifier.stopping)
        observers.append(systemd)
    return observers
