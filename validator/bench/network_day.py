# SPDX-License-Identifier: Apache-2.0
"""A simulated network day: many validators at many stations, cards that travel, real journals.

Every tap is a real one: emulated cards personalised from config/cards (each with its own serial
and diversified keys), the software SAM with the simulation keys, the tap engine of ``validator
run`` (one ``TapProcessor`` per validator, built by build_station with that station's location
id), and the emulated reader pulling cards out of the field as hurried passengers do. Nothing in
a tap is rewritten afterwards except what the journal writer owns, so every MAC verifies and
every decision replays the same.

Stations are location ids 101, 102, ... (101 and 102 form the ``central`` group of
config/fares.yaml, so that anti-passback and recovery across two stations of a group occur);
validators are spread over them round-robin, ten per station by default, each with its own id
(``gate-LLLL-NN``), journal folder, chain and sequence numbers. A card makes one to four trips
over the day, each at a station drawn at random and one of its validators; now and then its
holder taps twice (anti-passback), and a tear (card lost, unknown outcome) makes the holder try
again a few seconds later at the same or the next gate of the station, or walk away and be
settled at the next trip elsewhere: reconciliation across validators has work to do.

Generation runs in two phases, each over ``--procs`` processes (validator.bench.netday.write):

1. simulate: each process serves its share of the cards (card n goes to process n mod procs),
   gate by gate, into a recorder that keeps each tap with its closing intents (a ``unit``) and
   spills them, by station, to scratch files;
2. write: each station's units are sorted by tap time per validator and written with the real
   journal writer (``Journal``): it gives seq, chain and write time; the references the engine
   took from its recorder (``resolves``' seq and tap, ``recovered_from_tap``) are mapped to the
   numbers the writer gave.

Journals go to ``--out`` (default /tmp/network-day-V-S-T-SEED), one folder per validator. A
marker file records the parameters: a folder built with the same ones is reused as it is.
``python -m validator.bench.network_day --validators 1000 --stations 100 --taps 1000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from validator.bench.netday.plan import MARKER, DayPlan, default_out, is_built, marker_text
from validator.bench.netday.write import save_summary, simulate_all, summary, write_all

__all__ = ["DayPlan", "build_day", "default_out", "main"]


def build_day(out: Path, plan: DayPlan, procs: int | None = None) -> dict[str, object]:
    """Build the day into ``out`` (reused if already built with ``plan``); what was made.

    ``procs``: processes for both phases (default: the cores). The folder is emptied first
    when it holds another plan's day (or a half-built one).
    """
    plan.check()
    if is_built(out, plan):
        return {**summary(out), "reused": True}
    procs = max(1, procs or os.cpu_count() or 1)
    start = time.perf_counter()
    _clear(out)
    scratch = out / ".spill"
    scratch.mkdir(parents=True)
    simulated = simulate_all(plan, scratch, procs)
    made = {**write_all(plan, out, scratch, procs), **simulated}
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()
    made["build_seconds"] = round(time.perf_counter() - start, 1)
    save_summary(out, made)
    (out / MARKER).write_text(marker_text(plan), encoding="utf-8")
    return {**made, "reused": False}


def _clear(out: Path) -> None:
    """Remove a previous day (validator folders of journal files, spill files, the marker)."""
    import shutil

    if not out.exists():
        return
    for child in out.iterdir():
        if child.is_dir() and (child.name.startswith("gate-") or child.name == ".spill"):
            shutil.rmtree(child)
        elif child.name == MARKER:
            child.unlink()


def main(argv: list[str] | None = None) -> None:
    """Build a network day and print what it holds (JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    base = DayPlan()
    parser.add_argument("--validators", type=int, default=base.validators)
    parser.add_argument("--stations", type=int, default=base.stations)
    parser.add_argument("--taps", type=int, default=base.taps)
    parser.add_argument("--seed", type=int, default=base.seed)
    parser.add_argument("--tear-rate", type=float, default=base.tear_rate)
    parser.add_argument("--out", type=Path, default=None, help="default: /tmp/network-day-...")
    parser.add_argument("--procs", type=int, default=None, help="default: the cores")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    plan = DayPlan(args.validators, args.stations, args.taps, args.seed, args.tear_rate)
    out = args.out or default_out(plan)
    made = build_day(out, plan, args.procs)
    if args.json:
        print(json.dumps({"out": str(out), **made}, sort_keys=True))
        return
    print(f"network day in {out}")
    for key, value in made.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
