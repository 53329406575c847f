# SPDX-License-Identifier: Apache-2.0
"""Benchmark of ``validator replay``: taps per second per mode, and peak memory.

Builds a journal of ``--taps`` lines (default 200,000) with the real journal writer: a real demo
run (emulated cards, software SAM, tears) gives a few thousand entries and the closing intents
before their Closes, which are written again and again with new sequence numbers, chain and
write times (tap times, card data and APDU traces unchanged, so that every MAC still verifies
and every decision replays the same). Rates are journal lines per second, intents included, as
replay reports them. Then each mode runs in a fresh process, on one core and with ``--jobs 2``:

- integrity: chain, sequence and unreadable lines only;
- decisions: integrity, every decision replayed with the rules in force, reconciliation;
- everything: the same plus every session's MACs recomputed with the software SAM (CSIM1);
- uncached: decisions again, with no decoded card record kept between taps.

The journal repeats the same few thousand taps, so the card records that replay keeps decoded
by their bytes (a card's environment and contracts repeat across its taps) are nearly always
found again; ``uncached`` gives the figure for journals where no card taps twice. Real
journals lie in between.

Peak memory is the largest resident set of the replaying process and of any of its workers.
Figures are printed, never asserted: ``make bench-replay``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
MODES = ("integrity", "decisions", "everything", "uncached")


def build(
    directory: Path,
    taps: int,
    seed: int = 3,
    *,
    key: bytes | None = None,
    max_bytes: int = 64 * 1024 * 1024,
) -> int:
    """Write a journal of ``taps`` entries into ``directory`` (reused if already that one).

    ``key``: HMAC every entry with this journal key; ``max_bytes``: the size a file rotates at.
    """
    from validator.app.demo import run_demo
    from validator.app.settings import load_settings
    from validator.journal.writer import Journal, journal_files

    marker = directory / ".bench-taps"
    made = str(taps)  # what the marker says was built (never the key itself)
    if key is not None or max_bytes != 64 * 1024 * 1024:
        made = f"{taps}:{'hmac' if key is not None else 'plain'}:{max_bytes}"
    if marker.exists() and marker.read_text() == made:
        return taps
    settings = load_settings(CONFIG)
    start = dt.datetime(2026, 3, 2, 6, 0)
    with tempfile.TemporaryDirectory() as seed_dir:
        with Journal(seed_dir) as journal:
            run_demo(
                CONFIG, settings, taps=2000, seed=seed, start=start, journal=journal, tear_rate=0.1
            )
        sample = [
            {k: v for k, v in json.loads(line).items() if k not in ("seq", "prev", "time")}
            for path in journal_files(Path(seed_dir))
            for line in path.read_text(encoding="utf-8").splitlines()
        ]
    directory.mkdir(parents=True, exist_ok=True)
    for old in journal_files(directory):
        old.unlink()
    written = 0
    with Journal(directory, key=key, max_bytes=max_bytes) as journal:
        while written < taps:
            for entry in sample[: taps - written]:
                if entry.get("kind") == "intent":  # written as the engine writes it
                    journal.write_intent(entry).wait()
                else:
                    journal.append(entry)
            written = min(taps, written + len(sample))
    marker.write_text(made)
    return written


def run_mode(directory: Path, mode: str, jobs: int) -> dict[str, object]:
    """Replay ``directory`` in one mode (in this process) and return the figures."""
    from validator.app.settings import load_settings
    from validator.engine.fares.decide import FareRules
    from validator.office.replay.audit import ReplayRequest, replay
    from validator.office.replay.line import Options
    from yamlconfig import load_model

    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / settings.fares, FareRules)
    layouts = tuple(settings.layouts.items())
    keys = CONFIG / settings.keys if mode == "everything" else None
    if mode == "integrity":
        options = Options(None, taps=False)
    else:
        options = Options(
            rules, None, keys, layouts=layouts, record_cache=0 if mode == "uncached" else 4096
        )
    request = ReplayRequest(
        [directory], options, "in force", rules, jobs=jobs, reconcile=mode != "integrity"
    )
    report = replay(request)
    doc = report.as_json()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "mode": mode,
        "jobs": jobs,
        "taps": doc["lines"],
        "seconds": round(report.seconds, 2),
        "taps_per_s": round(doc["lines"] / report.seconds),
        "peak_mb": round(max(own, workers), 1),
        "integrity_ok": doc["integrity"]["ok"],
        "mac": {k: doc["mac"][k] for k in ("verified", "failed", "unverifiable")},
        "decisions": {k: doc["decisions"][k] for k in ("same", "different")},
    }


def main() -> None:
    """Build the journal, then run every mode in its own process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None, help="Keep (and reuse) the journal.")
    parser.add_argument("--run", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        print(json.dumps(run_mode(args.dir, args.run, args.jobs)))
        return
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as scratch:
        directory = args.dir or Path(scratch) / "journal"
        print(f"building a journal of {args.taps} lines in {directory} ...", flush=True)
        taps = build(directory, args.taps)
        size = sum(p.stat().st_size for p in directory.glob("journal-*.jsonl")) / 1e6
        print(f"{taps} lines (taps and intents), {size:.0f} MB; cores: {os.cpu_count()}")
        print(f"{'mode':<12}{'jobs':>5}{'lines/s':>10}{'seconds':>9}{'peak MB':>9}  check")
        for mode in MODES:
            for jobs in (1, 2):
                command = [sys.executable, __file__, "--run", mode, "--jobs", str(jobs)]
                out = subprocess.run(  # noqa: S603 - this very script
                    [*command, "--dir", str(directory)], check=True, capture_output=True, text=True
                ).stdout
                r = json.loads(out.strip().splitlines()[-1])
                check = f"integrity {'ok' if r['integrity_ok'] else 'BROKEN'}"
                if mode != "integrity":
                    check += f", decisions {r['decisions']}"
                if mode == "everything":
                    check += f", MACs {r['mac']}"
                print(
                    f"{mode:<12}{jobs:>5}{r['taps_per_s']:>10}{r['seconds']:>9}"
                    f"{r['peak_mb']:>9}  {check}",
                    flush=True,
                )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
