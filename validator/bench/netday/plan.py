# SPDX-License-Identifier: Apache-2.0
"""The plan of a network day: its size, its stations and validators, where it goes, its marker."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["MARKER", "DayPlan", "default_out", "is_built", "marker_text", "validator_ids"]

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


def marker_text(plan: DayPlan) -> str:
    """What the marker of a day built with ``plan`` says."""
    return json.dumps(asdict(plan), sort_keys=True)


def is_built(out: Path, plan: DayPlan) -> bool:
    """Whether ``out`` holds a complete day of this very plan."""
    marker = out / MARKER
    return marker.exists() and marker.read_text(encoding="utf-8") == marker_text(plan)
