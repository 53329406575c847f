# SPDX-License-Identifier: Apache-2.0
"""A real collector process for the shipping tests and campaign, and validators to ship to it.

``ShippingLab`` lays out, in one directory: the test PKI (lab.tlscerts: a CA, the collector's
certificate, one client certificate per validator), the collector's folder (collector.yaml) and
one configuration folder per validator (a copy of config/ with its own id, journal directory,
journal key and ``shipping:`` section). ``CollectorProcess`` runs ``validator office serve`` as
a child process, stopped and started again on the same port.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lab.paths import CONFIG
from lab.tlscerts import TestCa

JOURNAL_KEY = bytes(range(32))  # TEST MATERIAL: the journal key of every lab validator


def _private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


class ShippingLab:
    """The collector's folder and the validators' folders, sharing one test CA."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        validators: list[str],
        *,
        office_key: bytes | None = None,
    ) -> None:
        """Write the PKI and the settings (the collector's port is 0 until it first starts);
        ``office_key``: the collector's office key (a pseudonyms-only database)."""
        self.root = root
        self.ca = TestCa(root / "pki")
        self.collector_dir = root / "collector"
        self.collector_dir.mkdir(parents=True)
        server = self.ca.issue("collector", "collector", server=True)
        _private(self.collector_dir / "journal.key", JOURNAL_KEY.hex())
        settings = {
            "listen_address": "127.0.0.1",
            "port": 0,
            "certificate_file": str(server.cert),
            "key_file": str(server.key),
            "client_ca_file": str(self.ca.files.cert),
            "database_url": database_url,
            "journal_key_file": "journal.key",
        }
        if office_key is not None:
            _private(self.collector_dir / "office.key", office_key.hex())
            settings["office_key_file"] = "office.key"
        (self.collector_dir / "collector.yaml").write_text(yaml.safe_dump(settings))
        self.validators: dict[str, Path] = {}
        for name in validators:
            self.add_validator(name)

    def add_validator(self, name: str) -> Path:
        """A new validator's folder (its config, journal key, client certificate); not yet
        pointed at a collector (``configure``)."""
        folder = self.root / name
        shutil.copytree(CONFIG, folder, ignore=shutil.ignore_patterns("journal", "*.key"))
        self.ca.issue(f"client-{name}", name, server=False)
        _private(folder / "journal.key", JOURNAL_KEY.hex())
        (folder / "journal").mkdir()
        self.validators[name] = folder
        return folder

    def configure(self, name: str, url: str, **shipping: object) -> Path:
        """Point validator ``name`` at the collector ``url``; returns its config folder."""
        folder = self.validators[name]
        settings = yaml.safe_load((CONFIG / "validator.yaml").read_text())
        settings.update(validator_id=name, journal_dir="journal", journal_key_file="journal.key")
        settings["shipping"] = {
            "collector_url": url,
            "client_cert_file": str(self.ca.directory / f"client-{name}.crt"),
            "client_key_file": str(self.ca.directory / f"client-{name}.key"),
            "ca_file": str(self.ca.files.cert),
            "retention_days": 0,
            "attempts": 2,
            "backoff_s": 0.1,
            "timeout_s": 10,
            **shipping,
        }
        (folder / "validator.yaml").write_text(yaml.safe_dump(settings))
        return folder


class CollectorProcess:
    """``validator office serve`` as a child process."""

    def __init__(self, config_dir: Path, log: Path) -> None:
        """Not started yet; its stderr goes to ``log``."""
        self.config_dir = config_dir
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        """Start (on the port of the last start, if any); returns its URL once it listens."""
        executable = Path(sys.executable).with_name("validator")
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    str(executable),
                    "office",
                    "serve",
                    "--config",
                    str(self.config_dir),
                    "--port",
                    str(self.port),
                ],
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self.proc.stdout is not None  # noqa: S101 - PIPE above
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
        if not line.startswith(b"collector listening on "):
            self.stop()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"collector did not start: {line!r}\n{tail}")
        self.url = line.split()[-1].decode()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would end it (no cleanup of its own)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def write_taps(folder: Path, taps: int, *, seed: int, hour: int = 7) -> list[Path]:
    """``taps`` demo taps (with tears) appended to the journal of the validator in ``folder``.

    Files rotate at 40 kB, so a few dozen taps make several files. Returns the journal's files.
    """
    import datetime as dt

    from validator.app.demo import run_demo
    from validator.app.settings import load_settings
    from validator.journal.writer import Journal, journal_files

    settings = load_settings(folder)
    directory = folder / settings.journal_dir
    start = dt.datetime(2026, 3, 2, 0, 0) + dt.timedelta(hours=hour)
    with Journal(
        directory, key=JOURNAL_KEY, max_bytes=40_000, validator_id=settings.validator_id
    ) as journal:
        run_demo(
            folder, settings, taps=taps, seed=seed, start=start, journal=journal, tear_rate=0.3
        )
    return journal_files(directory)
