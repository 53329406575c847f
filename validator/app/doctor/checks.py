# SPDX-License-Identifier: Apache-2.0
"""The doctor's checks that need the settings: mode, pcscd, readers, SAM, keys, journal."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from contextlib import ExitStack
from pathlib import Path

import yaml

from calypso.emulator.dispatch import CardEmulator
from readers.base import CardConnection, ReaderError
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.base import SamError
from sam.client import LegacySam
from sam.keys import KeyFileError, KeySet, load_keys
from sam.software.dispatch import SoftwareSam
from validator.app.clock import ClockError, check_clock, clock_range
from validator.app.doctor import host as doctor_host
from validator.app.doctor.host import journal_key_check
from validator.app.doctor.pki import not_needed, pki_check, without_sam
from validator.app.doctor.report import FREE_FAIL, FREE_WARN, Check, Probes, Status
from validator.app.settings import ValidatorSettings
from validator.app.station import SOFTWARE_SAM_SPECS, build_station
from validator.engine.fares.decide import TapContext
from yamlconfig import ConfigError

SAM_TIMEOUT_S = 2.0
_SHARING_VIOLATION = 0x8010000B


def _declares_simulation(path: Path) -> bool:
    """Whether a key file says ``simulation: true`` (load_keys checks the rest)."""
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(content, dict) and content.get("simulation") is True


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


class Doctor:
    """Runs the checks in order; later checks use what earlier ones found (the SAM, the keys)."""

    def __init__(
        self, config_dir: Path, settings: ValidatorSettings, probes: Probes, stack: ExitStack
    ) -> None:
        self.config_dir = config_dir
        self.settings = settings
        self.probes = probes
        self.stack = stack
        self.software = settings.sam_reader in SOFTWARE_SAM_SPECS
        self.readers: list[str] | None = None  # PC/SC names, once pcscd answered
        self.sam: LegacySam | None = None
        self.keys: KeySet | None = None
        self.key_path = config_dir / settings.keys
        self.no_sam = without_sam(settings)

    def run(self) -> list[Check]:
        """Every check that depends on the settings, in the order a technician reads them."""
        return [
            self.mode(),
            self.pcscd(),
            self.card_reader(),
            self.sam_reader(),
            self.keys_file(),
            self.sam_check(),
            self.keys_match(),
            pki_check(self.config_dir, self.settings),
            self.journal(),
            doctor_host.quarantine((self.config_dir / self.settings.journal_dir).resolve()),
            *doctor_host.metrics_checks(self.settings),
            self.journal_key(),
        ]

    def mode(self) -> Check:
        """Simulation on or off; on with a real card reader is suspicious."""
        if not self.settings.simulation:
            return Check("simulation", Status.PASS, "production mode (simulation keys refused)")
        if self.settings.card_reader == "emulated":
            return Check(
                "simulation", Status.PASS, "SIMULATION mode: emulated cards and software SAM"
            )
        return Check(
            "simulation",
            Status.WARN,
            f"SIMULATION mode with a real card reader ({self.settings.card_reader}): "
            "the public simulation keys are accepted",
            "set simulation: false in validator.yaml for real fares",
        )

    def pcscd(self) -> Check:
        """pcscd answers (when a reader is a PC/SC one)."""
        specs = [self.settings.card_reader, self.settings.sam_reader]
        if not any(spec.startswith("pcsc:") for spec in specs):
            return Check("pcscd", Status.PASS, "not needed (no PC/SC reader configured)")
        try:
            self.readers = self.probes.list_readers()
        except ReaderError as exc:
            return Check(
                "pcscd",
                Status.FAIL,
                f"PC/SC not reachable: {exc}",
                "apt-get install pcscd; systemctl enable --now pcscd.socket; "
                "pip install 'calypso-gate-validator[pcsc]' for pyscard",
            )
        names = ", ".join(self.readers) or "none"
        return Check("pcscd", Status.PASS, f"reachable; {len(self.readers)} readers: {names}")

    def card_reader(self) -> Check:
        """The card reader is there (or emulated, which needs simulation)."""
        spec = self.settings.card_reader
        if spec == "emulated":
            if not self.settings.simulation:
                return Check(
                    "card_reader",
                    Status.FAIL,
                    "emulated card reader without simulation: true",
                    "set card_reader: pcsc:REGEX or nfc:PATH (see validator readers)",
                )
            return Check("card_reader", Status.PASS, "emulated (simulated passengers; no hardware)")
        if spec.startswith("nfc:"):
            path = spec.removeprefix("nfc:")
            found = self.probes.find_nfc(path)
            if found:
                return Check("card_reader", Status.PASS, f"nfcpy: {found[0]}")
            return Check(
                "card_reader",
                Status.FAIL,
                f"no nfcpy device at {path!r}",
                "plug the reader; udev rule (deploy/udev) for the service user; "
                "pcscd or pn533_usb must not hold it",
            )
        return self._pcsc_reader("card_reader", spec)

    def sam_reader(self) -> Check:
        """The SAM reader is there (or the software SAM is used)."""
        spec = self.settings.sam_reader
        if self.no_sam:
            return not_needed("sam_reader")
        if self.software and not self.settings.simulation:
            # Production keys in a file on this host, used by software: no SAM protects them.
            return Check(
                "sam_reader",
                Status.FAIL,
                f"software SAM ({spec}) in process in production mode (simulation: false)",
                "put the SAM in a PC/SC reader and set sam_reader: pcsc:REGEX (validator readers)",
            )
        if self.software:
            return Check(
                "sam_reader", Status.PASS, "software SAM (CSIM1) in process: no SAM reader"
            )
        check = self._pcsc_reader("sam_reader", spec)
        card = self.settings.card_reader
        if check.status is Status.PASS and card.startswith("pcsc:"):
            same = self._match(spec)
            if same is not None and same == self._match(card):
                return Check(
                    "sam_reader",
                    Status.FAIL,
                    f"card_reader and sam_reader both match {same!r}",
                    "make the patterns tell the contactless slot from the SAM slot",
                )
        return check

    def _match(self, spec: str) -> str | None:
        """The first PC/SC reader a pcsc:REGEX spec picks (as PcscReader does)."""
        pattern = spec.removeprefix("pcsc:")
        return next((n for n in self.readers or [] if re.search(pattern, n)), None)

    def _pcsc_reader(self, name: str, spec: str) -> Check:
        if not spec.startswith("pcsc:"):
            return Check(name, Status.FAIL, f"unknown reader spec {spec!r}", "see README, Hardware")
        if self.readers is None:
            return Check(name, Status.FAIL, f"{spec}: cannot list PC/SC readers", "see pcscd")
        found = self._match(spec)
        if found is None:
            names = ", ".join(self.readers) or "none"
            return Check(
                name,
                Status.FAIL,
                f"no PC/SC reader matches {spec.removeprefix('pcsc:')!r} (readers: {names})",
                f"plug the reader, or fix {name} in validator.yaml (validator readers lists them)",
            )
        return Check(name, Status.PASS, f"{spec} is {found!r}")

    def keys_file(self) -> Check:
        """The key file is readable by the service only, and loads."""
        path = self.key_path
        if self.no_sam and not path.exists():
            return not_needed("keys")
        if not path.exists():
            if self.software:
                return Check("keys", Status.FAIL, f"{path}: missing", "the software SAM needs it")
            return Check(
                "keys",
                Status.WARN,
                f"{path}: missing; the SAM's keys cannot be cross-checked",
                "install the key references (and unlock data) in /etc/calypso-validator/",
            )
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        who = self.probes.identity
        simulation = _declares_simulation(path)
        if not simulation and mode & (stat.S_IRWXG | stat.S_IRWXO):
            return Check(
                "keys",
                Status.FAIL,
                f"{path}: mode {mode:04o}: group or others may read the production keys",
                f"chmod 600 {path}; chown {who.name} {path}",
            )
        if not who.may(info, 4):
            return Check(
                "keys",
                Status.FAIL,
                f"{path}: the service user {who.name} cannot read it "
                f"(owner uid {info.st_uid}, mode {mode:04o})",
                f"chown {who.name} {path}; chmod 600 {path}",
            )
        try:
            self.keys = load_keys(path, allow_simulation=self.settings.simulation)
        except KeyFileError as exc:
            return Check("keys", Status.FAIL, str(exc), "fix the key file (docs/sam.md)")
        count = len(self.keys.keys)
        if simulation:
            return Check("keys", Status.PASS, f"{path}: {count} simulation keys (public)")
        return Check(
            "keys", Status.PASS, f"{path}: {count} keys, mode {mode:04o}, readable by {who.name}"
        )

    def sam_check(self) -> Check:
        """The SAM answers: its type and serial from the ATR, unlocked, a challenge served."""
        connection: CardConnection
        if self.no_sam:
            return not_needed("sam")
        if self.software:
            if self.keys is None:
                return Check("sam", Status.FAIL, "software SAM not built: see the keys check")
            reader = EmulatedReader("software SAM")
            reader.insert(SoftwareSam(self.keys))
            connection = reader.connect()
        elif self.readers is None or self._match(self.settings.sam_reader) is None:
            return Check("sam", Status.FAIL, "not checked: no SAM reader (see above)")
        else:
            try:
                found = self.probes.connect(self.settings.sam_reader[5:], SAM_TIMEOUT_S, self.stack)
            except ReaderError as exc:
                if getattr(exc, "hresult", None) == _SHARING_VIOLATION:
                    return Check(
                        "sam",
                        Status.WARN,
                        f"the SAM reader is in use: {exc}",
                        "the running validator holds it: systemctl stop calypso-validator",
                    )
                return Check("sam", Status.FAIL, f"cannot reach the SAM: {exc}", "see sam_reader")
            if found is None:
                return Check(
                    "sam", Status.FAIL, "no SAM in the SAM reader", "insert the SAM (contacts down)"
                )
            connection = found
        channel = ApduChannel(connection, label="sam")
        try:
            sam = LegacySam(channel)
        except SamError as exc:
            return Check("sam", Status.FAIL, str(exc), "this is not a Calypso legacy SAM")
        what = f"{sam.identity.sam_type.value} serial {sam.serial.hex().upper()}"
        if self.software:
            what += " (software SAM)"
        unlocked = ""
        secret = self.keys.unlock_secret() if self.keys is not None else None
        try:
            if secret is not None:
                sam.unlock(secret)
                unlocked = ", unlocked with the key file's unlock data"
            sam.prefetch()
        except (SamError, ReaderError) as exc:
            return Check(
                "sam",
                Status.FAIL,
                f"{what}: does not serve a challenge ({exc})",
                "a locked SAM needs unlock_data in the key file"
                if secret is None
                else "the unlock data does not match this SAM",
            )
        self.sam = sam
        return Check("sam", Status.PASS, f"{what}{unlocked}; challenge served")

    def keys_match(self) -> Check:
        """The SAM holds the keys of the file; the software SAM runs a test session."""
        if self.no_sam:
            return not_needed("sam_keys")
        if self.sam is None:
            return Check("sam_keys", Status.FAIL, "not checked: see the sam check")
        if self.keys is None:
            if not self.software and not self.key_path.exists():
                return Check("sam_keys", Status.WARN, "not checked: no key file to compare")
            return Check("sam_keys", Status.FAIL, "not checked: see the keys check")
        if self.software and self.settings.simulation:
            return self._test_session()
        missing = []
        for key in self.keys.keys:
            try:
                self.sam.read_key_parameters(key.kif, key.kvc)
            except SamError:
                missing.append(f"{key.kif:02X}/{key.kvc:02X}")
        if missing:
            return Check(
                "sam_keys",
                Status.FAIL,
                f"the SAM lacks keys of {self.key_path.name}: {', '.join(missing)}",
                "wrong SAM for this network, or a stale key file",
            )
        count = len(self.keys.keys)
        return Check("sam_keys", Status.PASS, f"the SAM holds the {count} keys of the key file")

    def _test_session(self) -> Check:
        assert self.sam is not None  # noqa: S101 - checked by the caller
        reader = EmulatedReader("doctor")
        station = build_station(
            self.config_dir, self.settings, reader=reader, sam=self.sam, journal=None
        )
        now = self.probes.now().astimezone().replace(tzinfo=None)  # local, as the loop's clock
        try:
            check_clock(now, clock_range(self.settings.layouts.values()))
        except ClockError as exc:
            return Check("sam_keys", Status.FAIL, f"not checked: {exc}", "see the clock check")
        seen = []
        for path in sorted((self.config_dir / self.settings.cards).glob("*.yaml")):
            try:
                reader.insert(CardEmulator.from_profile(path))
            except ConfigError:
                continue
            context = TapContext(now, station.location)
            result = station.processor.process(reader.connect(), context).result
            reader.remove()
            if result.mac_verified:
                return Check(
                    "sam_keys",
                    Status.PASS,
                    f"test session with card {path.stem}: {result.outcome.value}, "
                    "card MAC verified by the SAM",
                )
            seen.append(f"{path.stem}: {result.outcome.value} {result.reason}")
        return Check(
            "sam_keys",
            Status.FAIL,
            "no test session completed with a verified MAC"
            + (f" ({'; '.join(seen)})" if seen else " (no card profile)"),
            "the key file and the card profiles' keys differ",
        )

    def journal_key(self) -> Check:
        """The journal HMAC key file loads as ``run`` loads it, and the service may read it."""
        return journal_key_check(self.config_dir, self.settings, self.probes.identity)

    def journal(self) -> Check:
        """The journal directory is writable by the service, with free space."""
        directory = (self.config_dir / self.settings.journal_dir).resolve()
        who = self.probes.identity
        existing = directory
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return Check(
                "journal", Status.FAIL, f"{existing} is not a directory", "fix journal_dir"
            )
        info = existing.stat()
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return Check(
                "journal",
                Status.FAIL,
                f"{existing}: read-only filesystem",
                "journal_dir must be on a writable filesystem (ReadWritePaths= in the unit)",
            )
        if not who.may(info, 3):
            return Check(
                "journal",
                Status.FAIL,
                f"{existing}: not writable by {who.name} "
                f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})",
                f"chown {who.name} {existing}; chmod 750 {existing}",
            )
        if existing == directory:
            files = doctor_host.unwritable_files(directory, who)
            if files is not None:
                return files
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
                pass
        except OSError as exc:
            return Check("journal", Status.FAIL, f"{existing}: cannot write: {exc}", "")
        usage = os.statvfs(existing)
        free = usage.f_bavail * usage.f_frsize
        where = str(directory) if existing == directory else f"{directory} (to be created)"
        if free < FREE_FAIL:
            return Check("journal", Status.FAIL, f"{where}: {_mib(free)} free", "free space")
        detail = f"{where}: writable by {who.name}, {_mib(free)} free"
        if free < FREE_WARN:
            return Check("journal", Status.WARN, detail, "ship and remove old journal files")
        waiting = self._unshipped(directory) if existing == directory else None
        if waiting is not None:
            return Check("journal", Status.WARN, f"{detail}; {waiting}", "run: validator ship")
        return Check("journal", Status.PASS, detail)

    def _unshipped(self, directory: Path) -> str | None:
        """Unacknowledged journal bytes past shipping.warn_unshipped_mib, said in words."""
        from validator.app.ship.run import unshipped

        shipping = self.settings.shipping
        if shipping is None:
            return None
        files, size = unshipped(directory)
        if size <= shipping.warn_unshipped_mib * 1024 * 1024:
            return None
        return f"{files} journal files ({_mib(size)}) not acknowledged by the collector"
