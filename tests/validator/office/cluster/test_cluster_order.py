# SPDX-License-Identifier: Apache-2.0
"""The two facts a cluster replay rests on, checked apart from Dask.

- The in-process merge (``heapq.merge`` by tap time, journals not always sorted: a clock that
  stepped back) puts the lines in the order of a sort on (the highest tap time its journal
  reached, journal, line): so a worker ranks a line from its own journal alone.
- Reconciliation fed each card's taps apart, in that order with that clock, finds what it finds
  fed every tap together.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random

from conftest import CONFIG
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.engine.fares.decide import FareRules
from validator.office.cluster.tasks import partition_of
from validator.office.replay.line import ReconTap
from validator.office.replay.recon import Reconciler, clock_of
from yamlconfig import load_model

streams = st.lists(st.lists(st.sampled_from([b"", b"1", b"2", b"3", b"4"]), max_size=8), max_size=5)


@given(streams)
def test_the_merge_is_a_sort_on_the_highest_time_so_far(keys: list[list[bytes]]) -> None:
    """heapq.merge of unsorted journals = sort by (running highest key, journal, line)."""
    lines = [[(key, j, n) for n, key in enumerate(stream)] for j, stream in enumerate(keys)]
    merged = list(heapq.merge(*lines, key=lambda line: line[0]))
    ranked = []
    for stream in lines:
        highest = b""
        for key, j, n in stream:
            highest = max(highest, key)
            ranked.append(((highest, j, n), (key, j, n)))
    assert merged == [line for _, line in sorted(ranked)]


T0 = dt.datetime(2026, 3, 2, 8, 0)
CARDS = [f"00000000C0FFEE{n:02X}" for n in range(6)]
OUTCOMES = ["granted", "granted", "unknown", "recovered", "denied"]


def _taps(seed: int) -> list[tuple[ReconTap, dict[str, object], bytes]]:
    """Taps of a few cards at two validators whose clocks wander (and step back)."""
    rng = random.Random(seed)
    taps = []
    clock = T0
    for seq in range(1, 120):
        clock += dt.timedelta(seconds=rng.choice([5, 20, 40, 90, 400, -300]))
        card = rng.choice(CARDS)
        outcome = rng.choice(OUTCOMES)
        event = f"{seq:058X}"
        events = tuple(rng.sample([f"{n:058X}" for n in range(1, seq + 1)], min(seq, 2)))
        tap = ReconTap(
            0,
            clock,
            "v",
            rng.choice([101, 102, 201]),
            card,
            outcome,
            1,
            events,
            event if outcome == "unknown" else None,
            None,
        )
        taps.append(
            (
                tap,
                {"validator": "v", "file": "f", "line": seq, "seq": seq},
                clock.isoformat().encode(),
            )
        )
    return taps


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=5))
def test_cards_reconciled_apart_find_the_same(seed: int, partitions: int) -> None:
    """Every card's taps fed to its partition's Reconciler: the same counts as all together."""
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    together = Reconciler(rules)
    apart = [Reconciler(rules) for _ in range(partitions)]
    highest = b""
    for tap, where, key in _taps(seed):
        highest = max(highest, key)
        together.feed(tap, dict(where), clock_of(highest))
        apart[partition_of(tap.card, partitions)].feed(tap, dict(where), clock_of(highest))
    counts = (
        "unknown_total",
        "unknown_resolved",
        "unknown_committed",
        "recoveries",
        "recoveries_matched",
        "double_debit_count",
    )
    for name in counts:
        assert getattr(together, name) == sum(getattr(part, name) for part in apart), name


def test_the_driver_keeps_the_first_details_in_merge_order() -> None:
    """Chains' details folded one by one: the first DETAIL_LIMIT of all in merge order, every
    one counted, whichever chain arrives first."""
    from validator.office.cluster.merge import TotalsFold
    from validator.office.cluster.tasks import ChainOutcome
    from validator.office.replay.findings import DETAIL_LIMIT, Totals

    rng = random.Random(7)
    outcomes = []
    for journal in range(4):
        ranks = sorted((f"{rng.randrange(10_000):05d}".encode(), journal, n) for n in range(700))
        totals = Totals(entries=700)
        totals.mac_failures = [{"rank": list(rank)} for rank in ranks]
        outcomes.append(ChainOutcome(None, totals, list(ranks), [], []))  # type: ignore[arg-type]
    expected = sorted(rank for o in outcomes for rank in o.mac_ranks)[:DETAIL_LIMIT]
    rng.shuffle(outcomes)
    fold = TotalsFold()
    for outcome in outcomes:
        fold.add(outcome)
    totals = fold.result()
    assert totals.entries == 2800
    assert [tuple(d["rank"]) for d in totals.mac_failures] == expected
