# SPDX-License-Identifier: Apache-2.0
"""The shipping faults, one function each: strike, ship through it, put the world back.

Each returns the violations it saw itself (what only the fault knows: a TLS handshake that
should have been refused, a tampering or a deleted tail not reported). The invariants over the
whole world are lab.reliability.shipping.invariants'. A fault that fails to strike (a cut that
cut nothing) is a violation too: the part would otherwise pass without testing anything.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable

import psycopg

from lab.reliability.shipping.invariants import breaks, stored
from lab.reliability.shipping.world import Validator, World, line_hashes
from validator.app.ship.run import ShipReport
from validator.app.ship.state import STATE_NAME
from validator.journal.files import journal_files


def _ship_all_while(
    world: World, fault: str, delay: float, strike: Callable[[], None]
) -> list[ShipReport]:
    """Every active validator ships at once (one thread each); ``strike`` after ``delay`` s."""
    reports: list[ShipReport] = []
    errors: list[str] = []

    def one(validator: Validator) -> None:
        try:
            reports.append(world.ship(validator, fault))
        except Exception as exc:  # a shipping run must never raise: a finding
            errors.append(f"{validator.name}: ship raised {exc!r}")

    threads = [threading.Thread(target=one, args=(v,)) for v in world.active]
    for thread in threads:
        thread.start()
    time.sleep(delay)
    strike()
    for thread in threads:
        thread.join(120)
    if errors:
        raise RuntimeError("; ".join(errors))
    return reports


def collector_killed(world: World) -> list[str]:
    """SIGKILL of the collector at a random moment of a run of every validator; restarted."""
    delay = world.rnd.uniform(0.0, 0.25)
    reports = _ship_all_while(world, "collector_killed", delay, world.collector.kill)
    world.figures["kills_interrupting_a_run"] += sum(r.failure is not None for r in reports)
    world.collector.start()
    return []


def database_stopped(world: World) -> list[str]:
    """The database stopped at a random moment of a run of every validator; started again."""
    delay = world.rnd.uniform(0.0, 0.2)
    reports = _ship_all_while(world, "database_stopped", delay, world.cluster.stop)
    world.figures["database_stops_interrupting_a_run"] += sum(
        r.failure is not None for r in reports
    )
    world.cluster.start()
    return []


def tls_refused(world: World) -> list[str]:
    """A validator presents a certificate from another CA (its own CN): refused, nothing in."""
    victim = world.rnd.choice(world.active)
    directory = world.lab.ca.directory
    cert, key = directory / f"client-{victim.name}.crt", directory / f"client-{victim.name}.key"
    saved = cert.read_bytes(), key.read_bytes()
    stranger = world.stranger.issue(f"stranger-{victim.name}", victim.name, server=False)
    shutil.copy(stranger.cert, cert)
    shutil.copy(stranger.key, key)
    with psycopg.connect(world.url) as conn:
        before = stored(conn, victim.name)
    try:
        report = world.ship(victim, "tls_refused")
    finally:
        cert.write_bytes(saved[0])
        key.write_bytes(saved[1])
    with psycopg.connect(world.url) as conn:
        after = stored(conn, victim.name)
    found = []
    if not report.tls_refused:
        found.append(f"{victim.name}: a certificate of another CA was not refused: {report}")
    if after != before:
        found.append(f"{victim.name}: lines stored from a validator with a foreign certificate")
    return found


def _tamper_line(data: bytes, index: int) -> bytes:
    """``data`` with its line ``index`` edited (its time changed: the entry no longer verifies)."""
    lines = data.splitlines(keepends=True)
    entry = json.loads(lines[index])
    entry["time"] = "2026-03-01T23:59:59" if entry.get("time") != "2026-03-01T23:59:59" else "x"
    lines[index] = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    return b"".join(lines)


def file_tampered(world: World) -> list[str]:
    """A line of a journal file edited after writing: reported by the run and the database."""
    victim = world.rnd.choice(world.active)
    world.write(victim, world.rnd.randint(3, 12))
    path = world.rnd.choice(journal_files(victim.journal))
    data = path.read_bytes()
    index = world.rnd.randrange(len(data.splitlines()))
    original = line_hashes(data)[index]
    with psycopg.connect(world.url) as conn:
        trusted, held = stored(conn, victim.name)
        breaks_before = breaks(conn, victim.name)
    if original not in trusted | held:
        victim.lost.add(original)  # the tampering destroyed it before it was shipped
    path.write_bytes(_tamper_line(data, index))
    victim.observe()
    report = world.ship(victim, "file_tampered")
    with psycopg.connect(world.url) as conn:
        breaks_after = breaks(conn, victim.name)
    world.retire(victim)
    found = []
    if not (report.refused or report.problems):
        found.append(f"{victim.name}: a tampered {path.name} was not reported by the shipping run")
    if breaks_after <= breaks_before:
        found.append(f"{victim.name}: a tampered {path.name} left no integrity break")
    world.figures["breaks_reported"] += breaks_after - breaks_before
    return found


def tail_deleted(world: World) -> list[str]:
    """The last lines of an acknowledged journal deleted: reported; then written on from the
    cut, recorded as an integrity break by the database."""
    victim = world.rnd.choice(world.active)
    first = world.ship(victim, "tail_deleted")
    if first.failure or first.refused or first.problems:
        return [f"{victim.name}: could not ship before deleting the tail: {first}"]
    current = journal_files(victim.journal)[-1]
    lines = current.read_bytes().splitlines(keepends=True)
    cut = min(len(lines), world.rnd.randint(1, 3))
    current.write_bytes(b"".join(lines[: len(lines) - cut]))
    with psycopg.connect(world.url) as conn:
        breaks_before = breaks(conn, victim.name)
    seen = world.ship(victim, "tail_deleted")
    found = []
    if not any("deleted tail" in problem for problem in seen.problems):
        found.append(f"{victim.name}: a deleted tail of {cut} lines was not reported")
    world.write(victim, world.rnd.randint(3, 8))
    world.ship(victim, "tail_deleted")
    with psycopg.connect(world.url) as conn:
        breaks_after = breaks(conn, victim.name)
    if breaks_after <= breaks_before:
        found.append(f"{victim.name}: writing on from a deleted tail left no integrity break")
    world.figures["breaks_reported"] += breaks_after - breaks_before
    world.retire(victim)
    return found


def duplicate_ship(world: World) -> list[str]:
    """The validator loses its shipping state and ships everything again: nothing added twice."""
    victim = world.rnd.choice(world.active)
    world.ship(victim, "duplicate_ship")
    (victim.journal / STATE_NAME).unlink(missing_ok=True)
    with psycopg.connect(world.url) as conn:
        breaks_before = breaks(conn, victim.name)
    report = world.ship(victim, "duplicate_ship")
    with psycopg.connect(world.url) as conn:
        breaks_after = breaks(conn, victim.name)
    found = []
    if report.failure or report.refused or report.problems:
        found.append(f"{victim.name}: shipping again after a lost state failed: {report}")
    if breaks_after != breaks_before:
        found.append(f"{victim.name}: a file shipped twice was taken for an integrity break")
    return found


def network_cut(world: World) -> list[str]:
    """The connection cut partway through a large file's upload (the forwarder's budget)."""
    assert world.proxy is not None  # noqa: S101 - started with the world
    victim = world.rnd.choice(world.active)
    world.write(victim, 40)  # at least one closed file of ~40 kB waits to go
    cuts = world.proxy.cuts
    world.proxy.cut_after = world.rnd.randint(8_000, 30_000)
    try:
        report = world.ship(victim, "network_cut", via_proxy=True)
    finally:
        world.proxy.cut_after = None
    found = []
    if world.proxy.cuts == cuts or report.failure is None:
        found.append(f"{victim.name}: the network cut did not interrupt an upload: {report}")
    return found


FAULTS: dict[str, Callable[[World], list[str]]] = {
    "collector_killed": collector_killed,
    "database_stopped": database_stopped,
    "tls_refused": tls_refused,
    "file_tampered": file_tampered,
    "tail_deleted": tail_deleted,
    "duplicate_ship": duplicate_ship,
    "network_cut": network_cut,
}
