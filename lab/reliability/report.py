# SPDX-License-Identifier: Apache-2.0
"""What a campaign part reports, and the summary table of the whole campaign."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

Log = Callable[[str], None]


class Level(Enum):
    """How big a campaign run is: the full campaign, ``QUICK=1``, or the default test run."""

    FULL = "full"
    QUICK = "quick"
    SMOKE = "smoke"

    def pick(self, full: int, quick: int, smoke: int) -> int:
        """The size that goes with this level."""
        return {Level.FULL: full, Level.QUICK: quick, Level.SMOKE: smoke}[self]


@dataclass
class PartResult:
    """One part's outcome: what it tried, what broke, and the invariant violations it found.

    ``violations`` lists one line per broken invariant (empty when the part passed); ``broke``
    says in a few words what failed on purpose or by accident (tears, crashes, refused inputs);
    ``figures`` carries the part's measured numbers for the JSON report.
    """

    part: str
    tried: str
    broke: str
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    figures: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The part as one JSON-ready object."""
        return {
            "part": self.part,
            "tried": self.tried,
            "broke": self.broke,
            "violations": len(self.violations),
            "violation_details": self.violations,
            "seconds": round(self.seconds, 1),
            "figures": self.figures,
        }


def format_table(results: Sequence[PartResult]) -> str:
    """The campaign summary: one row per part, then ``violations: N``."""
    header = ("part", "tried", "broke", "violations", "time")
    rows = [
        (r.part, r.tried, r.broke, str(len(r.violations)), f"{r.seconds:.0f} s") for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        lines.extend(f"! {r.part}: {v}" for v in r.violations)
    lines.append(f"violations: {sum(len(r.violations) for r in results)}")
    return "\n".join(lines)
