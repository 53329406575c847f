# SPDX-License-Identifier: Apache-2.0
"""The shipping-faults part: each fault once at smoke level, and its checks shown to bite."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path

import pytest

from lab.postgres import PrivatePostgres
from lab.reliability.report import Level
from lab.reliability.shipping import campaign
from lab.reliability.shipping.faults import FAULTS
from lab.reliability.shipping.invariants import check_custody, check_deletion, check_duplicates
from lab.reliability.shipping.proxy import CutProxy
from lab.reliability.shipping.world import Shipment, Validator
from validator.app.ship.run import ShipReport

pytest_plugins = ["postgres_fixtures"]

RELEASE = Path(__file__).parents[1] / "validator" / "journal" / "journals" / "release-cd1443f"


def test_every_fault_once_keeps_every_invariant(postgres: PrivatePostgres, tmp_path: Path) -> None:
    """Collector killed, database stopped, foreign CA, tamper, tail cut, lost state, network cut:
    nothing lost, nothing deleted unacknowledged, every break reported, no duplicate."""
    result = campaign.run_on(postgres, Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    figures = {name: int(str(value)) for name, value in result.figures.items()}
    assert all(figures[f"fault_{fault}"] == 1 for fault in FAULTS)
    assert figures["breaks_reported"] >= 2  # the tampering and the tail
    assert figures["runs_failed"] >= 2  # the foreign certificate and the network cut at least
    assert figures["files_deleted"] > 0 and figures["db_taps"] > 0
    assert postgres.running


def test_without_postgres_the_part_says_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No PostgreSQL here: the part reports it skipped, not a violation."""
    monkeypatch.setattr(campaign, "missing_binaries", lambda: "PostgreSQL is not installed")
    result = campaign.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.broke == "skipped: no PostgreSQL" and result.violations == []


def _journal_bytes() -> bytes:
    """A real journal file's bytes (a released journal kept as test material)."""
    (path,) = sorted(RELEASE.glob("journal-*.jsonl"))
    return path.read_bytes()


def test_a_file_deleted_before_its_acknowledgement_is_a_violation(office_db: str) -> None:
    """A deletion whose bytes the database never received is reported, and so is any
    deletion in a run that failed."""
    import psycopg

    shipment = Shipment("validator-a", "test", ShipReport(), {"journal-1.jsonl": _journal_bytes()})
    with psycopg.connect(office_db) as conn:
        assert any("without a whole acknowledgement" in v for v in check_deletion(conn, shipment))
        failed = Shipment("validator-a", "test", ShipReport(failure="down"), shipment.deleted)
        assert any("did not end cleanly" in v for v in check_deletion(conn, failed))


def test_a_file_deleted_after_its_acknowledgement_is_no_violation(office_db: str) -> None:
    """A deleted file whose exact bytes were ingested, every line trusted, passes."""
    import psycopg

    from validator.office.database.ingest import ingest_file

    data = _journal_bytes()
    with psycopg.connect(office_db) as conn:
        result = ingest_file(conn, "journal-1.jsonl", data)
        assert result.ok and result.validator is not None
        shipment = Shipment(result.validator, "test", ShipReport(), {"journal-1.jsonl": data})
        assert check_deletion(conn, shipment) == []


def test_a_written_line_neither_stored_nor_on_disk_is_a_violation(
    office_db: str, tmp_path: Path
) -> None:
    """A line seen on a validator's disk, gone from it and absent from the database: lost."""
    import psycopg

    (tmp_path / "journal").mkdir()
    validator = Validator("validator-a", tmp_path, written={hashlib.sha256(b"x").hexdigest()})
    with psycopg.connect(office_db) as conn:
        assert check_custody(conn, validator) != []
        validator.lost = set(validator.written)  # destroyed on purpose by a fault: excused
        assert check_custody(conn, validator) == []


def test_a_seq_stored_twice_is_a_duplicate(office_db: str) -> None:
    """One seq of a validator stored both as a tap and as a record is found."""
    import psycopg

    from validator.office.database.ingest import ingest_file

    with psycopg.connect(office_db) as conn:
        ingest_file(conn, "journal-1.jsonl", _journal_bytes())
        assert check_duplicates(conn) == []
        conn.execute(
            "INSERT INTO records (validator, seq, kind, hash, prev, entry, file_id)"
            " SELECT validator, seq, 'copy', hash, prev, entry, file_id FROM taps LIMIT 1"
        )
        assert check_duplicates(conn) == [
            "duplicate rows: 1 times a seq stored as a tap and as a record",
            "duplicate rows: 1 times a line trusted twice",
        ]


def test_the_forwarder_cuts_an_upload_after_its_budget() -> None:
    """With a budget, the collector's side receives exactly that many bytes, then the end."""
    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=serve)
    thread.start()
    proxy = CutProxy(int(server.getsockname()[1]))
    proxy.cut_after = 10_000
    try:
        with socket.create_connection(("127.0.0.1", proxy.port)) as client:
            try:
                for _ in range(50):
                    client.sendall(b"x" * 4096)
            except OSError:
                pass  # the cut reached the sender
        thread.join(10)
    finally:
        proxy.close()
        server.close()
    assert len(received) == 10_000 and proxy.cuts == 1
