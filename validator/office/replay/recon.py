# SPDX-License-Identifier: Apache-2.0
"""Reconciliation across every journal given, taps fed in tap-time order.

- **Unknowns**: a tap whose Close went unanswered is pending on its card serial until the next
  tap of that card, at any validator, that read the card's event log: the lost Close committed
  if the event it appended is in that log (as validator.engine.tap does at one validator, here
  across all of them). The validator's own ``resolves`` is cross-checked when present.
- **Recoveries**: a ``recovered`` tap completes an earlier paid entry of the same card; whether
  that entry is among the journals given is reported.
- **Double debits**: two committed debits of one card within the anti-passback / recovery
  window at one station group are one entry paid twice.

Memory stays bounded: pending unknowns and the debits of the last window only. What is
forgotten depends on each card's own taps and on the replay's clock at them (``clock_of``: the
tap time of the journals merged so far, never going back), never on the other cards' taps: so a
replay that reconciles each card apart (validator.office.cluster) finds exactly the same.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from validator.engine.fares.decide import FareRules
from validator.office.replay.decisions import parse_time
from validator.office.replay.line import ReconTap

DETAIL_LIMIT = 1000


@dataclass(slots=True)
class _Debit:
    time: dt.datetime
    station: int
    where: dict[str, Any]
    units: int


@dataclass
class Reconciler:
    """Unknowns, recoveries and double debits, over taps in time order."""

    rules: FareRules
    unknown_total: int = 0
    unknown_resolved: int = 0
    unknown_committed: int = 0
    disagreements: int = 0
    recoveries: int = 0
    recoveries_matched: int = 0
    unknowns: list[dict[str, Any]] = field(default_factory=list)
    unmatched_recoveries: list[dict[str, Any]] = field(default_factory=list)
    double_debits: list[dict[str, Any]] = field(default_factory=list)
    double_debit_count: int = 0
    _pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _debits: OrderedDict[str, list[_Debit]] = field(default_factory=OrderedDict)

    @functools.cached_property
    def window(self) -> dt.timedelta:
        """How close two debits of one card at one station group must be to be one entry."""
        minutes = max(self.rules.anti_passback_minutes, self.rules.recovery_window_minutes, 1)
        return dt.timedelta(minutes=minutes)

    @functools.cached_property
    def _memory(self) -> dt.timedelta:
        """How long the debits of a card are kept: two windows and a minute."""
        return 2 * self.window + dt.timedelta(minutes=1)

    def feed(self, tap: ReconTap, where: dict[str, Any], clock: dt.datetime | None = None) -> None:
        """One tap in range (``where``: journal file, line, seq, validator); ``clock``: the
        replay's clock at it, non-decreasing from tap to tap (default: the tap's time)."""
        card = tap.card
        horizon = (clock or tap.time) - self._memory
        self._forget_before(horizon)  # other cards: memory only, this card decides below
        debits = self._debits.get(card)
        if debits and debits[-1].time < horizon:
            # The card's own check: what the sweep has not reached yet is forgotten the same.
            del self._debits[card]
        if tap.events and card in self._pending:
            self._resolve(card, tap, where)
        if tap.outcome == "unknown":
            self._unknown(card, tap, where)
        elif tap.outcome == "granted":  # a season pass's entry too (0 units): recoveries match it
            self._debit(card, _Debit(tap.time, tap.station, where, tap.debit))
        elif tap.outcome == "recovered":
            self._recovery(card, tap, where)

    def _unknown(self, card: str, tap: ReconTap, where: dict[str, Any]) -> None:
        self.unknown_total += 1
        item: dict[str, Any] = {
            **where,
            "time": tap.time.isoformat(),
            "card": card,
            "station": tap.station,
            "debit_sent": tap.debit,
            "event_sent": tap.event_sent,
            "resolved": False,
            "committed": None,
            "resolved_by": None,
        }
        self._pending.setdefault(card, []).append(item)
        if len(self.unknowns) < DETAIL_LIMIT:
            self.unknowns.append(item)

    def _resolve(self, card: str, tap: ReconTap, where: dict[str, Any]) -> None:
        for item in self._pending.pop(card):
            committed = item["event_sent"] is not None and item["event_sent"] in tap.events
            item.update(
                resolved=True,
                committed=committed,
                resolved_by={**where, "time": tap.time.isoformat(), "station": tap.station},
            )
            self.unknown_resolved += 1
            if committed:
                self.unknown_committed += 1
                when = dt.datetime.fromisoformat(item["time"])
                origin = {k: item[k] for k in ("validator", "file", "line", "seq")}
                self._debit(card, _Debit(when, item["station"], origin, item["debit_sent"]))
            recorded = tap.resolves
            same_validator = where.get("validator") == item.get("validator")
            if recorded is not None and same_validator and recorded.get("seq") == item["seq"]:
                if bool(recorded.get("committed")) != committed:
                    self.disagreements += 1
                    item["validator_says_committed"] = bool(recorded.get("committed"))

    def _debit(self, card: str, debit: _Debit) -> None:
        earlier = self._debits.setdefault(card, [])
        window = self.window
        span = 2 * window
        earlier[:] = [d for d in earlier if abs(debit.time - d.time) <= span]
        for other in earlier if debit.units > 0 else ():
            if other.units <= 0:
                continue
            minutes = abs(_minute(debit.time) - _minute(other.time))
            if minutes <= window and self.rules.same_group(other.station, debit.station):
                self.double_debit_count += 1
                if len(self.double_debits) < DETAIL_LIMIT:
                    self.double_debits.append(
                        {"card": card, "first": other.where, "second": debit.where}
                        | {"units": [other.units, debit.units]}
                    )
        earlier.append(debit)
        self._debits.move_to_end(card)

    def _recovery(self, card: str, tap: ReconTap, where: dict[str, Any]) -> None:
        self.recoveries += 1
        recent = self._debits.get(card, [])
        if any(self.rules.same_group(d.station, tap.station) for d in recent):
            self.recoveries_matched += 1
        elif len(self.unmatched_recoveries) < DETAIL_LIMIT:
            self.unmatched_recoveries.append({**where, "card": card, "time": tap.time.isoformat()})

    def _forget_before(self, horizon: dt.datetime) -> None:
        while self._debits:
            card, debits = next(iter(self._debits.items()))
            if debits and debits[-1].time >= horizon:
                return
            del self._debits[card]

    def summary(self) -> dict[str, Any]:
        """The reconciliation part of the report."""
        unresolved = [u for u in self.unknowns if not u["resolved"]]
        return {
            "unknown": {
                "total": self.unknown_total,
                "resolved": self.unknown_resolved,
                "committed": self.unknown_committed,
                "not_committed": self.unknown_resolved - self.unknown_committed,
                "unresolved": unresolved,
                "disagreements": self.disagreements,
                "items": self.unknowns,
            },
            "recoveries": {
                "total": self.recoveries,
                "with_paid_entry": self.recoveries_matched,
                "without_paid_entry": self.unmatched_recoveries,
            },
            "double_debits": self.double_debits,
            "double_debit_count": self.double_debit_count,
        }


def clock_of(key: bytes) -> dt.datetime | None:
    """The replay's clock from a merge key (the tap time the journals have reached; None if
    it does not read as a time)."""
    try:
        return parse_time(key.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def _minute(when: dt.datetime) -> dt.datetime:
    return when.replace(second=0, microsecond=0)
