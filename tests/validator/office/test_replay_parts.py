# SPDX-License-Identifier: Apache-2.0
"""Replay's parts on their own: sources, sessions in a trace, reconciliation across validators."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import CONFIG

from validator.engine.fares.decide import FareRules
from validator.journal.reading import ReplayInputError, discover, merged, tap_time_key
from validator.office.replay.line import ReconTap
from validator.office.replay.mac import sessions
from validator.office.replay.recon import Reconciler
from yamlconfig import load_model

T0 = dt.datetime(2026, 3, 2, 8, 0, 10)
CARD = "00000000C0FFEE02"
EVENT = "01" * 29


def tap(
    seconds: int,
    outcome: str,
    *,
    station: int = 101,
    debit: int = 1,
    events: tuple[str, ...] = (),
    sent: str | None = None,
    validator: str = "a",
) -> ReconTap:
    """A reconciliation fact for one tap of CARD, ``seconds`` after T0."""
    when = T0 + dt.timedelta(seconds=seconds)
    return ReconTap(0, when, validator, station, CARD, outcome, debit, events, sent, None)


def feed(recon: Reconciler, *taps: ReconTap) -> None:
    """Feed taps in order, numbering them as seq 1, 2, ..."""
    for seq, item in enumerate(taps, start=1):
        recon.feed(item, {"validator": item.validator, "file": "f", "line": seq, "seq": seq})


@pytest.fixture
def recon() -> Reconciler:
    """A reconciler with the shipped rules (1-minute windows; 101 and 102 one group)."""
    return Reconciler(load_model(CONFIG / "fares.yaml", FareRules))


def test_double_debit_same_group(recon: Reconciler) -> None:
    """Two debits within the window at 101 and 102 (one group): one entry paid twice."""
    feed(recon, tap(0, "granted"), tap(30, "granted", station=102, validator="b"))
    (double,) = recon.summary()["double_debits"]
    assert double["first"]["validator"] == "a" and double["second"]["validator"] == "b"


def test_no_double_debit_elsewhere_or_later(recon: Reconciler) -> None:
    """Another station group, or after the window, or a season pass: not a double debit."""
    feed(recon, tap(0, "granted"), tap(20, "granted", station=201), tap(600, "granted"))
    feed(recon, tap(900, "granted", debit=0), tap(910, "granted", debit=0))
    assert recon.summary()["double_debit_count"] == 0


def test_unknown_resolved_elsewhere(recon: Reconciler) -> None:
    """An unknown at validator a is settled by the card's event log read at validator b."""
    feed(
        recon,
        tap(0, "unknown", sent=EVENT),
        tap(15, "recovered", station=102, debit=0, events=(EVENT, "00" * 29), validator="b"),
    )
    unknown = recon.summary()["unknown"]
    assert (unknown["total"], unknown["resolved"], unknown["committed"]) == (1, 1, 1)
    assert unknown["items"][0]["resolved_by"]["validator"] == "b"
    assert recon.summary()["recoveries"]["with_paid_entry"] == 1


def test_unknown_not_committed_then_paid_once(recon: Reconciler) -> None:
    """A lost Close that did not commit, then a paid retry: resolved, no double debit."""
    feed(recon, tap(0, "unknown", sent=EVENT), tap(10, "granted", events=("00" * 29,)))
    summary = recon.summary()
    assert summary["unknown"]["committed"] == 0 and summary["unknown"]["resolved"] == 1
    assert summary["double_debit_count"] == 0


def test_unknown_committed_then_debited_again(recon: Reconciler) -> None:
    """A lost Close that committed, and the retry debited anyway: a double debit."""
    feed(recon, tap(0, "unknown", sent=EVENT), tap(10, "granted", events=(EVENT,)))
    assert recon.summary()["double_debit_count"] == 1


def test_sessions_in_a_trace() -> None:
    """A trace is cut at each Open Secure Session; a session ends with its Close."""
    trace = [
        {"c": "00A4040009315449432E4943413100", "r": "9000"},
        {"c": "008A0B3904AABBCCDD00", "r": "9000"},
        {"c": "00B201455D", "r": "9000"},
        {"c": "008A0B3904AABBCCDD00", "r": "9000"},
        {"c": "008E00000411223344", "r": "556677889000"},
        {"c": "00B2000000", "r": "6B00"},
    ]
    first, second = sessions(trace)
    assert len(first) == 2 and len(second) == 2
    assert second[-1][1] == bytes.fromhex("556677889000")


def test_sources(tmp_path: Path) -> None:
    """Files are grouped by directory; a file given twice is read once; merge by tap time."""
    for name, times in (("a", ["08:00", "08:02"]), ("b", ["08:01"])):
        directory = tmp_path / name
        directory.mkdir()
        lines = [f'{{"seq":{i},"tap_time":"2026-03-02T{t}:00"}}' for i, t in enumerate(times, 1)]
        (directory / "journal-20260302-0001.jsonl").write_text("\n".join(lines) + "\n")
    sources = discover([tmp_path, tmp_path / "a" / "journal-20260302-0001.jsonl"])
    assert [len(s.files) for s in sources] == [1, 1]
    keys = [line.key for line in merged(sources)]
    assert keys == sorted(keys) and len(keys) == 3
    assert tap_time_key(b'{"seq":1}', b"x") == b"x"
    with pytest.raises(ReplayInputError):
        discover([tmp_path / "nowhere"])
