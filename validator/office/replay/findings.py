# SPDX-License-Identifier: Apache-2.0
"""What the parts of replay find: the totals of the taps in range and the integrity problems.

Below every other replay module: the per-line analysis counts into Totals, the chain and the
anchors report Problems, and the report gathers both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from validator.journal.entry import JournalEntry
from validator.office.replay.decisions import DecisionCheck, revenue
from validator.office.replay.mac import FAILED, NOT_CHECKED, UNVERIFIABLE, VERIFIED, MacCheck

__all__ = ["DETAIL_LIMIT", "Problem", "Totals", "mac_failure"]

DETAIL_LIMIT = 1000  # failures, differences and problems kept in detail (all are counted)


@dataclass(frozen=True, slots=True)
class Problem:
    """One integrity problem."""

    kind: str
    file: str
    line: int
    seq: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass
class Totals:
    """Counts of every tap in range, with the first DETAIL_LIMIT details worth reading."""

    entries: int = 0
    mac: dict[str, int] = field(
        default_factory=lambda: {VERIFIED: 0, FAILED: 0, UNVERIFIABLE: 0, NOT_CHECKED: 0}
    )
    mac_failures: list[dict[str, Any]] = field(default_factory=list)
    pki: dict[str, int] = field(  # of the MAC figures, the PKI taps' signatures
        default_factory=lambda: {VERIFIED: 0, FAILED: 0, UNVERIFIABLE: 0, NOT_CHECKED: 0}
    )
    decisions: dict[str, int] = field(
        default_factory=lambda: {"same": 0, "different": 0, "not_decided": 0, "not_replayable": 0}
    )
    incomplete: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    revenue: list[int] = field(default_factory=lambda: [0, 0])
    riders: list[int] = field(default_factory=lambda: [0, 0])

    def add(
        self,
        where: tuple[str, str, int, int],
        entry: JournalEntry,
        mac: MacCheck,
        check: DecisionCheck | None,
    ) -> None:
        """Count one tap in range (``where``: validator, file, line, seq)."""
        self.entries += 1
        self.mac[mac.status] += 1
        if mac.pki:
            self.pki[mac.status] += 1
        if mac.status == FAILED and len(self.mac_failures) < DETAIL_LIMIT:
            self.mac_failures.append(mac_failure(where, entry, mac))
        if check is None:
            return
        self.decisions[check.status] += 1
        self.incomplete += check.incomplete
        before, after, riders_before, riders_after = revenue(check)
        self.revenue[0] += before
        self.revenue[1] += after
        self.riders[0] += riders_before
        self.riders[1] += riders_after
        if check.status == "different" and len(self.differences) < DETAIL_LIMIT:
            self.differences.append(
                {
                    **_place(where),
                    "time": entry.tap_time,
                    "card": entry.card,
                    "outcome": entry.outcome,
                    "recorded": check.recorded,
                    "replayed": check.replayed,
                    "recorded_explanation": check.recorded_explanation,
                    "replayed_explanation": check.replayed_explanation,
                }
            )

    def merge(self, other: Totals) -> None:
        """Add another worker's totals (details in order, up to the limit)."""
        self.entries += other.entries
        for key, n in other.mac.items():
            self.mac[key] += n
        for key, n in other.pki.items():
            self.pki[key] += n
        for key, n in other.decisions.items():
            self.decisions[key] += n
        self.incomplete += other.incomplete
        for i in (0, 1):
            self.revenue[i] += other.revenue[i]
            self.riders[i] += other.riders[i]
        room = DETAIL_LIMIT - len(self.mac_failures)
        self.mac_failures.extend(other.mac_failures[: max(room, 0)])
        room = DETAIL_LIMIT - len(self.differences)
        self.differences.extend(other.differences[: max(room, 0)])


def mac_failure(
    where: tuple[str, str, int, int], entry: JournalEntry, mac: MacCheck
) -> dict[str, Any]:
    """The report's detail of a tap whose MAC or signature failed."""
    return {
        **_place(where),
        "card": entry.card,
        "note": mac.note,
        "gate_verified": bool(entry.mac_verified),
    }


def _place(where: tuple[str, str, int, int]) -> dict[str, Any]:
    return dict(zip(("validator", "file", "line", "seq"), where, strict=True))
