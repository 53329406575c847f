# SPDX-License-Identifier: Apache-2.0
"""Doctor checks of what a hostile host leaves behind (issue 15): journal files the service
cannot append to, quarantined journal tails, and a metrics port another program holds."""

from __future__ import annotations

import datetime as dt
import socket
import urllib.error
import urllib.request
from pathlib import Path

from validator.app.doctor.report import Check, Identity, Status
from validator.app.settings import ValidatorSettings
from validator.app.station import journal_key_path
from validator.journal.keyfile import MIN_KEY_BYTES, read_journal_key
from validator.journal.writer import QUARANTINE_PREFIX, journal_files
from yamlconfig import ConfigError

LOCK_NAME = ".lock"  # validator.journal.writer.Journal takes its flock on this file
METRICS_TIMEOUT_S = 1.0
METRIC_PREFIX = b"calypso_validator_"  # validator.app.metrics names every metric so


def unwritable_files(directory: Path, who: Identity) -> Check | None:
    """A failing check when a journal file or the lock is not writable by ``who`` (else None).

    A run as root leaves root-owned files behind; the service user then cannot append to the
    newest one nor take the lock, and stops with exit 3 (issue 15.18).
    """
    paths = journal_files(directory) + [directory / LOCK_NAME]
    bad = []
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not who.may(info, 6):
            bad.append(path.name)
    if not bad:
        return None
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return Check(
        "journal",
        Status.FAIL,
        f"{directory}: {len(bad)} files not writable by {who.name}: {shown}",
        f"chown -R {who.name}: {directory} (a run as root left them; or rerun deploy/install.sh)",
    )


def quarantine(directory: Path) -> Check:
    """Torn or foreign journal tails set aside at start-up: how many, the newest, the bytes."""
    try:
        found = [
            (path.stat().st_mtime, path.stat().st_size, path)
            for path in directory.glob(f"{QUARANTINE_PREFIX}*")
            if path.is_file()
        ]
    except OSError as exc:
        return Check("quarantine", Status.WARN, f"{directory}: cannot list: {exc}")
    if not found:
        return Check("quarantine", Status.PASS, f"{directory}: none")
    when, _, newest = max(found)
    size = sum(size for _, size, _ in found)
    stamp = dt.datetime.fromtimestamp(when, dt.UTC)
    return Check(
        "quarantine",
        Status.WARN,
        f"{len(found)} quarantine files, {size} bytes; newest {newest.name} "
        f"({stamp:%Y-%m-%d %H:%M} UTC)",
        "a torn or foreign last line was set aside at start-up: look at it, run validator "
        "replay on the folder, ship the files with the journal, then remove them",
    )


def metrics_checks(settings: ValidatorSettings) -> list[Check]:
    """The metrics check when an endpoint is configured, else none."""
    if not settings.metrics_address:
        return []
    return [metrics(settings.metrics_address, settings.metrics_port)]


def metrics(address: str, port: int) -> Check:
    """The metrics endpoint: served by the validator, free for it, or held by something else."""
    where = f"{address}:{port}"
    host = f"[{address}]" if ":" in address else address
    try:
        with urllib.request.urlopen(  # noqa: S310 - http to the configured local endpoint
            f"http://{host}:{port}/metrics", timeout=METRICS_TIMEOUT_S
        ) as answer:
            body = answer.read(1 << 20)
    except (urllib.error.URLError, OSError, ValueError):
        body = None
    if body is not None and METRIC_PREFIX in body:
        return Check("metrics", Status.PASS, f"http://{where}/metrics served by the validator")
    try:
        family = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as exc:
        return Check(
            "metrics",
            Status.FAIL,
            f"metrics_address {address!r} is not an address ({exc})",
            "set metrics_address to 127.0.0.1 or an address of this host",
        )
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            return Check(
                "metrics",
                Status.WARN,
                f"{where} cannot be bound ({exc.strerror or exc}): another program holds it; "
                "the validator serves without metrics",
                "free the port, or change metrics_port (and SocketBindAllow= in the unit)",
            )
    return Check("metrics", Status.PASS, f"{where} free: validator run will serve it")


def journal_key_check(config_dir: Path, settings: ValidatorSettings, who: Identity) -> Check:
    """The doctor's ``journal_key`` check: :func:`load_journal_key`, then the service may read."""
    path = journal_key_path(config_dir, settings)
    if path is None:
        return Check("journal_key", Status.PASS, "not set: journal entries are chained, not MACed")
    try:
        key = read_journal_key(path)
    except ConfigError as exc:
        return Check(
            "journal_key",
            Status.FAIL,
            "; ".join(exc.details()),
            f"write the key as hex (at least {MIN_KEY_BYTES} bytes) in {path}; chmod 600 {path}",
        )
    info = path.stat()
    if not who.may(info, 4):
        return Check(
            "journal_key",
            Status.FAIL,
            f"{path}: the service user {who.name} cannot read it (owner uid {info.st_uid})",
            f"chown {who.name} {path}; chmod 600 {path}",
        )
    return Check("journal_key", Status.PASS, f"{path}: {len(key)}-byte key, readable by {who.name}")
