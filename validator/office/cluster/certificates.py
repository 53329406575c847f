# SPDX-License-Identifier: Apache-2.0
"""PKI taps whose certificate only another journal holds, verified again once every chain is in.

The in-process replay keeps every certificate any journal read, in merge order
(validator.office.replay.pki): a tap naming a card certificate that another validator read
earlier verifies. A chain task sees one journal; its auditor notes the certificates the chain
read, with the rank of the tap that read each first, and the taps that named one the chain
lacked. The driver then asks every chain for its CA certificates and the card certificates
those taps name (``certificates_for``), keeps the first read of each in merge order
(``Known``), and each chain with such taps verifies them again knowing only what was read
before each tap (``verify_again``): the in-process verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from calypso.commands.pki import Certificate
from calypso.pki.chain import TrustedRoot
from validator.office.cluster.tasks import ChainOutcome, Rank
from validator.office.replay.findings import mac_failure
from validator.office.replay.mac import FAILED, UNVERIFIABLE, MacCheck
from validator.office.replay.pki import PkiAuditor

K = TypeVar("K", bytes, str)


@dataclass
class Known:
    """Certificates by what names them, each with the rank of the tap that read it first."""

    cas: dict[bytes, tuple[Rank, bytes]] = field(default_factory=dict)
    cards: dict[str, tuple[Rank, bytes]] = field(default_factory=dict)

    def add(self, other: Known) -> None:
        """Fold another chain's in, keeping the first read of each certificate."""
        _first_read(self.cas, other.cas)
        _first_read(self.cards, other.cards)


def _first_read(mine: dict[K, tuple[Rank, bytes]], theirs: dict[K, tuple[Rank, bytes]]) -> None:
    for key, found in theirs.items():
        kept = mine.get(key)
        if kept is None or found[0] < kept[0]:
            mine[key] = found


def certificates_for(outcome: ChainOutcome, cards: frozenset[str]) -> Known:
    """The CA certificates a chain read, and its card certificates of ``cards``, ranked."""
    known = Known()
    for rank, which, key, raw in outcome.read:
        if which is Certificate.CA and isinstance(key, bytes):
            known.cas.setdefault(key, (rank, raw))
        elif isinstance(key, str) and key in cards:
            known.cards.setdefault(key, (rank, raw))
    return known


def fold_known(*parts: Known) -> Known:
    """Every chain's certificates in one (a task: the again tasks take its result)."""
    known = Known()
    for part in parts:
        known.add(part)
    return known


class _ReadBefore(PkiAuditor):
    """An auditor that knows the certificates of ``known`` read before ``rank``."""

    def __init__(self, roots: Sequence[TrustedRoot], known: Known) -> None:
        super().__init__(roots)
        self.known = known
        self.rank: Rank = (b"", 0, 0)

    def card_named(self, reference: str) -> bytes | None:
        """The card certificate of that id, if read before the tap."""
        found = self.known.cards.get(reference)
        return found[1] if found is not None and found[0] < self.rank else None

    def ca_named(self, reference: bytes) -> bytes | None:
        """The CA certificate of that reference, if read before the tap."""
        found = self.known.cas.get(reference)
        return found[1] if found is not None and found[0] < self.rank else None


def verify_again(
    outcome: ChainOutcome, known: Known, roots: Sequence[TrustedRoot]
) -> list[tuple[Rank, MacCheck, dict[str, Any] | None]]:
    """A chain's lacking taps verified again in merge order: those no longer unverifiable,
    with the report's detail of each that failed."""
    auditor = _ReadBefore(roots, known)
    changed: list[tuple[Rank, MacCheck, dict[str, Any] | None]] = []
    for rank, entry, day, where in sorted(outcome.lacking, key=lambda tap: tap[0]):
        auditor.rank = rank
        check = auditor.check(entry, day)
        if check.status != UNVERIFIABLE:
            failure = mac_failure(where, entry, check) if check.status == FAILED else None
            changed.append((rank, check, failure))
    return changed
