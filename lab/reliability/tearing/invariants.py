# SPDX-License-Identifier: Apache-2.0
"""The tear sweep's invariants, as a pure check of one torn history.

A history is what happened to one card around one tear point: the taps before the swept one,
the torn tap, the tap again 15 s later (same validator, same station group, or another
station), the tap back at A past every window; the card's image right after the tear; what the
same tap takes and grants untorn; and every validator's journal. ``check`` returns one line per
broken promise and is fed fabricated histories by the tests, so it is known to fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from validator.engine.fares.decide import FareRules
from validator.journal.entry import JournalEntry

OPENS_GATE = ("granted", "recovered")


@dataclass(frozen=True)
class Tap:
    """One tap as the sweep saw it (the processor's record, reduced)."""

    validator: str
    station: int
    at: dt.datetime
    outcome: str
    mac_verified: bool
    debit: int  # value units this tap takes from the card if its session(s) committed
    event: bool  # it sent an event record
    seq: int | None = None  # its journal sequence number at its validator


@dataclass
class History:
    """One tear point, end to end (see the module docstring)."""

    label: str
    taps: list[Tap]
    torn: int  # index of the torn tap in ``taps``; the retry follows it, then the final tap
    paid: int  # value units the card lost over the whole history
    before: frozenset[Any]  # the card image just before the torn tap
    after: frozenset[Any]  # the card image just after it
    allowed: Sequence[frozenset[Any]]  # before, then the image after each Close of the untorn tap
    untorn_debit: int  # what the untorn tap takes
    untorn_opens: bool  # whether the untorn tap opens the gate
    journals: Mapping[str, list[JournalEntry]] = field(default_factory=dict)
    journal_problems: Mapping[str, list[str]] = field(default_factory=dict)


def _resolutions(journals: Mapping[str, list[JournalEntry]]) -> dict[tuple[str, int], bool]:
    """(validator, seq of an unknown tap) -> whether the card had committed it."""
    found: dict[tuple[str, int], bool] = {}
    for name, entries in journals.items():
        for entry in entries:
            if entry.resolves is not None:
                found[(name, entry.resolves.seq)] = entry.resolves.committed
    return found


def committed(tap: Tap, resolutions: Mapping[tuple[str, int], bool]) -> bool:
    """Whether the tap's writes reached the card, as the validators know it."""
    if tap.outcome in OPENS_GATE:
        return True
    if tap.outcome == "unknown" and tap.seq is not None:
        return resolutions.get((tap.validator, tap.seq), False)
    return False


def _minutes(earlier: dt.datetime, later: dt.datetime) -> int:
    """Whole minutes between two taps' minutes (card times are to the minute)."""
    step = dt.timedelta(minutes=1)
    return (
        later.replace(second=0, microsecond=0) - earlier.replace(second=0, microsecond=0)
    ) // step


def check(history: History, rules: FareRules) -> list[str]:
    """Every broken promise of one torn history, one line each (empty when all hold)."""
    problems: list[str] = []
    taps, torn = history.taps, history.taps[history.torn]
    resolutions = _resolutions(history.journals)
    # The card is the old image or a new one, never a mix (each session atomic on its own).
    if history.after not in history.allowed:
        changed = sorted(k for k, _ in history.after - history.before)
        problems.append(f"card image after the tear is neither old nor new (cells {changed})")
    # No gate opening without a verified card MAC: on what the processor said and the journals.
    for tap in taps:
        if tap.outcome in OPENS_GATE and not tap.mac_verified:
            problems.append(f"{tap.validator}: {tap.outcome} without a verified card MAC")
    for name, entries in history.journals.items():
        for entry in entries:
            if entry.outcome in OPENS_GATE and entry.mac_verified is not True:
                problems.append(f"journal {name} seq {entry.seq}: gate without MAC")
    # Every unknown resolved (by the end the card came back to each validator that lost it).
    for name, entries in history.journals.items():
        for entry in entries:
            if entry.outcome == "unknown" and (name, entry.seq) not in resolutions:
                problems.append(f"journal {name}: unknown seq {entry.seq} never resolved")
    # A resolution tells the truth: the card changed exactly when it says the tap committed.
    if torn.outcome == "unknown" and torn.seq is not None and torn.debit + torn.event:
        said = resolutions.get((torn.validator, torn.seq))
        if said is not None and said != (history.after != history.before):
            problems.append(f"unknown resolved as committed={said} but the card says otherwise")
    # One debit per entry: the card lost exactly what granted and committed-unknown taps took.
    counted = 0
    for tap in taps:
        if tap.outcome == "recovered" and tap.debit:
            problems.append(f"{tap.validator}: a recovery debited {tap.debit}")
        if tap.outcome != "recovered" and committed(tap, resolutions):
            counted += tap.debit
    if history.paid != counted:
        problems.append(
            f"the card lost {history.paid} units, granted and committed taps took {counted}"
        )
    retry = taps[history.torn + 1]
    if rules.same_group(torn.station, retry.station):
        pair = [torn, retry]
        took = sum(t.debit for t in pair if t.outcome != "recovered" and committed(t, resolutions))
        if took != history.untorn_debit:
            problems.append(
                f"same group: the entry took {took} units, untorn {history.untorn_debit}"
            )
        if history.untorn_opens and not any(t.outcome in OPENS_GATE for t in pair):
            problems.append("same group: the entry never opened the gate")
    if not history.untorn_opens and torn.outcome in OPENS_GATE:
        problems.append(f"torn tap {torn.outcome} where the untorn tap is refused")
    problems += _recoveries(taps, resolutions, rules)
    for name, found in history.journal_problems.items():
        problems += [f"journal {name} does not verify: {p}" for p in found]
    return [f"{history.label}: {p}" for p in problems]


def _recoveries(
    taps: Sequence[Tap], resolutions: Mapping[tuple[str, int], bool], rules: FareRules
) -> list[str]:
    """Each recovery completes an event committed in the same station group inside the window."""
    problems = []
    for number, tap in enumerate(taps):
        if tap.outcome != "recovered":
            continue
        earlier = [t for t in taps[:number] if t.event and committed(t, resolutions)]
        if not earlier:
            problems.append(f"{tap.validator}: recovered with no earlier validation on the card")
            continue
        last = earlier[-1]
        if not rules.same_group(last.station, tap.station):
            problems.append(f"{tap.validator}: recovered a validation made at {last.station}")
        minutes = _minutes(last.at, tap.at)
        if not 0 <= minutes <= rules.recovery_window_minutes:
            problems.append(f"{tap.validator}: recovered {minutes} min after the validation")
    return problems
