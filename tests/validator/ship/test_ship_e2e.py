# SPDX-License-Identifier: Apache-2.0
"""Two validators ship to one collector over mutual TLS into a private PostgreSQL (issue 20).

The real ``validator office serve`` process and the real ``validator ship`` command; the
collector stopped and restarted, a duplicate file, a tampered file and a deleted tail: each
reported, nothing lost, nothing deleted on the validator before acknowledgement.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.collector import CollectorProcess, ShippingLab, write_taps
from validator.app.ship.state import STATE_NAME

pytest_plugins = ["postgres_fixtures"]

VALIDATOR = str(Path(sys.executable).with_name("validator"))
A, B = "validator-a", "validator-b"


def ship(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run ``validator ship`` for the validator of ``folder``."""
    return subprocess.run(  # noqa: S603 - fixed argv
        [VALIDATOR, "ship", "--config", str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report a ship run printed."""
    return dict(json.loads(done.stdout))


def hashes(files: list[Path]) -> set[str]:
    """The SHA-256 of every line of ``files``."""
    return {
        hashlib.sha256(line).hexdigest()
        for path in files
        for line in path.read_bytes().splitlines()
        if line.strip()
    }


def stored(url: str, validator: str) -> set[str]:
    """Every line hash the office database holds for ``validator`` (trusted or held)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT hash FROM taps WHERE validator = %(v)s UNION ALL"
            " SELECT hash FROM records WHERE validator = %(v)s UNION ALL"
            " SELECT hash FROM held_entries WHERE validator = %(v)s",
            {"v": validator},
        ).fetchall()
    return {str(row[0]) for row in rows}


def breaks(url: str, validator: str) -> list[str]:
    """The kinds of the integrity breaks recorded for ``validator``."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT kind FROM integrity_breaks WHERE validator = %s", (validator,)
        ).fetchall()
    return [str(row[0]) for row in rows]


@pytest.fixture
def lab(tmp_path: Path, office_db: str) -> Iterator[tuple[ShippingLab, CollectorProcess]]:
    """Two validators with journals, and a running collector on the private database."""
    shipping = ShippingLab(tmp_path, office_db, [A, B])
    collector = CollectorProcess(shipping.collector_dir, tmp_path / "collector.log")
    url = collector.start()
    for name in (A, B):
        shipping.configure(name, url)
    try:
        yield shipping, collector
    finally:
        collector.stop()


def snapshot(folder: Path) -> dict[str, bytes]:
    """The journal files of a validator, by name, with their bytes."""
    return {p.name: p.read_bytes() for p in sorted((folder / "journal").glob("journal-*.jsonl"))}


def test_two_validators_ship_through_collector_faults(
    lab: tuple[ShippingLab, CollectorProcess], office_db: str
) -> None:
    """Stopped collector, duplicate, tampered file, deleted tail: reported, nothing lost."""
    shipping, collector = lab
    a, b = shipping.validators[A], shipping.validators[B]
    files_a = write_taps(a, 40, seed=3)
    files_b = write_taps(b, 40, seed=4)
    assert len(files_a) > 2 and len(files_b) > 2
    written_a, written_b = hashes(files_a), hashes(files_b)

    # The collector stopped: reported (exit 4), nothing deleted, nothing acknowledged.
    collector.stop()
    before = snapshot(a)
    down = ship(a)
    assert down.returncode == 4, down.stderr
    assert "not shipped (nothing deleted)" in down.stderr
    assert snapshot(a) == before
    assert report(down)["deleted"] == []

    # Restarted on the same port: both ship; closed files, wholly acknowledged, are deleted.
    collector.start()
    for folder, files, written, name in ((a, files_a, written_a, A), (b, files_b, written_b, B)):
        done = ship(folder)
        assert done.returncode == 0, done.stderr
        assert sorted(report(done)["deleted"]) == sorted(p.name for p in files[:-1])
        assert list((folder / "journal").glob("journal-*.jsonl")) == [files[-1]]  # current stays
        assert written <= stored(office_db, name)  # nothing lost
    assert breaks(office_db, A) == [] and breaks(office_db, B) == []

    # A duplicate: B forgets its acknowledgements and ships again: nothing added, no break.
    (b / "journal" / STATE_NAME).unlink()
    again = ship(b)
    assert again.returncode == 0, again.stderr
    assert report(again)["shipped"] == [] and len(report(again)["already"]) == 1
    assert breaks(office_db, B) == []

    # A tampered file: A writes more, one closed file is edited before shipping.
    files_a = write_taps(a, 40, seed=5, hour=9)
    unshipped = [p for p in files_a if p.name in snapshot(a)][:-1]
    target = unshipped[len(unshipped) // 2]
    lines = target.read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["time"] = "2026-03-02T23:59:59"
    lines[1] = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    target.write_bytes(b"".join(lines))
    before = snapshot(a)
    tampered = ship(a)
    assert tampered.returncode == 1, tampered.stderr
    assert any(
        target.name in line and "chain_break" in line for line in report(tampered)["refused"]
    )
    assert snapshot(a) == before  # nothing deleted after a refusal
    assert breaks(office_db, A)
    assert hashes(list((a / "journal").glob("journal-*.jsonl"))) <= stored(office_db, A)

    # A deleted tail: B's last entries removed after the collector acknowledged them.
    write_taps(b, 10, seed=6, hour=11)
    assert ship(b).returncode == 0
    current = sorted((b / "journal").glob("journal-*.jsonl"))[-1]
    kept = current.read_bytes().splitlines(keepends=True)[:-3]
    current.write_bytes(b"".join(kept))
    before = snapshot(b)
    cut = ship(b)
    assert cut.returncode == 1, cut.stderr
    assert "deleted tail" in cut.stderr
    assert snapshot(b) == before
    # The validator writes on from the cut: the collector sees seqs replaced, records a break.
    write_taps(b, 5, seed=7, hour=12)
    replaced = ship(b)
    assert replaced.returncode == 1, replaced.stderr
    assert breaks(office_db, B)


def test_untrusted_client_certificate_is_refused(
    lab: tuple[ShippingLab, CollectorProcess], tmp_path: Path
) -> None:
    """A client certificate from another CA: TLS refused (exit 2), nothing deleted."""
    from lab.tlscerts import TestCa

    shipping, _ = lab
    folder = shipping.validators[A]
    write_taps(folder, 20, seed=8)
    stranger = TestCa(tmp_path / "other-ca", "other-ca").issue("stranger", A, server=False)
    shutil.copy(stranger.cert, shipping.ca.directory / f"client-{A}.crt")
    shutil.copy(stranger.key, shipping.ca.directory / f"client-{A}.key")
    before = snapshot(folder)
    done = ship(folder)
    assert done.returncode == 2, done.stderr
    assert "TLS refused" in done.stderr
    assert snapshot(folder) == before


def test_world_readable_client_key_is_refused(lab: tuple[ShippingLab, CollectorProcess]) -> None:
    """A client key file others may read: a configuration error naming the file, no key bytes."""
    shipping, _ = lab
    key = shipping.ca.directory / f"client-{A}.key"
    key.chmod(0o644)
    done = ship(shipping.validators[A])
    assert done.returncode == 2
    assert "client_key_file" in done.stderr and "chmod 600" in done.stderr
    assert "PRIVATE KEY" not in done.stderr + done.stdout


def test_collector_with_the_office_key_fills_a_pseudonyms_only_database(
    tmp_path: Path, office_db: str
) -> None:
    """A collector given the office key ingests into a pseudonyms-only database: no serial kept."""
    import psycopg

    from validator.office.database.privacy import enable_pseudonyms
    from validator.office.pseudonym import Pseudonymiser, is_pseudonym

    office_key = bytes(range(100, 132))
    enable_pseudonyms(office_db, Pseudonymiser(office_key))
    shipping = ShippingLab(tmp_path, office_db, [A], office_key=office_key)
    collector = CollectorProcess(shipping.collector_dir, tmp_path / "collector.log")
    shipping.configure(A, collector.start())
    try:
        folder = shipping.validators[A]
        files = write_taps(folder, 12, seed=5)
        serials = {
            str(json.loads(line)["card"])
            for path in files
            for line in path.read_bytes().splitlines()
            if line.strip() and json.loads(line).get("card")
        }
        done = ship(folder)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        collector.stop()
    with psycopg.connect(office_db) as conn:
        cards = [str(row[0]) for row in conn.execute("SELECT card FROM taps").fetchall()]
        everything = "".join(str(row[0]) for row in conn.execute("SELECT entry::text FROM taps"))
    assert serials and len(cards) >= 12
    assert all(is_pseudonym(card) for card in cards)
    assert not any(serial in everything for serial in serials)


def test_a_growing_current_file_is_shipped_by_its_new_lines(
    lab: tuple[ShippingLab, CollectorProcess], office_db: str
) -> None:
    """Shipped, then grown: the next run sends only the new lines, the collector chains them
    from its anchor, and every line is stored once."""
    import psycopg

    shipping, _ = lab
    folder = shipping.validators[A]
    write_taps(folder, 5, seed=9)
    assert ship(folder).returncode == 0
    (current,) = sorted((folder / "journal").glob("journal-*.jsonl"))
    acknowledged = current.stat().st_size
    write_taps(folder, 3, seed=10, hour=9)
    assert sorted((folder / "journal").glob("journal-*.jsonl")) == [current]  # no rotation
    done = ship(folder)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(office_db) as conn:
        sizes = [int(row[0]) for row in conn.execute("SELECT size FROM ingested_files ORDER BY id")]
        anchor = conn.execute("SELECT last_seq FROM validators WHERE id = %s", (A,)).fetchone()
    assert sizes == [acknowledged, current.stat().st_size - acknowledged]
    lines = len(current.read_bytes().splitlines())  # 8 taps and their closing intents
    assert hashes([current]) <= stored(office_db, A) and anchor == (lines,)
    assert breaks(office_db, A) == []
