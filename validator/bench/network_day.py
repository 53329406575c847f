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

Generation runs in two phases, each over ``--procs`` processes (validator.bench.network_write):

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
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["DayPlan", "build_day", "default_out", "main", "validator_ids"]

MARKER = ".network-day"
FIRST_LOCATION = 101


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a network day is made of (the marker holds it: same plan, same folder reused)."""

    validators: int = 1000
    stations: int = 100
    taps: int = 1_000_000
    seed: int = 7
    tear_rate: float = 0.05
    day: str = "2026-03-02"  # a Monday: peak and off-peak fares both occur

    def check(self) -> None:
        """ValueError unless the plan can be built (a validator per station at least)."""
        if self.stations < 1 or self.validators < self.stations or self.taps < 1:
            raise ValueError("need stations >= 1, validators >= stations and taps >= 1")

    def location(self, station: int) -> int:
        """The location id of station number ``station`` (from 0)."""
        return FIRST_LOCATION + station

    def station_of(self, validator: int) -> int:
        """The station number of validator number ``validator`` (round-robin)."""
        return validator % self.stations

    def gates(self, station: int) -> list[int]:
        """The validator numbers of station number ``station``."""
        return list(range(station, self.validators, self.stations))


def validator_ids(plan: DayPlan) -> list[str]:
    """Every validator's id, by validator number: ``gate-LLLL-NN`` (location, gate at it)."""
    return [
        f"gate-{plan.location(plan.station_of(v)):04d}-{v // plan.stations + 1:02d}"
        for v in range(plan.validators)
    ]


def default_out(plan: DayPlan) -> Path:
    """Where a plan's day goes by default (bench data stays in /tmp, never in the tree)."""
    name = f"network-day-{plan.validators}-{plan.stations}-{plan.taps}-{plan.seed}"
    return Path(os.environ.get("TMPDIR", "/tmp")) / name  # noqa: S108 - bench scratch


def _marker_text(plan: DayPlan) -> str:
    return json.dumps(asdict(plan), sort_keys=True)


def is_built(out: Path, plan: DayPlan) -> bool:
    """Whether ``out`` holds a complete day of this very plan."""
    marker = out / MARKER
    return marker.exists() and marker.read_text(encoding="utf-8") == _marker_text(plan)


def build_day(out: Path, plan: DayPlan, procs: int | None = None) -> dict[str, object]:
    """Build the day into ``out`` (reused if already built with ``plan``); what was made.

    ``procs``: processes for both phases (default: the cores). The folder is emptied first
    when it holds another plan's day (or a half-built one).
    """
    from validator.bench.network_write import save_summary, simulate_all, summary, write_all

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
    (out / MARKER).write_text(_marker_text(plan), encoding="utf-8")
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
