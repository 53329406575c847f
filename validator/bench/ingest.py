# SPDX-License-Identifier: Apache-2.0
"""Benchmark of ingestion into the office database: taps per second into PostgreSQL.

Builds a journal of ``--taps`` taps with the real journal writer, HMACed, in files of 16 MiB
(the writer's default rotation), as the replay benchmark does (validator.bench.replay_journal:
a demo run's entries written again with new sequence numbers and chain). Then ingests it
(validator.office.database.ingest.ingest_paths, one transaction per file) into a fresh
database, in three passes:

- ``chain``: the chain and the anchor checked, no journal key;
- ``hmac``: the same with every entry's HMAC checked with the journal key;
- ``again``: the same files once more, into the database of ``hmac``: each is recognised by its
  digest and adds nothing.

Without ``--db`` the database is a private PostgreSQL of the lab's (lab.postgres, with fsync
on, as a real server keeps it); the benchmark runs from a checkout (``make bench-ingest``).
With ``--db URL`` it uses that server, creating one database per pass as ``--db``'s user.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH_KEY = bytes(range(32))  # a benchmark key, for a journal made here and thrown away
FILE_BYTES = 16 * 1024 * 1024


@contextmanager
def _server(url: str | None) -> Iterator[tuple[Callable[[str], str], str]]:
    """(a maker of fresh databases by name, a description of the server)."""
    if url is not None:
        yield (lambda name: _beside(url, name)), "the server of --db"
        return
    from lab.postgres import PrivatePostgres, missing_binaries

    reason = missing_binaries()
    if reason is not None:
        raise SystemExit(f"no PostgreSQL to measure: {reason}")
    cluster = PrivatePostgres(durable=True)
    try:
        cluster.start()
        yield cluster.create_database, f"a private PostgreSQL (fsync on) in {cluster.directory}"
    finally:
        cluster.remove()


def _beside(url: str, name: str) -> str:
    """A fresh database ``name`` on the server of ``url`` (dropped first if it exists)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})


def run_pass(url: str, directory: Path, key: bytes | None) -> tuple[float, int, int, bool]:
    """Ingest ``directory`` once: seconds, new taps, files, whether every file chained."""
    from validator.office.database.ingest import IngestError, ingest_paths

    started = time.perf_counter()
    results = ingest_paths(url, [directory], key=key)
    seconds = time.perf_counter() - started
    done = [r for r in results if not isinstance(r, IngestError)]
    ok = len(done) == len(results) and all(r.ok for r in done)
    return seconds, sum(r.new_taps for r in done), len(results), ok


def main() -> None:
    """Build the journal, then ingest it in each pass and print the figures."""
    from validator.bench.replay_journal import build
    from validator.office.database.schema import init_db

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="Keep (and reuse) the journal.")
    parser.add_argument("--db", default=None, help="A PostgreSQL URL (default: a private one).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as scratch:
        directory = args.dir or Path(scratch) / "journal"
        print(f"building a journal of {args.taps} taps in {directory} ...", flush=True)
        taps = build(directory, args.taps, key=BENCH_KEY, max_bytes=FILE_BYTES)
        size = sum(p.stat().st_size for p in directory.glob("journal-*.jsonl")) / 1e6
        print(f"{taps} taps, {size:.0f} MB; cores: {os.cpu_count()}", flush=True)
        with _server(args.db) as (fresh, where):
            print(f"into {where}", flush=True)
            print(f"{'pass':<8}{'files':>7}{'new taps':>10}{'seconds':>9}{'taps/s':>9}  chain")
            database = ""
            for name, key in (("chain", None), ("hmac", BENCH_KEY), ("again", BENCH_KEY)):
                if name != "again":
                    database = fresh(f"ingest_bench_{name}")
                    init_db(database)
                seconds, new, files, ok = run_pass(database, directory, key)
                print(
                    f"{name:<8}{files:>7}{new:>10}{seconds:>9.2f}{taps / seconds:>9.0f}"
                    f"  {'ok' if ok else 'BROKEN'}",
                    flush=True,
                )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
