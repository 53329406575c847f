# SPDX-License-Identifier: Apache-2.0
"""States and titles built by position equal what ``dataclasses.replace`` would give."""

from __future__ import annotations

import dataclasses
import datetime as dt

from validator.engine.layouts.states import with_counter, with_sv_balance, with_titles
from validator.engine.ticketing.model import (
    CardEnvironment,
    CardState,
    Counter,
    CounterUnit,
    Title,
    TitleKind,
    TitleStatus,
    Transition,
    Validation,
)

DAY = dt.date(2026, 3, 2)
TITLE = Title(  # every field away from its default, so that a field left out shows
    3, 0x1234, "250901", TitleKind.TRIPS, 2, TitleStatus.BLOCKED, "stolen", DAY, dt.time(6),
    DAY, dt.time(23), frozenset({1, 2}), 10, 2, Counter(1, CounterUnit.JOURNEYS, 4), "odd",
)  # fmt: skip
STATE = CardState(
    b"\x01" * 8,
    CardEnvironment(DAY, "250901", 7, None),
    (Validation(dt.datetime(2026, 3, 2, 8), 101, 3, Transition.INTERCHANGE, False, "x", None),),
    (TITLE,),
    False,
    False,
    55,
)


def test_with_counter_is_replace() -> None:
    """with_counter changes the counter and keeps every other field of the title."""
    counter = Counter(2, CounterUnit.AMOUNT, 9, (3, 4))
    assert with_counter(TITLE, counter) == dataclasses.replace(TITLE, counter=counter)


def test_with_sv_balance_and_titles_are_replace() -> None:
    """with_sv_balance and with_titles change their field and keep every other one."""
    assert with_sv_balance(STATE, 12) == dataclasses.replace(STATE, sv_balance=12)
    assert with_titles(STATE, ()) == dataclasses.replace(STATE, titles=())
    assert with_titles(STATE, (), True) == dataclasses.replace(STATE, titles=(), listed=True)
