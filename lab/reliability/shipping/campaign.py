# SPDX-License-Identifier: Apache-2.0
"""The shipping-faults part: validators ship to one collector while the shipping path breaks.

Several validators (the real journal writer, demo taps) ship with ``validator ship``'s run
(mutual TLS, httpx) to the real collector process (``validator office serve``) in front of a
private PostgreSQL (lab.postgres). Each round, every active validator writes taps, then one
fault drawn with a seeded RNG strikes (lab.reliability.shipping.faults: the collector killed
and restarted mid-run, the database stopped and restarted, a certificate of another CA, a file
tampered, a tail deleted, the shipping state lost, the network cut mid-upload), then every
active validator ships again, and the invariants are checked
(lab.reliability.shipping.invariants): nothing lost, nothing deleted before a whole
acknowledgement, no duplicate row. At the end every active validator must be drained: its
closed files shipped and deleted, the collector's anchor at its last seq.

Sizes: smoke (the default test run) draws each fault once; quick three times; full ten times.
"""

from __future__ import annotations

import random
from pathlib import Path

import psycopg

from lab.postgres import PrivatePostgres, missing_binaries
from lab.reliability.report import Level, Log, PartResult
from lab.reliability.shipping.faults import FAULTS
from lab.reliability.shipping.invariants import check_round, totals
from lab.reliability.shipping.world import World
from validator.journal.files import highest_seq, journal_files

NAME = "shipping-faults"
SEED = 20


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """The part on a private PostgreSQL of its own (skipped when PostgreSQL is missing)."""
    reason = missing_binaries()
    if reason is not None:
        return PartResult(NAME, "nothing", "skipped: no PostgreSQL", figures={"skipped": reason})
    cluster = PrivatePostgres()
    try:
        cluster.start()
        return run_on(cluster, level, workdir, log)
    finally:
        cluster.remove()


def run_on(cluster: PrivatePostgres, level: Level, workdir: Path, log: Log) -> PartResult:
    """The part against a running private PostgreSQL (a fresh database of its own on it).

    The database is stopped and started again on the way; it is left running.
    """
    from validator.office.database.schema import init_db

    url = cluster.create_database(f"shipping_faults_{random.randrange(10**9)}")  # noqa: S311
    init_db(url)
    rnd = random.Random(SEED)  # noqa: S311 - reproducible campaign
    repeats = level.pick(10, 3, 1)
    world = World(workdir, cluster, url, rnd, log)
    violations: list[str] = []
    schedule = [fault for _ in range(repeats) for fault in rnd.sample(list(FAULTS), len(FAULTS))]
    try:
        world.start(level.pick(4, 3, 2))
        for number, fault in enumerate(schedule, start=1):
            found = _round(world, fault, level)
            violations += [f"round {number} ({fault}): {v}" for v in found]
            log(f"round {number}/{len(schedule)} {fault}: {len(violations)} violations so far")
        violations += _drained(world)
    finally:
        if not cluster.running:
            cluster.start()
        world.close()
    figures: dict[str, object] = {"rounds": len(schedule), **world.figures, **totals(world)}
    figures["validators"] = len(world.validators)
    faults = ", ".join(f"{world.figures[f'fault_{f}']} {f}" for f in FAULTS)
    tried = f"{len(schedule)} rounds, {len(world.validators)} validators: {faults}"
    shipped = world.figures["files_shipped"], world.figures["bytes_shipped"] / 1e6
    broke = (
        f"{shipped[0]} files shipped ({shipped[1]:.1f} MB), "
        f"{world.figures['runs_failed']} runs failed, "
        f"{world.figures['breaks_reported']} breaks reported"
    )
    return PartResult(NAME, tried, broke, violations, figures=figures)


def _round(world: World, fault: str, level: Level) -> list[str]:
    """Write, strike, ship again, check: the violations of one round."""
    for validator in world.active:
        world.write(validator, world.rnd.randint(2, level.pick(30, 20, 6)))
    found: list[str] = []
    try:
        found += FAULTS[fault](world)
        world.figures[f"fault_{fault}"] += 1
    except Exception as exc:  # a harness step that breaks is reported, not fatal
        found.append(f"{fault}: {exc!r}")
    if not world.cluster.running:
        world.cluster.start()
    if world.collector.proc is None:
        world.collector.start()
    for validator in world.active:  # the world is back: every active validator ships cleanly
        report = world.ship(validator, f"after {fault}")
        if report.failure or report.refused or report.problems:
            found.append(f"{validator.name}: shipping did not recover: {report}")
    found += check_round(world)
    return found


def _drained(world: World) -> list[str]:
    """Every active validator holds only its current file, anchored at its last seq."""
    found = []
    with psycopg.connect(world.url) as conn:
        for validator in world.active:
            files = journal_files(validator.journal)
            row = conn.execute(
                "SELECT last_seq FROM validators WHERE id = %s", (validator.name,)
            ).fetchone()
            head = max((highest_seq(path) for path in files), default=0)
            anchor = int(row[0]) if row else 0  # a validator added last may have no taps yet
            if len(files) > 1 or anchor != head:
                found.append(
                    f"{validator.name}: not drained: {len(files)} files, local head {head}, "
                    f"collector anchor {anchor}"
                )
    return found
