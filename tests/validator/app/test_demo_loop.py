# SPDX-License-Identifier: Apache-2.0
"""``validator demo`` is the gate loop of ``run``, fed by simulated passengers."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from conftest import CONFIG

from validator.app.demo import DemoTap, SimulatedPassengers, build_fleet, run_demo
from validator.app.settings import load_settings
from validator.engine.recording import JournalError
from validator.journal.writer import Journal, journal_files

START = dt.datetime(2026, 3, 2, 7, 0)


def test_passengers_come_one_at_a_time_on_the_simulated_clock() -> None:
    """Each wait for a card is the next passenger, 3 s to 15 min later; removal is immediate."""
    rnd = random.Random(1)  # noqa: S311 - simulation
    fleet = build_fleet(CONFIG / "cards", rnd)
    passengers = SimulatedPassengers(fleet, rnd, START, tear_rate=0.0)
    seen = []
    for _ in range(20):
        before = passengers.now()
        connection = passengers.wait_for_card()
        assert connection is not None
        assert dt.timedelta(seconds=3) <= passengers.now() - before <= dt.timedelta(minutes=15)
        assert passengers.card in fleet
        seen.append(passengers.card)
        assert passengers.wait_for_removal() is True
    assert len(set(map(id, seen))) > 3  # different passengers, not one card over and over


def test_demo_taps_are_served_by_the_loop_and_journaled(tmp_path: Path) -> None:
    """Every tap reaches on_tap in order, at its simulated time, with its journal seq."""
    taps: list[DemoTap] = []
    with Journal(tmp_path / "journal") as journal:
        served = run_demo(
            CONFIG,
            load_settings(CONFIG),
            taps=12,
            seed=4,
            start=START,
            journal=journal,
            on_tap=taps.append,
        )
    assert served == 12
    assert [t.index for t in taps] == list(range(1, 13))
    seqs = [t.record.seq or 0 for t in taps]
    assert seqs == sorted(seqs)
    assert all(a.at < b.at for a, b in zip(taps, taps[1:], strict=False))
    assert taps[0].at > START
    lines = journal_files(tmp_path / "journal")[0].read_text().splitlines()
    # One entry per tap, after the closing intent of each Close that committed writes.
    intents = [line for line in lines if '"kind":"intent"' in line]
    assert len(lines) == 12 + len(intents) == seqs[-1] and intents


def test_a_journal_without_room_stops_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's journal outage ends the demo with JournalError: no tap served, none shown."""

    def no_room(self: Journal) -> None:
        raise JournalError("no room left on the journal's filesystem")

    monkeypatch.setattr(Journal, "ensure_room", no_room)
    taps: list[DemoTap] = []
    with Journal(tmp_path / "journal") as journal, pytest.raises(JournalError, match="no room"):
        run_demo(
            CONFIG,
            load_settings(CONFIG),
            taps=5,
            seed=1,
            start=START,
            journal=journal,
            on_tap=taps.append,
        )
    assert taps == []
