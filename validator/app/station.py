# SPDX-License-Identifier: Apache-2.0
"""A station from validator.yaml: its card reader, SAM, journal and tap engine.

``build_station`` puts a station together: ``run``, ``demo``, the doctor's test session, the
bench's scaling runs and every station of the reliability lab call it, so that the AIDs,
ratification mode, time budget, authorised keys, multiple session and card layouts of the tap
engine, its PKI trust (pki: roots, policy, the verified-card cache), and the SAM's checks and
unlock (open_sam) are those of the settings everywhere; the engine below never reads settings
itself. Reader specs: ``pcsc:REGEX`` and ``nfc:PATH`` (readers.spec); SAM specs: ``software``
(the CSIM1 software SAM with the key file of the settings), ``pcsc:REGEX``, or ``none`` (no SAM:
PKI cards only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from readers.base import CardConnection, CardReader, ReaderError
from readers.channel import ApduChannel
from sam.base import Sam, SamError
from sam.client import LegacySam
from sam.keys import load_keys
from sam.software.link import software_sam
from validator.app.loop import SamOpener
from validator.app.settings import NO_SAM, ValidatorSettings, load_fares, load_trust
from validator.engine.fares.decide import FareRules
from validator.engine.layouts.base import build_layouts
from validator.engine.pki.trust import CardTrust
from validator.engine.recording import TapRecorder
from validator.engine.session import Ratification
from validator.engine.tap import TapProcessor
from validator.journal.keyfile import read_journal_key
from validator.journal.writer import Journal
from yamlconfig import ConfigError

__all__ = [
    "NO_SAM",
    "SOFTWARE_SAM_SPECS",
    "RunError",
    "Station",
    "build_station",
    "journal_key_path",
    "load_journal_key",
    "station_journal",
    "open_card_reader",
    "open_sam",
    "sam_reopener",
]

# The in-process software SAM (CSIM1) with the key file of the settings.
SOFTWARE_SAM_SPECS = ("software", "emulated")


@dataclass
class Station:
    """One validator built from its settings: what the gate loop runs."""

    reader: CardReader
    processor: TapProcessor
    rules: FareRules
    journal: Journal | None

    @property
    def location(self) -> int:
        """The station's location id (fares.yaml), journaled with every tap."""
        return self.rules.station.location_id

    def release_sam(self) -> None:
        """Let go of the SAM in use (the loop may have connected it again since)."""
        sam = self.processor.sam
        if isinstance(sam, LegacySam):
            sam.close()


def build_station(
    config_dir: Path,
    settings: ValidatorSettings,
    *,
    reader: CardReader,
    sam: Sam | None,
    journal: Journal | None,
    rules: FareRules | None = None,
    rng: Callable[[int], bytes] | None = None,
) -> Station:
    """The station of ``settings``: its fare rules (checked against its layouts), its tap
    engine over ``sam`` (None: no SAM, PKI cards only) and the PKI trust of the settings,
    recording into ``journal`` (opened by the caller), and ``reader``. ``rng`` gives the PKI
    terminal challenges (default: the system's; the demo's is seeded)."""
    if rules is None:
        rules = load_fares(config_dir, settings)
    trust = load_trust(config_dir, settings, no_sam=sam is None, rng=rng)
    engine = _tap_engine(settings, sam, rules, journal, trust)
    return Station(reader, engine, rules, journal)


def journal_key_path(config_dir: Path, settings: ValidatorSettings) -> Path | None:
    """Where ``journal_key_file`` points (relative to the configuration folder), if set."""
    if settings.journal_key_file is None:
        return None
    return config_dir / settings.journal_key_file


def load_journal_key(config_dir: Path, settings: ValidatorSettings) -> bytes | None:
    """The journal HMAC key from ``journal_key_file`` (hex, at least 16 bytes), if set."""
    path = journal_key_path(config_dir, settings)
    return None if path is None else read_journal_key(path)


def station_journal(config_dir: Path, settings: ValidatorSettings) -> Journal:
    """The journal of ``settings`` (journal_dir, its checked key, the validator's id); unopened."""
    return Journal(
        config_dir / settings.journal_dir,
        key=load_journal_key(config_dir, settings),
        validator_id=settings.validator_id,
    )


def _tap_engine(
    settings: ValidatorSettings,
    sam: Sam | None,
    rules: FareRules,
    journal: TapRecorder | None,
    trust: CardTrust | None,
) -> TapProcessor:
    """The tap engine configured by ``settings`` over this SAM, fare rules, journal and trust."""
    return TapProcessor(
        sam=sam,
        rules=rules,
        aids=settings.aid_bytes(),
        validator_id=settings.validator_id,
        journal=journal,
        ratification=Ratification(settings.ratification),
        budget_s=settings.time_budget_ms / 1000,
        authorized=settings.key_policy(),
        multiple_session=settings.multiple_session,
        layouts=build_layouts(settings.layouts),
        pki=trust,
    )


class RunError(Exception):
    """The validator cannot start with these readers or this SAM."""


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


def open_sam(spec: str, config_dir: Path, settings: ValidatorSettings) -> LegacySam | None:
    """The SAM: the software SAM in process, a real (or vpcd-served) SAM in a PC/SC reader, or
    None for ``none`` (a validator without SAM)."""
    if spec == NO_SAM:
        return None
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
    spec: str, config_dir: Path, settings: ValidatorSettings, sam: LegacySam | None
) -> SamOpener | None:
    """How the loop connects a PC/SC SAM again after an outage (None for the software SAM or
    none).

    The old connection is let go first (it may hold the reader exclusively); the new one is
    checked and unlocked as at start-up. Failures are SamError: the gate stays out of service.
    """
    if spec in SOFTWARE_SAM_SPECS or sam is None:
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
