# SPDX-License-Identifier: Apache-2.0
"""The world of the shipping-faults part: validators, one collector, one private PostgreSQL.

``World`` holds the real parts (lab.collector's ShippingLab and CollectorProcess, the
``validator office serve`` process; lab.postgres' PrivatePostgres; the cutting forwarder) and
what the invariants need to know about each validator: every line ever seen on its disk, the
lines a fault destroyed on purpose before they were shipped, and each shipping run's report
with the files it deleted (their bytes, kept to check that each was wholly acknowledged).

A shipping run is ``validator ship``'s own (validator.app.ship.run.ship_journal with the
CollectorClient over mutual TLS), run in this process so that faults can strike during it.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lab.collector import CollectorProcess, ShippingLab, write_taps
from lab.postgres import PrivatePostgres
from lab.reliability.report import Log
from lab.reliability.shipping.proxy import CutProxy
from lab.tlscerts import TestCa
from validator.app.settings import load_settings
from validator.app.ship.client import CollectorClient
from validator.app.ship.run import ShipReport, ship_journal
from validator.app.ship.settings import ShippingSettings
from validator.journal.files import journal_files


def line_hashes(data: bytes) -> list[str]:
    """The SHA-256 of each non-blank line of ``data`` (what the office stores as ``hash``)."""
    return [hashlib.sha256(line).hexdigest() for line in data.splitlines() if line.strip()]


@dataclass
class Shipment:
    """One shipping run of one validator: its report and the files it deleted, with bytes."""

    validator: str
    fault: str
    report: ShipReport
    deleted: dict[str, bytes]


@dataclass
class Validator:
    """One validator of the world and what the invariants know of it."""

    name: str
    folder: Path
    written: set[str] = field(default_factory=set)  # every line hash ever seen on its disk
    lost: set[str] = field(default_factory=set)  # destroyed by a fault before shipping
    retired: bool = False  # after an integrity fault: an operator's case, it writes no more

    @property
    def journal(self) -> Path:
        """Its journal directory."""
        return self.folder / "journal"

    def files(self) -> dict[str, bytes]:
        """Its journal files now, by name, with their bytes."""
        return {path.name: path.read_bytes() for path in journal_files(self.journal)}

    def on_disk(self) -> set[str]:
        """The line hashes on its disk now."""
        return {digest for data in self.files().values() for digest in line_hashes(data)}

    def observe(self) -> None:
        """Remember every line now on disk as written."""
        self.written |= self.on_disk()


class World:
    """The collector, its database and the validators shipping to it."""

    def __init__(
        self, workdir: Path, cluster: PrivatePostgres, url: str, rnd: random.Random, log: Log
    ) -> None:
        """The PKI and settings in ``workdir``; the collector is started by ``start``."""
        self.workdir = workdir
        self.cluster = cluster
        self.url = url
        self.rnd = rnd
        self.log = log
        self.lab = ShippingLab(workdir / "lab", url, [])
        self.collector = CollectorProcess(self.lab.collector_dir, workdir / "collector.log")
        self.stranger = TestCa(workdir / "other-ca", "other-ca")  # TLS refused: not our CA
        self.validators: list[Validator] = []
        self.shipments: list[Shipment] = []
        self.figures: Counter[str] = Counter()
        self.hour = 7
        self.proxy: CutProxy | None = None

    def start(self, validators: int) -> None:
        """Start the collector and the forwarder; add ``validators`` validators."""
        self.collector.start()
        self.proxy = CutProxy(self.collector.port)
        for _ in range(validators):
            self.add_validator()

    def close(self) -> None:
        """Stop the collector and the forwarder (the database is the caller's)."""
        if self.proxy is not None:
            self.proxy.close()
        self.collector.stop()

    def add_validator(self) -> Validator:
        """A new validator, configured for the collector."""
        name = f"validator-{len(self.validators) + 1:02d}"
        folder = self.lab.add_validator(name)
        self.lab.configure(name, self.collector.url, attempts=2, backoff_s=0.05, timeout_s=10)
        validator = Validator(name, folder)
        self.validators.append(validator)
        return validator

    @property
    def active(self) -> list[Validator]:
        """The validators still writing and shipping."""
        return [v for v in self.validators if not v.retired]

    def retire(self, validator: Validator) -> None:
        """Set a validator aside after an integrity fault and put a new one in its place."""
        validator.retired = True
        self.add_validator()

    def write(self, validator: Validator, taps: int) -> None:
        """``taps`` demo taps on ``validator``'s journal, every new line remembered."""
        self.hour += 1
        write_taps(validator.folder, taps, seed=self.rnd.getrandbits(32), hour=self.hour)
        validator.observe()
        self.figures["taps_written"] += taps

    def settings(self, validator: Validator, *, via_proxy: bool = False) -> ShippingSettings:
        """The validator's ``shipping:`` settings (through the forwarder when asked)."""
        shipping = load_settings(validator.folder).shipping
        if shipping is None:
            raise RuntimeError(f"{validator.name}: no shipping section")
        if via_proxy and self.proxy is not None:
            shipping = shipping.model_copy(update={"collector_url": self.proxy.url})
        return shipping

    def ship(self, validator: Validator, fault: str, *, via_proxy: bool = False) -> ShipReport:
        """One ``validator ship`` run of ``validator``; its deletions kept for the checks."""
        settings = self.settings(validator, via_proxy=via_proxy)
        before = validator.files()
        with CollectorClient(settings, validator.folder) as client:
            report = ship_journal(validator.journal, client, settings)
        deleted = {name: before[name] for name in report.deleted if name in before}
        self.shipments.append(Shipment(validator.name, fault, report, deleted))
        self.figures["files_shipped"] += len(report.shipped)
        self.figures["files_deleted"] += len(report.deleted)
        self.figures["bytes_shipped"] += sum(len(before.get(name, b"")) for name in report.shipped)
        if report.failure is not None:
            self.figures["runs_failed"] += 1
        return report
