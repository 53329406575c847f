# SPDX-License-Identifier: Apache-2.0
"""The shipping run on a stand-in collector (one layer): acknowledgement, deletion, the doctor."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from test_doctor import make_config, probes  # noqa: E402

from validator.app.doctor.diagnose import diagnose  # noqa: E402
from validator.app.doctor.report import Status  # noqa: E402
from validator.app.ship.client import Ack, Anchor, CollectorUnreachableError, FileRefusedError  # noqa: E402
from validator.app.ship.protocol import Refusal  # noqa: E402
from validator.app.ship.run import last_seq, ship_journal  # noqa: E402
from validator.app.ship.settings import ShippingSettings  # noqa: E402
from validator.app.ship.state import ShipState  # noqa: E402
from validator.journal.writer import Journal, journal_files  # noqa: E402

SETTINGS = ShippingSettings(
    collector_url="https://collector.example:8443",
    client_cert_file="c.crt",
    client_key_file="c.key",
    ca_file="ca.crt",
    retention_days=1,
)
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)


class StandIn:
    """A collector stand-in: acknowledges what it is sent, or fails as told."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.sent: list[str] = []
        self.seq = 0

    def anchor(self) -> Anchor:
        if isinstance(self.fail, CollectorUnreachableError):
            raise self.fail
        return Anchor("v", self.seq, None)

    def ship(self, name: str, data: bytes) -> Ack:
        self.sent.append(name)
        if self.fail is not None:
            raise self.fail
        self.seq = max(self.seq, last_seq(data))
        return Ack("ingested", Anchor("v", self.seq, "h"), {"new_taps": 1})


def journal(directory: Path, entries: int = 30) -> list[Path]:
    """A journal of ``entries`` small entries over several files."""
    with Journal(directory, max_bytes=2_000, validator_id="v") as writer:
        for number in range(entries):
            writer.append({"outcome": "granted", "card": f"{number:08X}", "debit": 1})
    return journal_files(directory)


def run(directory: Path, collector: StandIn, when: dt.datetime = LATER) -> Any:
    """One shipping run at ``when``."""
    return ship_journal(directory, collector, SETTINGS, now=lambda: when)  # type: ignore[arg-type]


def test_acknowledged_files_past_retention_are_deleted_but_the_current(tmp_path: Path) -> None:
    """Every closed file acknowledged and older than the retention goes; the current one stays."""
    files = journal(tmp_path)
    assert len(files) > 2
    report = run(tmp_path, StandIn())
    assert report.deleted == [p.name for p in files[:-1]]
    assert journal_files(tmp_path) == [files[-1]]


def test_nothing_is_deleted_within_retention(tmp_path: Path) -> None:
    """Acknowledged, but younger than the retention: kept, and not sent again."""
    files = journal(tmp_path)
    collector = StandIn()
    assert run(tmp_path, collector, dt.datetime.now(dt.UTC)).deleted == []
    again = run(tmp_path, collector, dt.datetime.now(dt.UTC))
    assert again.shipped == [] and len(again.already) == len(files)
    assert journal_files(tmp_path) == files


def test_a_refused_file_stops_every_deletion(tmp_path: Path) -> None:
    """A chain-break refusal: reported, nothing acknowledged, nothing deleted."""
    files = journal(tmp_path)
    refused = FileRefusedError(Refusal.CHAIN_BREAK, "edited", {})
    report = run(tmp_path, StandIn(refused))
    assert len(report.refused) == len(files) and report.deleted == []
    assert journal_files(tmp_path) == files and ShipState.load(tmp_path).files == {}


def test_a_full_database_is_a_failure_not_a_refusal(tmp_path: Path) -> None:
    """A full database stops the run as a failure (retried later); nothing is deleted."""
    files = journal(tmp_path)
    report = run(tmp_path, StandIn(FileRefusedError(Refusal.DATABASE_FULL, "full", {})))
    assert report.failure is not None and report.deleted == []
    assert journal_files(tmp_path) == files


def test_a_file_changed_after_acknowledgement_is_reported(tmp_path: Path) -> None:
    """Bytes acknowledged then edited: reported, shipped again, nothing deleted."""
    files = journal(tmp_path)
    run(tmp_path, StandIn(), dt.datetime.now(dt.UTC))
    data = bytearray(files[0].read_bytes())
    data[40] ^= 1
    files[0].write_bytes(bytes(data))
    report = run(tmp_path, StandIn())
    assert any("changed after" in p for p in report.problems)
    assert report.deleted == [] and files[0].exists()


def test_doctor_warns_when_unshipped_journals_accumulate(tmp_path: Path) -> None:
    """More unacknowledged bytes than warn_unshipped_mib: the journal check warns."""
    shipping = {
        "collector_url": "https://collector.example",
        "client_cert_file": "c.crt",
        "client_key_file": "c.key",
        "ca_file": "ca.crt",
        "warn_unshipped_mib": 0.001,
    }
    config = make_config(tmp_path, shipping=shipping)
    journal(tmp_path / "journal")
    check = diagnose(config, probes()).check("journal")
    assert check.status is Status.WARN
    assert "not acknowledged by the collector" in check.detail


class AnchoringStandIn(StandIn):
    """A stand-in that answers the anchor a collector would: the last line received, hashed."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []
        self.hash: str | None = None

    def anchor(self) -> Anchor:
        return Anchor("v", self.seq, self.hash)

    def ship(self, name: str, data: bytes) -> Ack:
        self.bodies.append(data)
        self.seq = max(self.seq, last_seq(data))
        self.hash = hashlib.sha256(data.splitlines()[-1]).hexdigest()
        return Ack("ingested", Anchor("v", self.seq, self.hash), {"new_taps": 1})


def test_the_growing_file_sends_only_its_unacknowledged_lines(tmp_path: Path) -> None:
    """The collector's anchor is the last acknowledged line: only the lines after it go, and
    the whole file is then acknowledged."""
    journal(tmp_path, entries=3)
    collector = AnchoringStandIn()
    run(tmp_path, collector, dt.datetime.now(dt.UTC))
    current = journal_files(tmp_path)[-1]
    before = current.read_bytes()
    with Journal(tmp_path, max_bytes=1_000_000, validator_id="v") as writer:
        writer.append({"outcome": "granted", "card": "FFFFFFFF", "debit": 1})
    report = run(tmp_path, collector, dt.datetime.now(dt.UTC))
    assert report.shipped == [current.name]
    assert collector.bodies[-1] == current.read_bytes()[len(before) :]
    assert ShipState.load(tmp_path).files[current.name].size == current.stat().st_size


def test_the_whole_file_goes_when_the_anchor_is_not_the_acknowledged_line(tmp_path: Path) -> None:
    """A collector whose anchor is elsewhere (a restored database) gets the whole file."""
    journal(tmp_path, entries=3)
    collector = AnchoringStandIn()
    run(tmp_path, collector, dt.datetime.now(dt.UTC))
    current = journal_files(tmp_path)[-1]
    with Journal(tmp_path, max_bytes=1_000_000, validator_id="v") as writer:
        writer.append({"outcome": "granted", "card": "FFFFFFFF", "debit": 1})
    collector.hash = "0" * 64
    run(tmp_path, collector, dt.datetime.now(dt.UTC))
    assert collector.bodies[-1] == current.read_bytes()
