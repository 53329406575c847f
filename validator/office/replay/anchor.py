# SPDX-License-Identifier: Apache-2.0
"""Anchored heads: what a journal held when its head was published outside the host.

An anchor is ``validator:seq:sha256`` (or the JSON that ``validator journal-head`` prints, one
object, a list of them, or one per line). Replay and export check every entry against the
anchors of its validator and sequence number:

- ``anchor_mismatch``: the entry at an anchored seq has another hash (the chain was edited and
  recomputed, or the anchored entry rewritten);
- ``truncated``: an anchored seq is in no journal given (the tail was removed).

Without a journal key these are the only checks that see a rewritten tail (issue 15.3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from validator.office.replay.findings import Problem

_SPEC = re.compile(r"^(?P<validator>.*):(?P<seq>[0-9]+):(?P<hash>[0-9a-fA-F]{64})$")
MAX_ANCHOR_FILE = 16 * 1024 * 1024  # a file of heads, not a journal


class AnchorError(ValueError):
    """An ``--anchor`` that is neither ``validator:seq:sha256`` nor a file of heads (exit 2)."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """One published head."""

    validator: str
    seq: int
    hash: str


def _from_head(head: Any, where: str) -> Anchor:
    if not isinstance(head, dict):
        raise AnchorError(f"{where}: a head must be an object with validator, seq and hash")
    try:
        validator, seq, digest = str(head["validator"]), head["seq"], str(head["hash"])
    except KeyError as exc:
        raise AnchorError(f"{where}: a head without {exc}") from None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise AnchorError(f"{where}: seq must be a positive integer")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise AnchorError(f"{where}: hash must be 64 hex digits (SHA-256)")
    return Anchor(validator, seq, digest.lower())


def _from_file(path: Path) -> list[Anchor]:
    try:
        if not path.is_file() or path.stat().st_size > MAX_ANCHOR_FILE:
            raise AnchorError(f"{path}: not a regular file of heads (at most 16 MiB)")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorError(f"{path}: unreadable ({exc})") from None
    try:
        document: Any = json.loads(text)
        heads = document if isinstance(document, list) else [document]
    except (ValueError, RecursionError):  # JSON Lines: one head per line
        try:
            heads = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (ValueError, RecursionError):
            raise AnchorError(f"{path}: not JSON heads (as journal-head prints)") from None
    return [_from_head(head, str(path)) for head in heads]


def parse_anchors(values: tuple[str, ...] | list[str]) -> list[Anchor]:
    """Anchors from ``--anchor`` values: ``validator:seq:sha256`` or a JSON file of heads."""
    anchors: list[Anchor] = []
    for value in values:
        match = _SPEC.match(value)
        if match is not None and not Path(value).exists():
            head = {**match.groupdict(), "seq": int(match["seq"])}
            anchors.append(_from_head(head, value))
        elif Path(value).exists():
            anchors.extend(_from_file(Path(value)))
        else:
            raise AnchorError(f"{value!r}: neither validator:seq:sha256 nor a file of heads")
    return anchors


@dataclass
class AnchorCheck:
    """Every anchor, and whether the journals given hold its entry."""

    anchors: list[Anchor]
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    _by_place: dict[tuple[str, int], Anchor] = field(default_factory=dict)
    _status: dict[Anchor, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for anchor in self.anchors:
            self._by_place[(anchor.validator, anchor.seq)] = anchor
            self._status[anchor] = "truncated"

    def see(self, validator: str, seq: int, digest: str, file: str, line: int) -> None:
        """Check one entry against the anchor at its validator and seq, if any."""
        anchor = self._by_place.get((validator, seq))
        if anchor is None:
            return
        if digest == anchor.hash:
            self._status[anchor] = "matched"
            return
        self._status[anchor] = "mismatch"
        self._add(
            Problem(
                "anchor_mismatch",
                file,
                line,
                seq,
                f"{validator} seq {seq}: hash {digest[:16]}... is not the anchored "
                f"{anchor.hash[:16]}... (the chain was edited and recomputed)",
            )
        )

    def finish(self, last_seq: dict[str, int | None]) -> None:
        """Report every anchored entry no journal held (``last_seq``: by validator)."""
        for anchor in self.anchors:
            if self._status[anchor] != "truncated":
                continue
            last = last_seq.get(anchor.validator)
            held = f"the journal ends at seq {last}" if last is not None else "no journal of it"
            self._add(
                Problem(
                    "truncated",
                    "",
                    0,
                    anchor.seq,
                    f"{anchor.validator} seq {anchor.seq} was anchored but is missing: {held}",
                )
            )

    def _add(self, problem: Problem) -> None:
        self.counts[problem.kind] = self.counts.get(problem.kind, 0) + 1
        self.problems.append(problem)

    def summary(self) -> list[dict[str, Any]]:
        """Each anchor and what became of it: matched, mismatch or truncated."""
        return [
            {"validator": a.validator, "seq": a.seq, "hash": a.hash, "status": self._status[a]}
            for a in self.anchors
        ]
