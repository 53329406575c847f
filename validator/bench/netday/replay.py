# SPDX-License-Identifier: Apache-2.0
"""Benchmark of ``validator replay`` on a simulated network day (validator.bench.network_day).

The day (default 1,000 validators at 100 stations, 1,000,000 taps; built once into /tmp and
reused) is replayed by the command itself, each run in a fresh process, ``--json``:

- in process (one core, the default of the command);
- ``--workers 1`` and ``--workers 2`` (a local Dask cluster), when this build has the option;
  otherwise "cluster: not available in this build" and the rest goes on.

For each run: taps/s and lines/s over the replay's own time (``seconds`` of the report; the
wall time, start-up included, is printed too), the peak memory of the replaying process and,
from the report's ``cluster`` section, of its busiest worker (the process's own peak counts the
local cluster's workers it reaped). Then the 1 -> 2 worker scaling
ratio measured in this run, whether the in-process and 2-worker reports are identical (the JSON
without its timings and the cluster section), and what a year of a large network (2.5 billion
taps) costs in worker-hours at the measured rates. With ``--macs`` every session's MACs are
recomputed too (``--keys``). Figures are printed, never asserted.

``make bench-replay-network`` (``QUICK=1``: 100,000 taps; NETDAY_VALIDATORS, NETDAY_STATIONS,
NETDAY_TAPS, NETDAY_MACS=1 to change it; NETDAY_VALIDATOR=PATH runs another build's
``validator`` command on the same day).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from validator.bench.netday.plan import DayPlan, default_out
from validator.bench.network_day import build_day

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config"
YEAR_TAPS = 2_500_000_000  # a large network's validations in a year (about 10 million a day)
# Fields of a report that say how fast, not what: left out when two reports are compared.
TIMINGS = ("seconds", "taps_per_second", "cluster")
QUICK_TAPS = 100_000


def validator_command() -> list[str]:
    """The ``validator`` command to benchmark: NETDAY_VALIDATOR (another build's, to compare
    them on the same day) or this interpreter's environment's."""
    chosen = os.environ.get("NETDAY_VALIDATOR")
    if chosen:
        return [chosen]
    script = Path(sys.executable).with_name("validator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "validator.cli.main"]


def has_workers() -> bool:
    """Whether this build's ``validator replay`` has the ``--workers`` option (Dask)."""
    shown = subprocess.run(  # noqa: S603 - our own command
        [*validator_command(), "replay", "--help"], capture_output=True, text=True, check=False
    )
    return "--workers" in shown.stdout


def run_replay(directory: Path, extra: list[str], macs: bool) -> dict[str, Any]:
    """Run ``validator replay DIR --json`` in a fresh process: its report, wall time, peak RSS.

    The peak is that child's (``wait4``), which counts the children it reaped: with a local
    cluster, its worker processes too; the command's ``cluster`` section gives the workers'.
    """
    import time

    command = [*validator_command(), "replay", str(directory), "--json", *extra]
    if macs:
        command += ["--keys", str(CONFIG / "keys.sim.yaml")]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # another build's tree stays as is
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)  # noqa: S603
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    try:
        report = json.loads(text)
    except json.JSONDecodeError:
        raise RuntimeError(f"{' '.join(command)} failed: {errors[-2000:]}") from None
    return {"report": report, "wall": wall, "peak_rss_bytes": usage.ru_maxrss * 1024}


def without_timings(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what says how fast it ran (for comparing two runs)."""
    return {key: value for key, value in report.items() if key not in TIMINGS}


def rates(run: dict[str, Any]) -> tuple[float, float]:
    """(taps/s, lines/s) over the replay's own time."""
    report = run["report"]
    seconds = max(float(report["seconds"]), 1e-9)
    return report["entries"] / seconds, report["lines"] / seconds


def year_hours(taps_per_second: float) -> float:
    """Hours of one worker (one core) to replay a year of a large network at this rate."""
    return YEAR_TAPS / max(taps_per_second, 1e-9) / 3600


def _line(label: str, run: dict[str, Any]) -> str:
    taps, lines = rates(run)
    report = run["report"]
    checks = (
        f"integrity {'ok' if report['integrity']['ok'] else 'BROKEN'}, "
        f"decisions same {report['decisions']['same']} different "
        f"{report['decisions']['different']}, unknowns {report['unknown']['total']} "
        f"(resolved {report['unknown']['resolved']}), recoveries {report['recoveries']['total']}"
    )
    if report["mac"]["checked"]:
        checks += f", MACs verified {report['mac']['verified']} failed {report['mac']['failed']}"
    return (
        f"{label:<14}{taps:>9.0f}{lines:>10.0f}{report['seconds']:>9.1f}{run['wall']:>8.1f}"
        f"{run['peak_rss_bytes'] / 1e6:>9.0f}  {checks}"
    )


def _cluster(run: dict[str, Any]) -> str:
    cluster = run["report"].get("cluster") or {}
    peak = cluster.get("peak_worker_rss_bytes")
    return (
        f"    cluster: workers {cluster.get('workers')}, scheduler {cluster.get('scheduler')}, "
        f"tasks {cluster.get('tasks')}, retried {cluster.get('retried')}, peak worker RSS "
        f"{peak / 1e6 if isinstance(peak, int | float) else float('nan'):.0f} MB"
    )


def bench(plan: DayPlan, directory: Path, macs: bool, procs: int | None = None) -> None:
    """Build (or reuse) the day, replay it each way, print the figures."""
    print(
        f"network day: {plan.validators} validators, {plan.stations} stations, "
        f"{plan.taps} taps (seed {plan.seed}) in {directory} ...",
        flush=True,
    )
    made = build_day(directory, plan, procs)
    how = "reused" if made.get("reused") else f"built in {made.get('build_seconds')} s"
    print(
        f"{made['taps']} taps, {made['lines']} lines (closing intents included), "
        f"{int(str(made['bytes'])) / 1e6:.0f} MB, {made.get('cards')} cards; {how}; "
        f"outcomes {made.get('outcomes')}; cores: {os.cpu_count()}; "
        f"MACs {'recomputed' if macs else 'not recomputed'}",
        flush=True,
    )
    print(f"{'run':<14}{'taps/s':>9}{'lines/s':>10}{'replay s':>9}{'wall s':>8}{'peak MB':>9}")
    runs: dict[str, dict[str, Any]] = {}
    runs["in-process"] = run_replay(directory, [], macs)
    print(_line("in-process", runs["in-process"]), flush=True)
    if not has_workers():
        print("cluster: not available in this build")
    else:
        for workers in (1, 2):
            label = f"workers {workers}"
            runs[label] = run_replay(directory, ["--workers", str(workers)], macs)
            print(_line(label, runs[label]), flush=True)
            print(_cluster(runs[label]), flush=True)
    summary(runs)


def summary(runs: dict[str, dict[str, Any]]) -> None:
    """The scaling ratio, the comparison of reports and the year's estimate."""
    in_process, _ = rates(runs["in-process"])
    print(
        f"year ({YEAR_TAPS / 1e9:.1f} billion taps) at the in-process rate: "
        f"{year_hours(in_process):,.0f} core-hours"
    )
    one, two = runs.get("workers 1"), runs.get("workers 2")
    if one is None or two is None:
        return
    rate_one, rate_two = rates(one)[0], rates(two)[0]
    print(f"scaling 1 -> 2 workers: x{rate_two / rate_one:.2f} (measured in this run)")
    per_worker = rate_two / 2
    print(
        f"year at the 2-worker rate per worker ({per_worker:,.0f} taps/s): "
        f"{year_hours(per_worker):,.0f} worker-hours; at the 1-worker rate "
        f"({rate_one:,.0f} taps/s): {year_hours(rate_one):,.0f} worker-hours"
    )
    same = without_timings(runs["in-process"]["report"]) == without_timings(two["report"])
    if same:
        print("reports in-process and with 2 workers: identical (timings and cluster aside)")
    else:
        a, b = without_timings(runs["in-process"]["report"]), without_timings(two["report"])
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        print(f"reports in-process and with 2 workers: DIFFERENT in {keys}")


def main(argv: list[str] | None = None) -> None:
    """Parse the size, then build and replay the network day."""
    env = os.environ.get
    quick = env("QUICK", "") not in ("", "0")
    base = DayPlan()
    default_taps = QUICK_TAPS if quick else base.taps
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--validators", type=int, default=int(env("NETDAY_VALIDATORS", base.validators))
    )
    parser.add_argument("--stations", type=int, default=int(env("NETDAY_STATIONS", base.stations)))
    parser.add_argument("--taps", type=int, default=int(env("NETDAY_TAPS", default_taps)))
    parser.add_argument("--seed", type=int, default=base.seed)
    parser.add_argument("--dir", type=Path, default=None, help="default: /tmp/network-day-...")
    parser.add_argument("--macs", action="store_true", default=env("NETDAY_MACS", "") == "1")
    parser.add_argument("--procs", type=int, default=None, help="to build the day")
    parser.add_argument(
        "--validator", default=None, help="the validator command to run (NETDAY_VALIDATOR)"
    )
    args = parser.parse_args(argv)
    if args.validator:
        os.environ["NETDAY_VALIDATOR"] = args.validator
    plan = DayPlan(args.validators, args.stations, args.taps, args.seed)
    bench(plan, args.dir or default_out(plan), args.macs, args.procs)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
