# SPDX-License-Identifier: Apache-2.0
"""The shipping-faults invariants, checked against the office database after each round.

- custody: every line ever written on a validator is in the database (a tap or record, or held
  after a break) or still on that validator's disk; only the lines a fault destroyed on purpose
  before they were shipped (a tampered line's original) are excused;
- deletion: a file deleted on a validator was acknowledged whole: every line of it is trusted
  (a tap or a record: the bytes of each line, received in one body or, for a file that grew,
  in several), it held nothing else (no blank or unfinished line), and the run that deleted it
  ended without a failure, refusal or finding;
- no duplicate rows: no seq of a validator stored twice (as a tap and as a record), no line
  trusted twice. (A held copy of a trusted line is no duplicate: held lines are evidence, never
  counted; a break holds every line after it in its file, those received before included. They
  are counted in the figures.)

The third invariant, every tampering and deleted tail reported, is checked by the fault itself
(lab.reliability.shipping.faults): it knows what it did.
"""

from __future__ import annotations

from typing import Any

import psycopg

from lab.reliability.shipping.world import Shipment, Validator, World, line_hashes


def stored(conn: psycopg.Connection[Any], validator: str) -> tuple[set[str], set[str]]:
    """The line hashes the database holds for ``validator``: (trusted, held)."""
    trusted = {
        str(row[0])
        for row in conn.execute(
            "SELECT hash FROM taps WHERE validator = %(v)s"
            " UNION ALL SELECT hash FROM records WHERE validator = %(v)s",
            {"v": validator},
        )
    }
    held = {
        str(row[0])
        for row in conn.execute("SELECT hash FROM held_entries WHERE validator = %s", (validator,))
    }
    return trusted, held


def breaks(conn: psycopg.Connection[Any], validator: str) -> int:
    """How many integrity breaks the database recorded for ``validator``."""
    row = conn.execute(
        "SELECT count(*) FROM integrity_breaks WHERE validator = %s", (validator,)
    ).fetchone()
    return int(row[0]) if row else 0


def check_custody(conn: psycopg.Connection[Any], validator: Validator) -> list[str]:
    """Lines written on ``validator`` that are neither in the database nor on its disk."""
    trusted, held = stored(conn, validator.name)
    missing = validator.written - validator.lost - trusted - held - validator.on_disk()
    if not missing:
        return []
    return [f"{validator.name}: {len(missing)} written lines neither in the database nor on disk"]


def check_deletion(conn: psycopg.Connection[Any], shipment: Shipment) -> list[str]:
    """Files ``shipment`` deleted that were not wholly acknowledged."""
    found: list[str] = []
    report = shipment.report
    if shipment.deleted and (report.failure or report.refused or report.problems):
        found.append(
            f"{shipment.validator} ({shipment.fault}): deleted {sorted(shipment.deleted)} "
            "in a run that did not end cleanly"
        )
    trusted, _ = stored(conn, shipment.validator) if shipment.deleted else (set(), set())
    for name, data in sorted(shipment.deleted.items()):
        lines = data.splitlines()
        untrusted = [h for h in line_hashes(data) if h not in trusted]
        other = not data.endswith(b"\n") or any(not line.strip() for line in lines)
        if untrusted or other:
            found.append(
                f"{shipment.validator} ({shipment.fault}): {name} deleted without a whole "
                f"acknowledgement ({len(untrusted)} lines not trusted"
                f"{', bytes that are no entry' if other else ''})"
            )
    return found


def check_duplicates(conn: psycopg.Connection[Any]) -> list[str]:
    """Rows stored twice anywhere in the database."""
    queries = {
        "a seq stored as a tap and as a record": (
            "SELECT count(*) FROM taps t JOIN records r ON r.validator = t.validator"
            " AND r.seq = t.seq"
        ),
        "a line trusted twice": (
            "SELECT count(*) FROM (SELECT 1 FROM (SELECT validator, hash FROM taps UNION ALL"
            " SELECT validator, hash FROM records) s GROUP BY validator, hash"
            " HAVING count(*) > 1) d"
        ),
    }
    found = []
    for what, query in queries.items():
        row = conn.execute(query).fetchone()
        count = int(row[0]) if row else 0
        if count:
            found.append(f"duplicate rows: {count} times {what}")
    return found


HELD_COPIES = (
    "SELECT count(*) FROM held_entries h WHERE EXISTS (SELECT 1 FROM taps t"
    " WHERE t.validator = h.validator AND t.hash = h.hash) OR EXISTS (SELECT 1 FROM"
    " records r WHERE r.validator = h.validator AND r.hash = h.hash)"
)


def check_round(world: World) -> list[str]:
    """Every invariant over the world after a round; the round's shipments are consumed."""
    found: list[str] = []
    with psycopg.connect(world.url, connect_timeout=10) as conn:
        for shipment in world.shipments:
            found += check_deletion(conn, shipment)
        world.shipments.clear()
        for validator in world.validators:
            found += check_custody(conn, validator)
        found += check_duplicates(conn)
    return found


def totals(world: World) -> dict[str, int]:
    """The database's figures at the end: taps, records, held lines, breaks, bytes received."""
    with psycopg.connect(world.url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM taps), (SELECT count(*) FROM records),"
            " (SELECT count(*) FROM held_entries), (SELECT count(*) FROM integrity_breaks),"
            " (SELECT coalesce(sum(size), 0) FROM ingested_files),"
            " (SELECT count(*) FROM ingested_files)"
        ).fetchone()
        copies = conn.execute(HELD_COPIES).fetchone()
    assert row is not None and copies is not None  # noqa: S101 - one row of counts each
    names = ("db_taps", "db_records", "db_held", "db_breaks", "db_bytes", "db_files")
    figures = {name: int(value) for name, value in zip(names, row, strict=True)}
    figures["db_held_copies_of_trusted"] = int(copies[0])
    return figures
