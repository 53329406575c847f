# SPDX-License-Identifier: Apache-2.0
"""``validator doctor``: what is wrong with this box, one check per line, each with a hint.

Checks: clock (first: a 1970 clock must not trip a later check), configuration, simulation
mode, pcscd, card reader, SAM reader, SAM (type, serial, unlocked), keys (permissions, loaded,
matching the SAM), journal directory (and every journal file and the lock), quarantined journal
tails, and the metrics endpoint when one is configured. Each is pass, warn or fail; the exit
code is 0 (all pass), 1 (a warning) or 2 (a failure). Permissions are judged for the service
user (``calypso-validator`` when it exists) by the mode bits alone: the unit runs with no
capabilities, so not even root could override them there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from readers.base import CardConnection

SERVICE_USER = "calypso-validator"
# The clock may not be before this release's date (a host with a flat RTC battery boots in 1970).
BUILD_DATE = dt.date(2026, 11, 1)
FREE_FAIL = 16 * 1024 * 1024  # less than one journal file
FREE_WARN = 256 * 1024 * 1024


class Status(StrEnum):
    """The verdict of one check, in increasing gravity."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One check: its name, verdict, what was found and, unless it passed, what to do."""

    name: str
    status: Status
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Identity:
    """Whose permissions count: a user name, its uid and its groups."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def service(cls, name: str | None = None) -> Identity:
        """The named user, else the service user if it exists, else the current process."""
        try:
            entry = pwd.getpwnam(name or SERVICE_USER)
        except KeyError:
            if name is not None:
                raise ValueError(f"no such user: {name}") from None
            uid = os.geteuid()
            gids = frozenset([os.getegid(), *os.getgroups()])
            try:
                user = pwd.getpwuid(uid).pw_name
            except KeyError:
                user = str(uid)
            return cls(user, uid, gids)
        groups = {g for g in os.getgrouplist(entry.pw_name, entry.pw_gid)}
        return cls(entry.pw_name, entry.pw_uid, frozenset(groups))

    def may(self, info: os.stat_result, want: int) -> bool:
        """Whether the mode bits grant ``want`` (4 read, 2 write, 1 execute; or-ed) to us."""
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid == self.uid:
            bits = mode >> 6
        elif info.st_gid in self.gids:
            bits = mode >> 3
        else:
            bits = mode
        return bits & want == want


def ntp_status() -> tuple[bool | None, str]:
    """(synchronised, how we know) from timedatectl; None when it cannot tell."""
    tool = shutil.which("timedatectl")
    if tool is None:
        return None, "timedatectl is not installed"
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [tool, "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"timedatectl failed: {exc}"
    value = done.stdout.strip()
    if done.returncode != 0 or value not in ("yes", "no"):
        why = (done.stderr.strip() or value or f"exit code {done.returncode}").splitlines()[0]
        return None, f"timedatectl: {why}"
    return value == "yes", "timedatectl"


def list_pcsc_readers() -> list[str]:
    """The PC/SC reader names (ReaderError when pcscd or pyscard is not there)."""
    from readers.pcsc import list_readers

    return list_readers()


def connect_pcsc(pattern: str, timeout: float, stack: ExitStack) -> CardConnection | None:
    """Connect to what is in the first PC/SC reader matching ``pattern`` (None: empty).

    The reader's context is released when ``stack`` closes (after the connection).
    """
    from readers.pcsc import PcscReader

    reader = PcscReader(pattern)
    stack.callback(reader.close)
    connection = reader.wait_for_card(timeout=timeout)
    if connection is not None:
        stack.callback(connection.close)
    return connection


def find_nfc(path: str) -> list[str]:
    """The nfcpy devices found at ``path``."""
    from readers.nfc import find_devices

    return find_devices((path,))


@dataclass
class Probes:
    """What the doctor asks the host; tests replace these."""

    list_readers: Callable[[], list[str]] = list_pcsc_readers
    connect: Callable[[str, float, ExitStack], CardConnection | None] = connect_pcsc
    find_nfc: Callable[[str], list[str]] = find_nfc
    ntp: Callable[[], tuple[bool | None, str]] = ntp_status
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    identity: Identity = field(default_factory=Identity.service)


@dataclass
class Report:
    """Every check, and the exit code they add up to."""

    config_dir: Path
    checks: list[Check]

    @property
    def status(self) -> Status:
        """The gravest verdict."""
        order = list(Status)
        return max((c.status for c in self.checks), key=order.index, default=Status.PASS)

    @property
    def exit_code(self) -> int:
        """0 all pass, 1 a warning, 2 a failure."""
        return list(Status).index(self.status)

    def as_json(self) -> str:
        """The report as one JSON document."""
        return json.dumps(
            {
                "config_dir": str(self.config_dir),
                "status": self.status.value,
                "exit_code": self.exit_code,
                "checks": [c.as_dict() for c in self.checks],
            },
            indent=2,
        )

    def check(self, name: str) -> Check:
        """The check of this name (KeyError if it did not run)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


def clock_check(probes: Probes, journal_dir: Path | None) -> Check:
    """Not before the build date, not behind the journal, and NTP synchronised."""
    from validator.app.clock import DEFAULT_RANGE

    now = probes.now()
    if now.date() > DEFAULT_RANGE[1]:
        return Check(
            "clock",
            Status.FAIL,
            f"the clock says {now:%Y-%m-%d %H:%M} UTC, past what the card layouts can encode "
            f"({DEFAULT_RANGE[1]})",
            "set the time (timedatectl set-time, or NTP)",
        )
    if now.date() < BUILD_DATE:
        return Check(
            "clock",
            Status.FAIL,
            f"the clock says {now:%Y-%m-%d %H:%M} UTC, before this release ({BUILD_DATE})",
            "set the time (timedatectl set-time, or NTP) and check the RTC battery",
        )
    last = last_journal_time(journal_dir) if journal_dir is not None else None
    if last is not None and now < last - dt.timedelta(minutes=5):
        return Check(
            "clock",
            Status.FAIL,
            f"the clock says {now:%Y-%m-%d %H:%M} UTC, behind the journal's last entry "
            f"({last:%Y-%m-%d %H:%M} UTC)",
            "the clock went backwards: fix the time (NTP) before serving taps",
        )
    synced, how = probes.ntp()
    detail = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    if synced is None:
        return Check(
            "clock",
            Status.WARN,
            f"{detail}; NTP status unknown ({how})",
            "on the validator host, check with: timedatectl status",
        )
    if not synced:
        return Check(
            "clock",
            Status.WARN,
            f"{detail}; not synchronised by NTP ({how})",
            "timedatectl set-ntp true (systemd-timesyncd or chrony must reach a server)",
        )
    return Check("clock", Status.PASS, f"{detail}; NTP synchronised")


def last_journal_time(directory: Path) -> dt.datetime | None:
    """The ``time`` of the newest journal entry (None when there is none or it is unreadable)."""
    from validator.journal.writer import journal_files

    try:
        files = journal_files(directory)
        if not files:
            return None
        with open(files[-1], "rb") as handle:
            handle.seek(max(0, files[-1].stat().st_size - 65536))
            lines = [line for line in handle.read().splitlines() if line.strip()]
        when = dt.datetime.fromisoformat(json.loads(lines[-1])["time"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
