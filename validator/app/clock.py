# SPDX-License-Identifier: Apache-2.0
"""Whether the wall clock can be written onto a card: the dates the card layouts can encode.

A host without an RTC boots in 1970; the demo layout's DateCompact counts days from 2010-01-01
in 16 bits (calypso.layouts.demo), Intercode's EN 1545 dates days from 1997-01-01 in 14 bits
(EN 1545 section 2.1) and its stored-value debit writes a DateCompact too. Outside the range the
gate stays out of service ("clock not set") rather than crash or write a wrong date on a card.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from calypso.en1545.types import COMPACT_EPOCH, EN1545_EPOCH

# Per layout name (validator.engine.layouts.base.build_layouts): the first and last date it can
# encode.
LAYOUT_DATES: dict[str, tuple[dt.date, dt.date]] = {
    "demo": (COMPACT_EPOCH, COMPACT_EPOCH + dt.timedelta(days=0xFFFF)),
    "intercode": (COMPACT_EPOCH, EN1545_EPOCH + dt.timedelta(days=(1 << 14) - 1)),
}
ClockRange = tuple[dt.date, dt.date]


class ClockError(Exception):
    """The clock says a date the configured card layouts cannot encode: it is not set."""


def clock_range(layouts: Iterable[str]) -> ClockRange:
    """The dates every given layout (and the default demo layout) can encode."""
    ranges = [LAYOUT_DATES["demo"], *(LAYOUT_DATES[name] for name in layouts)]
    return max(first for first, _ in ranges), min(last for _, last in ranges)


DEFAULT_RANGE = clock_range(LAYOUT_DATES)  # every layout this release knows


def check_clock(now: dt.datetime, dates: ClockRange = DEFAULT_RANGE) -> None:
    """ClockError unless ``now`` falls within ``dates`` (both ends included)."""
    first, last = dates
    if not first <= now.date() <= last:
        raise ClockError(
            f"clock not set: {now:%Y-%m-%d %H:%M} is outside what the card layouts can "
            f"encode ({first} to {last}); set the time (NTP, timedatectl)"
        )
