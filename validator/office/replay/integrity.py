# SPDX-License-Identifier: Apache-2.0
"""Integrity of each journal, line by line in file order: the chain, the sequence, the HMACs.

Every problem is located by file, line and sequence number:

- ``edited``: an entry's hash no longer matches the ``prev`` of the entry after it (the entry
  named was changed after it was written; without a journal key the last entry of a journal
  cannot be checked this way);
- ``missing``: sequence numbers skipped (entries removed), reported with the first missing one;
- ``out_of_order``: a sequence number that goes back (entries duplicated or reordered);
- ``chain_break``: seq 1 that does not start from the genesis hash;
- ``hmac_failure``: the entry's HMAC does not verify with the journal key (or is absent);
- ``overlap``: two journals of one validator hold the same sequence numbers (a copy given
  twice, or two validators configured with one name);
- ``unreadable``: a line that is not a journal entry (a terminated one, even the last: the
  writer writes a line and its newline in one go, so garbage ending with a newline is no crash);
- ``unsettled_intent``: a closing intent followed by another card's record, with no entry of
  its own tap in between nor the unknown tap a restart makes of it (DESIGN section 6: a Close
  that may have committed, with no outcome in the journal).

Closing intents are followed to their tap: the tap's entry (same card) settles an intent, as
does the ``unknown`` tap made of it at start-up (``intent``: its seq), counted apart. Intents
still open at the end of a journal are listed: the validator stopped after them, and its next
start-up journals them as unknown taps.

A torn tail (an unterminated last line, which the writer quarantines at its next start) and the
``quarantine-*`` files the writer made of earlier ones are listed apart: they are crashes the
journal survived, not breaks of the chain (issue 15.3). So are exact copies of a recent line
(``duplicates``: same validator, seq and hash), counted once (issue 15.19).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from validator.journal.intent import INTENT_KIND
from validator.journal.jsonline import loads
from validator.journal.reading import MAX_LINE, JournalSource, RawLine
from validator.journal.writer import GENESIS
from validator.office.replay.anchor import AnchorCheck
from validator.office.replay.findings import DETAIL_LIMIT, Problem
from validator.office.replay.line import ChainFacts


@dataclass
class ChainChecker:
    """The running state of one journal's chain."""

    source: JournalSource
    anchors: AnchorCheck | None = None  # shared by every journal of the replay
    validator: str | None = None  # of the first entry
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)  # the first DETAIL_LIMIT
    counts: dict[str, int] = field(default_factory=dict)  # every problem, by kind
    torn: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # the first DETAIL_LIMIT
    duplicate_count: int = 0
    intents: int = 0  # closing intents read
    intents_settled_at_restart: int = 0  # unknown taps made of an open intent at start-up
    _open: list[tuple[int, str | None, str, int]] = field(default_factory=list)  # seq, card, at
    _prev_hash: str | None = None
    _expected_seq: int | None = None
    _last_file: str = ""
    _last_line: int = 0

    def feed(self, raw: RawLine, result: ChainFacts) -> None:
        """Check one line against the chain so far, then extend the chain with it."""
        if not raw.terminated:
            self.torn.append(  # at most one per file: only a last line can be unterminated
                {
                    "kind": "torn_tail",
                    "file": raw.file,
                    "line": raw.line,
                    "after_seq": self.last_seq,
                    "size": raw.too_long or len(raw.data),
                }
            )
            return
        if raw.too_long:  # never read whole (issue 15.13): hashed while skipped
            detail = f"too long: {raw.too_long} bytes (a journal line is at most {MAX_LINE})"
            self._unreadable(raw, raw.digest, detail)
            return
        if result.seq is None:
            self._unreadable(raw, result.digest, result.error or "not a journal entry")
            return
        seq = result.seq
        if raw.digest:  # the hash of the line as received, kept for a line stored otherwise
            result = result._replace(digest=raw.digest)  # (the office's pseudonymised entries)
        if result.kind != INTENT_KIND:
            self.entries += 1  # tap entries: closing intents are counted apart
        if self.anchors is not None:
            self.anchors.see(result.validator, seq, result.digest, raw.file, raw.line)
        if self.first_seq is None:
            self.first_seq = seq
            self.validator = result.validator
            if seq == 1 and result.prev != GENESIS:
                self._problem("chain_break", raw, seq, "seq 1 does not start from genesis")
        elif self._expected_seq is not None:
            self._link(raw, seq, result.prev)
        if result.hmac_ok is False:
            self._problem("hmac_failure", raw, seq, f"seq {seq}: HMAC missing or wrong")
        if result.malformed:
            self._problem("malformed", raw, seq, f"seq {seq}: {result.error}")
        self._custody(raw, seq, result)
        self._prev_hash = result.digest
        self._expected_seq = seq + 1
        self.last_seq = seq
        self._last_file, self._last_line = raw.file, raw.line

    def _custody(self, raw: RawLine, seq: int, result: ChainFacts) -> None:
        """Follow closing intents to the record that settles them (see the module docstring)."""
        if result.settles is not None:
            self.intents_settled_at_restart += 1
        if result.kind == INTENT_KIND:
            self.intents += 1
            self._unsettled(raw, seq, lambda card: card != result.card)
            self._open.append((seq, result.card, raw.file, raw.line))
            return
        if self._open:
            self._unsettled(raw, seq, lambda card: card != result.card)
            self._open.clear()

    def _unsettled(self, raw: RawLine, seq: int, other: Callable[[str | None], bool]) -> None:
        """Report the open intents of another card than the record at ``seq``: unsettled."""
        kept = []
        for opened, card, file, line in self._open:
            if other(card):
                self._add(
                    Problem(
                        "unsettled_intent",
                        file,
                        line,
                        opened,
                        f"the closing intent seq {opened} (card {card}) is followed by seq "
                        f"{seq} ({raw.file}:{raw.line}), of another card, with no outcome",
                    )
                )
            else:
                kept.append((opened, card, file, line))
        self._open[:] = kept

    def open_intents(self) -> list[dict[str, Any]]:
        """The closing intents no record followed (the journal ends after them)."""
        return [
            {"seq": seq, "card": card, "file": file, "line": line}
            for seq, card, file, line in self._open
        ]

    def duplicate(self, raw: RawLine) -> None:
        """Record a verbatim copy of an earlier line: not a tap, not a break of the chain."""
        self.duplicate_count += 1
        if len(self.duplicates) >= DETAIL_LIMIT:
            return
        try:
            entry = loads(raw.data)
            seq = entry.get("seq") if isinstance(entry, dict) else None
        except ValueError:
            seq = None
        self.duplicates.append(
            {
                "file": raw.file,
                "line": raw.line,
                "seq": seq if isinstance(seq, int) else None,
                "same_as_file": raw.duplicate_file,
                "same_as_line": raw.duplicate_of,
            }
        )

    def _unreadable(self, raw: RawLine, digest: str, detail: str) -> None:
        self._problem("unreadable", raw, None, detail)
        self._prev_hash = digest
        if self._expected_seq is not None:
            self._expected_seq += 1

    def _link(self, raw: RawLine, seq: int, prev: str) -> None:
        expected = self._expected_seq
        assert expected is not None  # noqa: S101 - set with the first entry
        if seq > expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
            self._problem(
                "missing",
                raw,
                expected,
                f"{missing} missing between seq {self.last_seq} "
                f"({self._last_file}:{self._last_line}) and seq {seq}",
            )
        elif seq < expected:
            self._problem("out_of_order", raw, seq, f"seq {seq} after seq {self.last_seq}")
        elif prev != self._prev_hash:
            self._add(
                Problem(
                    "edited",
                    self._last_file,
                    self._last_line,
                    self.last_seq,
                    f"seq {self.last_seq} was changed: its hash does not match the prev of "
                    f"seq {seq} ({raw.file}:{raw.line})",
                )
            )

    def _problem(self, kind: str, raw: RawLine, seq: int | None, detail: str) -> None:
        self._add(Problem(kind, raw.file, raw.line, seq, detail))

    def add(self, problem: Problem) -> None:
        """Record a problem found beyond this journal's own lines (an overlap)."""
        self._add(problem)

    def _add(self, problem: Problem) -> None:
        self.counts[problem.kind] = self.counts.get(problem.kind, 0) + 1
        if len(self.problems) < DETAIL_LIMIT:
            self.problems.append(problem)

    def summary(self) -> dict[str, Any]:
        """The journal's line in the report."""
        return {
            "directory": str(self.source.directory),
            "files": len(self.source.files),
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "intents": self.intents,
            "ok": not self.counts,
        }

    def quarantined(self) -> list[dict[str, Any]]:
        """Torn tails found now, and those the writer already moved to quarantine files."""
        moved = [
            {"kind": "quarantine_file", "file": str(path), "size": path.stat().st_size}
            for path in self.source.quarantine
        ]
        return moved + self.torn


def last_seqs(chains: Sequence[ChainChecker]) -> dict[str, int | None]:
    """The last sequence number held of each validator, over every journal."""
    last: dict[str, int | None] = {}
    for chain in chains:
        if chain.validator is not None and chain.last_seq is not None:
            last[chain.validator] = max(last.get(chain.validator) or 0, chain.last_seq)
    return last


def check_overlaps(chains: Sequence[ChainChecker]) -> None:
    """Report every journal whose sequence numbers another journal of its validator holds."""
    by_validator: dict[str, list[ChainChecker]] = {}
    for chain in chains:
        if chain.validator is not None and chain.first_seq is not None:
            by_validator.setdefault(chain.validator, []).append(chain)
    for validator, group in by_validator.items():
        group.sort(key=lambda c: (c.first_seq or 0, c.last_seq or 0))
        reach = group[0]
        for chain in group[1:]:
            first, last = chain.first_seq or 0, chain.last_seq or 0
            if first <= (reach.last_seq or 0):
                chain.add(
                    Problem(
                        "overlap",
                        str(chain.source.directory),
                        0,
                        first,
                        f"{validator} seq {first}..{min(last, reach.last_seq or 0)} is in two "
                        f"journals: {reach.source.directory} and {chain.source.directory} (a "
                        "copy given twice, or two validators with one name)",
                    )
                )
            if last > (reach.last_seq or 0):
                reach = chain
