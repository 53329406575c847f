# SPDX-License-Identifier: Apache-2.0
"""Where ``validator replay`` spends its time on a journal folder: a profile in parts.

Runs the replay of the command (decisions and reconciliation, MACs with ``--macs``) in this
process under cProfile and prints the cumulative seconds of its parts (reading and merging the
files, hashing and parsing lines, reading records into entries, card records decoded, fare
decisions, reconciliation, the chain) and how often the decoded-record caches of the card
layouts found a record again. cProfile slows pure-Python code down, about alike in every part:
the shares are what to read, the rate is not. For the network day against the repeated journal
of ``make bench-replay``:

``python -m validator.bench.netday.profile /tmp/network-day-1000-100-100000-7``
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config"

# (label, module path suffix, function name): each part's cumulative time.
PARTS = (
    ("replay, all of it", "replay/audit.py", "replay_lines"),
    ("files read, lines merged by tap time", "replay/audit.py", "_batches"),
    ("line hashed, parsed (orjson), HMAC", "replay/line.py", "entry_facts"),
    ("record read into an entry (types checked)", "journal/intent.py", "read_record"),
    ("tap analysed (decision, MACs, totals)", "replay/line.py", "_tap"),
    ("decision replayed", "replay/decisions.py", "replay_decision"),
    ("card records decoded into a CardState", "replay/decisions.py", "card_state"),
    ("fares.decide", "fares/decide.py", "decide"),
    ("fares.decide_early", "fares/early.py", "decide_early"),
    ("MACs recomputed", "replay/mac.py", "check"),
    ("totals kept", "replay/findings.py", "add"),
    ("reconciliation", "replay/recon.py", "feed"),
    ("chain checked", "replay/integrity.py", "feed"),
)


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    """The cumulative seconds and calls of one function (summed if several match)."""
    seconds, calls = 0.0, 0
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (path, _, function), (_, primitive, _, cumulative, _) in table.items():
        if function == name and path.endswith(suffix):
            seconds += cumulative
            calls += primitive
    return seconds, calls


def profile(directory: Path, macs: bool, out: Path | None = None) -> dict[str, Any]:
    """Replay ``directory`` under cProfile; the parts' times and the record caches' hits."""
    from validator.app.settings import load_settings
    from validator.engine.fares.decide import FareRules
    from validator.office.replay import line
    from validator.office.replay.audit import ReplayRequest, replay
    from yamlconfig import load_model

    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / settings.fares, FareRules)
    keys = CONFIG / settings.keys if macs else None
    options = line.Options(rules, None, keys, layouts=tuple(settings.layouts.items()))
    layouts: list[Any] = []
    names = vars(line)  # replay_layouts as line.py imported it, wrapped to keep the layouts
    real = names["replay_layouts"]

    def keeping(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        layouts.extend([found[1], *found[0].values()])
        return found

    names["replay_layouts"] = keeping
    profiler = cProfile.Profile()
    try:
        report = profiler.runcall(replay, ReplayRequest([directory], options, "in force", rules))
    finally:
        names["replay_layouts"] = real
    if out is not None:
        profiler.dump_stats(out)
    stats = pstats.Stats(profiler)
    doc = report.as_json()
    parts = {
        label: dict(zip(("seconds", "calls"), _cumulative(stats, suffix, name), strict=True))
        for label, suffix, name in PARTS
    }
    return {
        "lines": doc["lines"],
        "taps": doc["entries"],
        "parts": parts,
        "caches": _caches(layouts),
    }


def _caches(layouts: list[Any]) -> dict[str, dict[str, int]]:
    """Hits and misses of every decoded-record cache of the layouts replay used."""
    caches: dict[str, dict[str, int]] = {}
    seen: set[int] = set()
    for layout in layouts:
        if id(layout) in seen:
            continue
        seen.add(id(layout))
        for name in ("_environment", "_contract", "_contract_list"):
            info = getattr(getattr(layout, name, None), "cache_info", None)
            if info is None:
                continue
            got = info()
            key = f"{type(layout).__name__}.{name.lstrip('_')}"
            entry = caches.setdefault(key, {"hits": 0, "misses": 0})
            entry["hits"] += got.hits
            entry["misses"] += got.misses
    return caches


def main(argv: list[str] | None = None) -> None:
    """Profile the replay of a folder and print its parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--macs", action="store_true", help="recompute MACs (--keys)")
    parser.add_argument("--out", type=Path, default=None, help="also dump the cProfile stats")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    found = profile(args.directory, args.macs, args.out)
    if args.json:
        print(json.dumps(found, sort_keys=True))
        return
    total = found["parts"]["replay, all of it"]["seconds"] or 1.0
    print(f"{args.directory}: {found['taps']} taps, {found['lines']} lines (under cProfile)")
    for label, part in found["parts"].items():
        share = 100 * part["seconds"] / total
        print(f"  {label:<44}{part['seconds']:>8.1f} s {share:>5.1f} %  {part['calls']:>9} calls")
    for name, cache in found["caches"].items():
        looked = cache["hits"] + cache["misses"]
        rate = 100 * cache["hits"] / looked if looked else 0.0
        print(
            f"  cache {name:<38}{cache['hits']:>9} hits {cache['misses']:>9} misses {rate:5.1f} %"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
