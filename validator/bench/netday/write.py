# SPDX-License-Identifier: Apache-2.0
"""The write phase of a network day: each validator's taps into its journal, in tap time order.

The units a station's gates spilled (validator.bench.netday.sim) are sorted by tap time per
validator and written with the real journal writer (``Journal``, one folder per validator,
``validator_id`` set): it gives each record its seq, chain and write time (the tap's time).
The engine's references to earlier records of its validator, taken from the recorder's
provisional numbers, are mapped to the writer's: ``resolves`` (seq and tap number of the
unknown tap settled) and ``recovered_from_tap``. Nothing else of a tap changes, so MACs and
decisions stay as the gate made them.

The journal is fsynced line by line at a gate; this is bench data in /tmp, so fsync is skipped
here (``os.fsync`` replaced in the writing processes only): the lines are the same.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from validator.bench.netday.plan import DayPlan, validator_ids
from validator.bench.netday.sim import simulate_share, spill_path
from validator.journal.writer import Journal

SUMMARY = ".network-day-summary.json"


def _pool(procs: int) -> ProcessPoolExecutor:
    """Worker processes started afresh (no inherited locks or threads)."""
    return ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn"))


def simulate_all(plan: DayPlan, scratch: Path, procs: int) -> dict[str, Any]:
    """Run the simulation phase over ``procs`` processes; the taps, cards and outcomes."""
    if procs == 1:
        shares = [simulate_share(plan, scratch, 0, 1)]
    else:
        with _pool(procs) as pool:
            futures = [pool.submit(simulate_share, plan, scratch, p, procs) for p in range(procs)]
            shares = [f.result() for f in futures]
    outcomes: dict[str, int] = {}
    for share in shares:
        for name, count in share["outcomes"].items():
            outcomes[name] = outcomes.get(name, 0) + count
    return {
        "cards": sum(s["cards"] for s in shares),
        "outcomes": dict(sorted(outcomes.items())),
    }


@contextmanager
def _no_fsync() -> Iterator[None]:
    """Bench data: lines written, not fsynced (see the module docstring)."""
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def _units(scratch: Path, station: int) -> dict[int, list[tuple[str, int, int, dict[str, Any]]]]:
    """A station's units by validator: (tap time, process, order, unit)."""
    by_gate: dict[int, list[tuple[str, int, int, dict[str, Any]]]] = {}
    for path in sorted(scratch.glob(spill_path(scratch, station, 0).name.replace("-00.", "-*."))):
        proc = int(path.stem.rsplit("-", 1)[1])
        with open(path, encoding="utf-8") as handle:
            for order, line in enumerate(handle):
                unit = json.loads(line)
                by_gate.setdefault(unit["v"], []).append((unit["t"], proc, order, unit))
    return by_gate


def _mapped(record: dict[str, Any], proc: int, seqs: dict[Any, int], taps: dict[Any, int]) -> None:
    """Map the engine's references to earlier records of this validator to the writer's numbers."""
    resolves = record.get("resolves")
    if isinstance(resolves, dict):
        record["resolves"] = {
            **resolves,
            "seq": seqs[(proc, resolves["seq"])],
            "tap": taps[(proc, resolves["tap"])],
        }
    recovered = record.get("recovered_from_tap")
    if isinstance(recovered, int):
        record["recovered_from_tap"] = taps[(proc, recovered)]


def write_gate(
    directory: Path, validator_id: str, units: list[tuple[str, int, int, dict[str, Any]]]
) -> dict[str, int]:
    """Write one validator's units, in tap time order, with the journal writer."""
    units.sort(key=lambda item: item[:3])
    now = [dt.datetime.fromisoformat(units[0][0]) if units else dt.datetime(2026, 1, 1)]
    clock: Callable[[], dt.datetime] = lambda: now[0].replace(tzinfo=dt.UTC)  # noqa: E731
    seqs: dict[Any, int] = {}
    taps: dict[Any, int] = {}
    lines = 0
    with Journal(directory, validator_id=validator_id, clock=clock) as journal:
        for when, proc, _, unit in units:
            now[0] = dt.datetime.fromisoformat(when)
            for kind, provisional, record in unit["r"]:
                _mapped(record, proc, seqs, taps)
                if kind == "intent":
                    written = journal.write_intent(record).wait()
                else:
                    written = journal.append(record)
                seqs[(proc, provisional)] = written["seq"]
                lines += 1
            taps[(proc, unit["i"])] = len(taps) + 1
    return {"taps": len(taps), "lines": lines}


def write_station(plan: DayPlan, out: Path, scratch: Path, station: int) -> dict[str, int]:
    """Write every validator of one station; its taps and lines."""
    ids = validator_ids(plan)
    by_gate = _units(scratch, station)
    made = {"taps": 0, "lines": 0, "validators": 0}
    with _no_fsync():
        for number in plan.gates(station):
            counts = write_gate(out / ids[number], ids[number], by_gate.pop(number, []))
            made["taps"] += counts["taps"]
            made["lines"] += counts["lines"]
            made["validators"] += 1
    return made


def write_all(plan: DayPlan, out: Path, scratch: Path, procs: int) -> dict[str, int]:
    """Run the write phase over ``procs`` processes (stations shared out); the totals."""
    stations = range(plan.stations)
    if procs == 1:
        parts = [write_station(plan, out, scratch, s) for s in stations]
    else:
        with _pool(procs) as pool:
            futures = [pool.submit(write_station, plan, out, scratch, s) for s in stations]
            parts = [f.result() for f in futures]
    totals = {key: sum(p[key] for p in parts) for key in ("validators", "taps", "lines")}
    size = sum(p.stat().st_size for p in out.glob("gate-*/journal-*.jsonl"))
    return {**totals, "stations": plan.stations, "bytes": size}


def save_summary(out: Path, made: dict[str, Any]) -> None:
    """Keep what the day holds beside it (read back when the day is reused)."""
    (out / SUMMARY).write_text(json.dumps(made, sort_keys=True), encoding="utf-8")


def summary(out: Path) -> dict[str, Any]:
    """What a built day holds (validators, stations, taps, lines, bytes)."""
    return dict(json.loads((out / SUMMARY).read_text(encoding="utf-8")))
