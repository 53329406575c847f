# SPDX-License-Identifier: Apache-2.0
"""Integrity check of a journal: hash chain, sequence, HMAC, unreadable lines, quarantine.

Closing intents (validator.journal.intent) are chained and HMACed like tap entries and checked
alike; they are counted apart (``intents``), so that ``entries`` counts the taps.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

from validator.journal.intent import INTENT_KIND
from validator.journal.writer import (
    GENESIS,
    QUARANTINE_PREFIX,
    entry_mac,
    journal_files,
    line_hash,
    read_entries,
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One integrity problem, located."""

    kind: str  # chain_break, seq_gap, hmac_failure, unreadable
    file: str
    line: int
    detail: str


@dataclass
class VerifyReport:
    """The outcome of a journal check."""

    entries: int = 0  # tap entries
    intents: int = 0  # closing intents
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)
    quarantine_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is whole: no problem found."""
        return not self.problems

    def count(self, kind: str) -> int:
        """How many problems of one kind."""
        return sum(1 for p in self.problems if p.kind == kind)


def verify_journal(directory: Path, *, key: bytes | None = None) -> VerifyReport:
    """Walk every entry of a journal directory and report what does not chain or verify."""
    report = VerifyReport()
    report.quarantine_files = sorted(str(p) for p in directory.glob(f"{QUARANTINE_PREFIX}*"))
    expected_prev: str | None = None
    expected_seq: int | None = None
    for path, number, line in read_entries(journal_files(directory)):
        try:
            entry = json.loads(line)
            seq = int(entry["seq"])
            prev = str(entry["prev"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            report.problems.append(Problem("unreadable", str(path), number, "not a journal entry"))
            expected_prev = line_hash(line)
            continue
        if entry.get("kind") == INTENT_KIND:
            report.intents += 1
        else:
            report.entries += 1
        if report.first_seq is None:
            report.first_seq = seq
            if prev != GENESIS and seq == 1:
                report.problems.append(
                    Problem("chain_break", str(path), number, "seq 1 not genesis")
                )
        elif expected_prev is not None and prev != expected_prev:
            report.problems.append(
                Problem("chain_break", str(path), number, f"seq {seq}: prev does not match")
            )
        if expected_seq is not None and seq != expected_seq:
            report.problems.append(
                Problem("seq_gap", str(path), number, f"expected seq {expected_seq}, got {seq}")
            )
        if key is not None:
            mac = entry.get("hmac")
            if not isinstance(mac, str) or not hmac.compare_digest(mac, entry_mac(key, entry)):
                report.problems.append(Problem("hmac_failure", str(path), number, f"seq {seq}"))
        expected_prev = line_hash(line)
        expected_seq = seq + 1
        report.last_seq = seq
    return report
