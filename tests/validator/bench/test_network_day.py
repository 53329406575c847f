# SPDX-License-Identifier: Apache-2.0
"""A small simulated network day: real journals that replay clean, with travelling cards."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG

from validator.app.settings import load_settings
from validator.bench.netday.plan import MARKER, DayPlan, is_built, validator_ids
from validator.bench.netday.replay import rates, without_timings, year_hours
from validator.bench.network_day import build_day
from validator.engine.fares.decide import FareRules
from validator.journal.writer import journal_files
from validator.office.replay.audit import ReplayRequest, replay
from validator.office.replay.line import Options
from yamlconfig import load_model

# Tears four times as often as the default, so that 2,000 taps hold unknowns and recoveries.
PLAN = DayPlan(validators=20, stations=4, taps=2000, seed=11, tear_rate=0.2)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small day, built once with two processes."""
    out = tmp_path_factory.mktemp("network-day")
    build_day(out, PLAN, procs=2)
    return out


@pytest.fixture(scope="module")
def report(day: Path) -> dict[str, Any]:
    """The replay report of the small day, MACs recomputed with the simulation keys."""
    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / settings.fares, FareRules)
    options = Options(rules, None, CONFIG / settings.keys, layouts=tuple(settings.layouts.items()))
    result = replay(ReplayRequest([day], options, "in force", rules))
    return dict(result.as_json())


def _entries(day: Path) -> dict[str, list[dict[str, Any]]]:
    """Every record of the day by validator folder, in file order."""
    return {
        folder.name: [
            json.loads(line)
            for path in journal_files(folder)
            for line in path.read_text(encoding="utf-8").splitlines()
        ]
        for folder in sorted(day.glob("gate-*"))
    }


def _taps(day: Path) -> list[dict[str, Any]]:
    return [e for records in _entries(day).values() for e in records if e.get("kind") != "intent"]


def test_every_validator_has_its_own_journal(day: Path) -> None:
    """One folder per validator, every record naming it and its station, seqs from 1 unbroken."""
    by_folder = _entries(day)
    assert sorted(by_folder) == sorted(validator_ids(PLAN))
    for folder, records in by_folder.items():
        assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
        assert {r["validator"] for r in records} == {folder}
        assert len({r["station"] for r in records}) == 1
    stations = {records[0]["station"] for records in by_folder.values()}
    assert stations == {PLAN.location(s) for s in range(PLAN.stations)}


def test_the_day_has_the_taps_asked_for(day: Path) -> None:
    """Exactly ``taps`` tap entries, plus the closing intents before their Closes."""
    assert len(_taps(day)) == PLAN.taps


def test_replay_finds_no_break_every_mac_verifies_every_decision_is_the_same(
    report: dict[str, Any],
) -> None:
    """Integrity holds, no MAC fails, no decision differs: only writer-owned fields changed."""
    assert report["integrity"]["ok"] and report["integrity"]["breaks"] == []
    assert report["entries"] == PLAN.taps
    assert report["mac"]["failed"] == 0 and report["mac"]["verified"] > PLAN.taps // 2
    assert report["decisions"]["different"] == 0
    assert report["decisions"]["same"] > PLAN.taps // 2


def test_cards_travel_across_validators_and_stations(day: Path) -> None:
    """Many cards tap at several validators, and at several stations, during the day."""
    gates: dict[str, set[str]] = defaultdict(set)
    stations: dict[str, set[int]] = defaultdict(set)
    for tap in _taps(day):
        if tap.get("card"):
            gates[tap["card"]].add(tap["validator"])
            stations[tap["card"]].add(tap["station"])
    assert sum(len(v) > 1 for v in gates.values()) > 100
    assert sum(len(s) > 1 for s in stations.values()) > 100


def test_unknowns_and_recoveries_are_settled_across_validators(report: dict[str, Any]) -> None:
    """Unknown taps exist and are resolved, some at another validator; recoveries are matched."""
    unknown = report["unknown"]
    assert unknown["total"] > 0 and unknown["resolved"] > 0
    assert unknown["disagreements"] == 0
    elsewhere = [
        u
        for u in unknown["items"]
        if u["resolved"] and u["resolved_by"]["validator"] != u["validator"]
    ]
    assert elsewhere
    assert report["recoveries"]["total"] > 0
    assert report["recoveries"]["without_paid_entry"] == []


def test_resolutions_point_at_the_unknown_tap_of_their_validator(day: Path) -> None:
    """A tap's ``resolves`` names, by the writer's seq, an unknown tap of the same card there."""
    checked = 0
    for records in _entries(day).values():
        by_seq = {r["seq"]: r for r in records}
        for record in records:
            resolves = record.get("resolves")
            if record.get("kind") == "intent" or resolves is None:
                continue
            earlier = by_seq[resolves["seq"]]
            assert earlier["outcome"] == "unknown" and earlier["card"] == record["card"]
            assert earlier["seq"] < record["seq"]
            checked += 1
    assert checked > 0


def test_a_built_day_is_reused_and_another_plan_rebuilds(day: Path, tmp_path: Path) -> None:
    """The marker names the plan: the same plan reuses the folder, another one rebuilds it."""
    assert is_built(day, PLAN)
    assert build_day(day, PLAN)["reused"] is True
    small = DayPlan(validators=2, stations=1, taps=40, seed=1)
    assert build_day(tmp_path, small, procs=1)["reused"] is False
    other = DayPlan(validators=2, stations=1, taps=30, seed=2)
    made = build_day(tmp_path, other, procs=1)
    assert made["reused"] is False and made["taps"] == 30
    assert len(_taps(tmp_path)) == 30
    assert json.loads((tmp_path / MARKER).read_text())["taps"] == 30


def test_bench_helpers_compare_reports_without_timings() -> None:
    """Reports that differ only in timings and the cluster section compare equal."""
    one = {"entries": 10, "lines": 20, "seconds": 2.0, "taps_per_second": 5, "decisions": {}}
    two = {**one, "seconds": 1.0, "taps_per_second": 10, "cluster": {"workers": 2}}
    assert without_timings(one) == without_timings(two)
    assert rates({"report": one}) == (5.0, 10.0)
    assert year_hours(2_500_000_000 / 3600) == pytest.approx(1.0)
