# SPDX-License-Identifier: Apache-2.0
"""Security checks: forged and replayed MACs, simulation keys in production, key leaks,
journal tampering, key file permissions.

(a) A card whose Close answer carries a forged MAC (one bit flipped, or zeros) or the Close
answer of an earlier session of the same card never opens the gate: outcome neither granted
nor recovered, ``mac_verified`` false, in the result and in the journal; a genuine tap after
each attempt is granted (the SAM is not left broken, and the set-up can grant at all).
(b) A production set-up (key file of KVC 79h made here, mode 0600, settings without
simulation authorising 79h only): a production card is granted, a card with the simulation
keys is refused before any debit (no write sent, card unchanged), with or without an
authorised-keys list; the software SAM and ``validator.app.station.open_sam`` refuse the simulation
key file when simulation is off. (c) security_leaks: no key, PIN or unlock data in logs at
TRAFFIC level, reprs, errors, tracebacks, journals (lab.reliability.security.leakscan). (d)
security_journal:
journal tampering detected by ``validator replay``. (e) A production key file readable by group
or others is refused with a clear error (chmod 600 advice); 0600 is accepted.
Every failed check is a violation. Levels differ only in repetitions.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from calypso.commands import CardIns
from lab.paths import CONFIG
from lab.reliability.report import Level, Log, PartResult
from lab.reliability.security import journal as security_journal
from lab.reliability.security import leaks as security_leaks
from lab.reliability.security.station import (
    CloseRewriter,
    Production,
    card,
    flip_bit,
    make_station,
    simulation_station,
    write_production_keys,
)
from sam.keys import KeyFileError, load_keys
from sam.software.dispatch import SoftwareSam
from validator.app.station import open_sam
from validator.engine.outcome import Outcome
from validator.engine.tap import TapRecord
from validator.journal.entry import JournalEntry
from yamlconfig import ConfigError

NAME = "security"
WRITE_INS = {
    CardIns.DECREASE,
    CardIns.INCREASE,
    CardIns.APPEND_RECORD,
    CardIns.UPDATE_RECORD,
    CardIns.WRITE_RECORD,
    CardIns.SV_DEBIT,
    CardIns.INCREASE_MULTIPLE,
    CardIns.DECREASE_MULTIPLE,
}


class Checks:
    """Counts checks and collects the violations of one run."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.tried = 0
        self.violations: list[str] = []

    def expect(self, ok: bool, what: str) -> bool:
        """One check: a violation ``what`` unless ``ok``."""
        self.tried += 1
        if not ok:
            self.violations.append(what)
        return ok

    def guarded(self, label: str, check: Callable[[], None]) -> None:
        """Run a group of checks; an unexpected exception is a violation, not a crash."""
        try:
            check()
        except Exception as exc:  # the campaign goes on; the exception is the finding
            self.tried += 1
            self.violations.append(f"{label}: unexpected {exc!r}")


def _shut(record: TapRecord, what: str, checks: Checks) -> None:
    result = record.result
    checks.expect(
        not result.outcome.opens_gate and not result.mac_verified,
        f"{what}: gate {result.outcome.value}, mac_verified {result.mac_verified}",
    )
    entry = JournalEntry.from_json(record.entry)  # as written (a malformed one: a violation)
    checks.expect(
        entry.mac_verified is False and entry.outcome == result.outcome.value,
        f"{what}: journal entry says mac_verified {entry.mac_verified}",
    )


def check_forged_and_replayed(workdir: Path, variants: int, checks: Checks) -> dict[str, int]:
    """(a) Forged MACs (bit flips, zeros) and replayed Close answers never open the gate."""
    station = simulation_station(workdir / "journal-mac")
    figures = {"forged": 0, "replayed": 0}
    try:
        genuine = station.tap(card("multi_trip", 1, 0x1000))
        mac = genuine.result.card_mac
        if not checks.expect(
            genuine.result.outcome is Outcome.GRANTED and mac is not None,
            f"a genuine multi-trip tap is not granted: {genuine.result.reason}",
        ):
            return figures
        assert mac is not None  # noqa: S101 - checked just above
        rewrites: list[tuple[str, Callable[[bytes], bytes]]] = [
            (f"bit flip {i}", flip_bit(len(mac), i)) for i in range(variants)
        ]
        rewrites.append(("zero MAC", lambda a: a[: -2 - len(mac)] + bytes(len(mac)) + a[-2:]))
        for index, (name, rewrite) in enumerate(rewrites):
            forger = CloseRewriter(card("multi_trip", 10 + index, 0x2000 + index), rewrite)
            _shut(station.tap(forger), f"forged MAC ({name})", checks)
            figures["forged"] += 1
            after = station.tap(card("multi_trip", 500 + index, 0x3000 + index))
            checks.expect(
                after.result.outcome is Outcome.GRANTED and after.result.mac_verified,
                f"genuine tap after a forged MAC ({name}): {after.result.reason}",
            )
        for index in range(max(1, variants // 4)):
            recorder = CloseRewriter(card("multi_trip", 900 + index, 0x4000 + index), bytes)
            first = station.tap(recorder)
            if not checks.expect(
                first.result.outcome is Outcome.GRANTED and len(recorder.closes) == 1,
                f"replay: the recorded session was not granted ({first.result.reason})",
            ):
                continue
            old = recorder.closes[0]
            recorder.rewrite = lambda _answer, old=old: old  # type: ignore[misc]
            _shut(station.tap(recorder, gap_s=600), f"replayed Close answer #{index}", checks)
            figures["replayed"] += 1
    finally:
        station.close()
    return figures


def _untouched(record: TapRecord) -> bool:
    return not any(ex.command[1] in WRITE_INS for ex in record.result.card_trace)


def check_simulation_refused(workdir: Path, repeats: int, checks: Checks) -> Production:
    """(b) Simulation cards refused by a production set-up, before any debit; SAM refuses too."""
    production = write_production_keys(workdir / "production", seed=79)
    for variant, settings in (
        ("authorised 79h only", production.settings),
        ("no authorised list", production.settings.model_copy(update={"authorized_keys": []})),
    ):
        station = make_station(
            settings, production.key_file, workdir / f"journal-prod-{len(settings.authorized_keys)}"
        )
        try:
            good = station.tap(production.card("multi_trip", 3))
            checks.expect(
                good.result.outcome is Outcome.GRANTED and good.result.mac_verified,
                f"production ({variant}): a production card is not granted ({good.result.reason})",
            )
            for index in range(repeats):
                for profile in ("multi_trip", "season_pass", "sv_purse"):
                    sim = card(profile, 40 + index, 0x5000 + index)
                    before = sim.snapshot().files  # records (the session counter moves)
                    record = station.tap(sim)
                    what = f"production ({variant}): simulation {profile} card"
                    _shut(record, what, checks)
                    checks.expect(
                        record.result.outcome is Outcome.DENIED and _untouched(record),
                        f"{what}: {record.result.outcome.value}, writes sent",
                    )
                    checks.expect(sim.snapshot().files == before, f"{what}: the card changed")
        finally:
            station.close()
    simulation_keys = CONFIG / "keys.sim.yaml"
    for label, attempt in (
        ("SoftwareSam.from_keys", lambda: SoftwareSam.from_keys(simulation_keys)),
        ("load_keys", lambda: load_keys(simulation_keys, allow_simulation=False)),
        (
            "validator.app.station.open_sam",
            lambda: open_sam(
                "software", CONFIG, production.settings.model_copy(update={"keys": "keys.sim.yaml"})
            ),
        ),
    ):
        try:
            attempt()
            checks.expect(False, f"{label} loaded the simulation keys without simulation")
        except ConfigError as exc:
            checks.expect("simulation" in str(exc), f"{label}: unclear refusal: {exc}")
    return production


def check_permissions(workdir: Path, production: Production, checks: Checks) -> None:
    """(e) Production key files readable or writable by others refused; 0600 accepted."""
    path = production.key_file
    for mode in (0o644, 0o640, 0o604, 0o660, 0o602):
        path.chmod(mode)
        try:
            load_keys(path)
            checks.expect(False, f"key file mode {mode:04o} accepted")
        except KeyFileError as exc:
            checks.expect(
                "chmod 600" in str(exc) and f"{mode:04o}" in str(exc),
                f"key file mode {mode:04o}: unclear error: {exc}",
            )
    path.chmod(0o600)
    checks.expect(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "cannot restore mode 0600")
    try:
        checks.expect(len(load_keys(path).keys) == 3, "mode 0600: keys missing")
        SoftwareSam.from_keys(path)
    except KeyFileError as exc:
        checks.expect(False, f"key file mode 0600 refused: {exc}")


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Run every security check; each failed check is a violation."""
    checks = Checks(log)
    figures: dict[str, object] = {}
    variants = level.pick(64, 16, 4)
    production: list[Production] = []

    def mac_checks() -> None:
        figures.update(check_forged_and_replayed(workdir, variants, checks))

    def simulation_checks() -> None:
        production.append(check_simulation_refused(workdir, level.pick(4, 2, 1), checks))
        check_permissions(workdir, production[0], checks)

    def journal_checks() -> None:
        figures.update(security_journal.run_checks(workdir / "tamper", level, checks))

    def body() -> None:
        checks.guarded("forged/replayed MAC", mac_checks)
        checks.guarded("simulation keys", simulation_checks)
        checks.guarded("journal tampering", journal_checks)

    figures.update(
        security_leaks.run_with_scan(
            workdir,
            body,
            checks,
            taps=level.pick(6, 3, 1),
            key_files=lambda: [p.key_file for p in production],
        )
    )
    figures["checks"] = checks.tried
    log(f"{checks.tried} checks, {len(checks.violations)} violations")
    return PartResult(
        NAME,
        f"{checks.tried} checks: {figures.get('forged', 0)} forged + "
        f"{figures.get('replayed', 0)} replayed MACs, sim cards, leaks "
        f"({figures.get('scanned_mb', 0)} MB), {figures.get('tampered', 0)} tamperings",
        f"{figures.get('leak_findings', 0)} leaks, {figures.get('tamper_missed', 0)} missed",
        checks.violations,
        figures=figures,
    )
