# SPDX-License-Identifier: Apache-2.0
"""Benchmark of shipping: files and taps per second from validators into the office database.

End to end through the real parts: ``validator ship`` (a child process per validator, mutual
TLS, httpx) to ``validator office serve`` (the collector process, aiohttp) into a private
PostgreSQL with fsync on (lab.postgres, ``durable``), as a real server keeps it. Two figures:

- ``closed``: each of ``--validators`` validators holds ``--taps`` taps in closed files of
  ``--file-kib`` KiB; all ship at once; files, taps and MB per second from the first start to
  the last acknowledgement (every closed file acknowledged and deleted);
- ``growing``: one validator's current file grows by ``--step`` taps between runs, ``--runs``
  times, from ``--current`` taps: seconds per run and the bytes each run sends (the body the
  collector received, from its ``ingested_files``).

The journals are the real writer's (HMACed with the lab's test journal key): a demo run's
entries written again with each validator's id and new seqs and chain (as
validator.bench.replay_journal builds its journal). Figures are printed, never asserted:
``make bench-ship``. It runs from a checkout: it is the lab's, like the campaign.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lab.collector import JOURNAL_KEY, CollectorProcess, ShippingLab
from lab.paths import CONFIG
from lab.postgres import PrivatePostgres, missing_binaries

VALIDATOR = Path(sys.executable).with_name("validator")


def sample_entries(taps: int = 300, seed: int = 3) -> list[dict[str, Any]]:
    """A demo run's entries (emulated cards, software SAM, tears) without seq, prev and time."""
    from validator.app.demo import run_demo
    from validator.app.settings import load_settings
    from validator.journal.writer import Journal, journal_files

    settings = load_settings(CONFIG)
    with tempfile.TemporaryDirectory() as scratch:
        with Journal(scratch) as journal:
            run_demo(
                CONFIG,
                settings,
                taps=taps,
                seed=seed,
                start=dt.datetime(2026, 3, 2, 6, 0),
                journal=journal,
                tear_rate=0.1,
            )
        return [
            {k: v for k, v in json.loads(line).items() if k not in ("seq", "prev", "time")}
            for path in journal_files(Path(scratch))
            for line in path.read_text(encoding="utf-8").splitlines()
        ]


def append(
    directory: Path, name: str, sample: list[dict[str, Any]], taps: int, max_bytes: int
) -> None:
    """``taps`` tap entries appended to ``name``'s journal in ``directory``, naming ``name``,
    with the closing intents of the sample between them, written as the engine writes them."""
    from validator.journal.writer import Journal

    with Journal(directory, key=JOURNAL_KEY, max_bytes=max_bytes, validator_id=name) as journal:
        written = number = 0
        while written < taps:
            entry = {**sample[number % len(sample)], "validator": name}
            number += 1
            if entry.get("kind") == "intent":
                journal.write_intent(entry).wait()
            else:
                journal.append(entry)
                written += 1


def ship(folder: Path) -> tuple[int, str]:
    """One ``validator ship`` run of the validator in ``folder``: exit code, stderr."""
    done = subprocess.run(  # noqa: S603 - fixed argv
        [str(VALIDATOR), "ship", "--config", str(folder)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    return done.returncode, done.stderr


def received(url: str, validator: str | None = None) -> tuple[int, int]:
    """(files, bytes) the collector's database received, of one validator or all."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM ingested_files"
            " WHERE %(v)s::text IS NULL OR validator = %(v)s",
            {"v": validator},
        ).fetchone()
    assert row is not None  # noqa: S101 - one row of counts
    return int(row[0]), int(row[1])


def closed(folders: dict[str, Path], url: str, args: argparse.Namespace, sample: list[Any]) -> None:
    """Every validator ships its closed files at once: files, taps and MB per second."""
    names = list(folders)
    max_bytes = args.file_kib * 1024
    for name in names:
        append(folders[name] / "journal", name, sample, args.taps, max_bytes)
    results: dict[str, tuple[int, str]] = {}

    def one(name: str) -> None:
        results[name] = ship(folders[name])

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    files, size = received(url)
    taps = args.taps * len(names)
    failed = {name: err for name, (code, err) in results.items() if code != 0}
    print(
        f"{'closed':<9}{len(names):>11}{files:>7}{taps:>9}{size / 1e6:>8.1f}{seconds:>9.2f}"
        f"{files / seconds:>9.1f}{taps / seconds:>9.0f}{size / 1e6 / seconds:>7.2f}"
        f"  {'ok' if not failed else f'FAILED {failed}'}",
        flush=True,
    )


def growing(name: str, folder: Path, url: str, args: argparse.Namespace, sample: list[Any]) -> None:
    """One validator's current file grows between runs: seconds and bytes sent per run."""
    directory = folder / "journal"
    big = 1024 * 1024 * 1024  # no rotation: the current file only grows
    append(directory, name, sample, args.current, big)
    code, err = ship(folder)
    if code != 0:
        print(f"growing: the first run failed: {err}")
        return
    files0, bytes0 = received(url, name)
    started = time.perf_counter()
    failures = 0
    for _ in range(args.runs):
        append(directory, name, sample, args.step, big)
        code, _ = ship(folder)
        failures += code != 0
    seconds = time.perf_counter() - started
    files, size = received(url, name)
    per_run = (size - bytes0) / max(1, files - files0)
    print(
        f"growing: {args.runs} runs of {args.step} new taps on a current file of "
        f"{args.current}+ taps: {seconds / args.runs:.2f} s per run (the command's start "
        f"included), {per_run / 1e6:.2f} MB sent per run for "
        f"{args.step} new taps; {'ok' if not failures else f'{failures} runs FAILED'}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    """Start the database and the collector, then measure each figure and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--validators", type=int, default=2)
    parser.add_argument("--taps", type=int, default=20_000, help="Taps per validator (closed).")
    parser.add_argument("--file-kib", type=int, default=1024, help="Closed files' size.")
    parser.add_argument("--current", type=int, default=5_000, help="Taps in the growing file.")
    parser.add_argument("--step", type=int, default=20, help="New taps between runs.")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sample", type=int, default=300, help="Demo taps the entries repeat.")
    args = parser.parse_args(argv)
    reason = missing_binaries()
    if reason is not None:
        raise SystemExit(f"no PostgreSQL to measure: {reason}")
    print("a demo run for the journals' entries ...", flush=True)
    sample = sample_entries(args.sample)
    cluster = PrivatePostgres(durable=True)
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as scratch:
        try:
            cluster.start()
            url = cluster.create_database("ship_bench")
            from validator.office.database.schema import init_db

            init_db(url)
            names = [f"bench-{n + 1}" for n in range(args.validators + 1)]
            lab = ShippingLab(Path(scratch), url, names)
            collector = CollectorProcess(lab.collector_dir, Path(scratch) / "collector.log")
            collector.start()
            try:
                for name in names:
                    lab.configure(name, collector.url, timeout_s=600)
                print(f"into a private PostgreSQL (fsync on) in {cluster.directory}")
                print(
                    f"{'figure':<9}{'validators':>11}{'files':>7}{'taps':>9}{'MB':>8}"
                    f"{'seconds':>9}{'files/s':>9}{'taps/s':>9}{'MB/s':>7}"
                )
                closed({n: lab.validators[n] for n in names[:-1]}, url, args, sample)
                growing(names[-1], lab.validators[names[-1]], url, args, sample)
            finally:
                collector.stop()
        finally:
            cluster.remove()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
