# SPDX-License-Identifier: Apache-2.0
"""``validator run``: build the readers, the SAM, the journal and the gate from the settings.

Reader specs: ``emulated`` (in-process reader fed by simulated passengers from the card
profiles), ``pcsc:REGEX`` and ``nfc:PATH`` (real readers, see readers.spec). SAM specs:
``software`` (the CSIM1 software SAM with the key file of the settings) or ``pcsc:REGEX``.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from readers.base import CardConnection, CardReader, ReaderError
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.base import SamError
from sam.client import LegacySam
from sam.keys import load_keys
from sam.software.link import software_sam
from validator.app.clock import clock_range
from validator.app.demo import build_fleet
from validator.app.gate import Gate
from validator.app.journal_key import load_journal_key
from validator.app.loop import LoopObserver, Observers, SamOpener, run_loop
from validator.app.settings import ValidatorSettings
from validator.app.station import build_processor
from validator.engine.fares.rules import load_fares
from validator.engine.tap import TapRecord
from validator.journal.pending import CheckpointObserver, restore_pending
from validator.journal.writer import Journal
from yamlconfig import ConfigError

__all__ = ["RunError", "restore_pending", "serve"]

SOFTWARE_SAM_SPECS = ("software", "emulated")
log = structlog.get_logger("validator.run")


class RunError(Exception):
    """The validator cannot start with these readers or this SAM."""


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


def open_card_reader(spec: str, config_dir: Path | None = None) -> CardReader:
    """A real reader from a ``pcsc:``/``nfc:`` spec; a malformed spec is a ConfigError.

    A bad spec is a mistake a person must fix (exit 2: systemd does not restart on it); a
    reader or pcscd that is not there yet is a RunError (exit 4: restarted, it may come back).
    """
    try:
        from readers.spec import open_reader
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise RunError(f"real readers are not available: {exc}") from exc
    try:
        return open_reader(spec)
    except ValueError as exc:
        where = (config_dir or Path(".")) / "validator.yaml"
        raise ConfigError(
            where, f"card_reader/sam_reader (or --card-reader/--sam-reader): {exc}"
        ) from None


def journal_key(config_dir: Path, settings: ValidatorSettings) -> bytes | None:
    """The journal HMAC key from ``journal_key_file``, checked (validator.journal.keyfile)."""
    return load_journal_key(config_dir, settings)


def open_sam(spec: str, config_dir: Path, settings: ValidatorSettings) -> LegacySam:
    """The SAM: the software SAM in process, or a real (or vpcd-served) SAM in a PC/SC reader."""
    if spec in SOFTWARE_SAM_SPECS:
        return software_sam(config_dir / settings.keys, allow_simulation=settings.simulation)
    try:
        connection = open_card_reader(spec, config_dir).wait_for_card(timeout=5.0)
    except ReaderError as exc:  # pcscd unreachable, pyscard missing: may come back (exit 4)
        raise RunError(f"SAM reader {spec!r}: {exc}") from exc
    if connection is None:
        raise RunError(f"no SAM in the reader {spec!r}")
    try:
        return _checked_sam(connection, spec, config_dir, settings)
    except RunError:
        connection.close()  # let go of the slot: the operator will fix it and start again
        raise


def sam_reopener(
    spec: str, config_dir: Path, settings: ValidatorSettings, sam: LegacySam
) -> SamOpener | None:
    """How the loop connects a PC/SC SAM again after an outage (None for the software SAM).

    The old connection is let go first (it may hold the reader exclusively); the new one is
    checked and unlocked as at start-up. Failures are SamError: the gate stays out of service.
    """
    if spec in SOFTWARE_SAM_SPECS:
        return None
    reader = open_card_reader(spec, config_dir)
    current = [sam]

    def reopen() -> LegacySam:
        try:
            current[0].channel.connection.close()
        except ReaderError:
            pass  # gone with pcscd or the SAM: nothing to let go of
        connection = reader.wait_for_card(timeout=1.0)
        if connection is None:
            raise SamError(f"no SAM in the reader {spec!r}")
        try:
            current[0] = _checked_sam(connection, spec, config_dir, settings)
        except RunError as exc:
            connection.close()
            raise SamError(str(exc)) from exc
        return current[0]

    return reopen


def _checked_sam(
    connection: CardConnection, spec: str, config_dir: Path, settings: ValidatorSettings
) -> LegacySam:
    """A Calypso SAM by its ATR (and the ATR filter), unlocked when the key file says how."""
    atr = connection.atr.hex().upper()
    if settings.sam_atr_filter and not re.fullmatch(settings.sam_atr_filter, atr, re.IGNORECASE):
        raise RunError(f"the SAM's ATR {atr} does not match sam_atr_filter")
    channel = ApduChannel(connection, label="sam")
    try:
        sam = LegacySam(channel)
    except SamError as exc:
        raise RunError(f"the chip in {spec!r} is not a Calypso SAM (ATR {atr}): {exc}") from exc
    unlock = _unlock_data(config_dir, settings)
    if unlock is not None:
        try:
            sam.unlock(unlock)  # a SAM that was not locked answers 6985: accepted
        except SamError as exc:
            raise RunError(f"the SAM refused the unlock data: {exc}") from exc
    return sam


def _unlock_data(config_dir: Path, settings: ValidatorSettings) -> bytes | None:
    """The static unlock data of the key file, if it has any (never printed)."""
    path = config_dir / settings.keys
    if not path.exists():
        return None
    return load_keys(path, allow_simulation=settings.simulation).unlock_secret()


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
        if spec not in ("emulated", *SOFTWARE_SAM_SPECS):
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
        journal = stack.enter_context(
            Journal(
                config_dir / settings.journal_dir,
                key=journal_key(config_dir, settings),
                validator_id=settings.validator_id,
            )
        )
        processor = build_processor(settings, sam, rules, journal)
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
                reader,
                processor,
                signalling,
                station=rules.station.location_id,
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
