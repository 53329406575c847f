# SPDX-License-Identifier: Apache-2.0
"""The driver's side: chain and partition outcomes merged into the in-process ``ReplayReport``.

Counts add up; the details the report keeps (the first thousand of each kind) are taken in the
single-process merge order from each chain's or partition's first thousand, which hold them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from validator.engine.fares.decide import FareRules
from validator.journal.reading import ReplayInputError
from validator.office.cluster.tasks import ChainOutcome, PartitionOutcome, Rank
from validator.office.replay.anchor import Anchor, AnchorCheck
from validator.office.replay.findings import DETAIL_LIMIT, Totals
from validator.office.replay.integrity import check_overlaps, last_seqs
from validator.office.replay.mac import UNVERIFIABLE, MacCheck
from validator.office.replay.recon import Reconciler
from validator.office.replay.report import ReplayReport

T = TypeVar("T")


class ClusterReplayError(ReplayInputError):
    """Input a cluster replay cannot reproduce exactly (exit code 2, like bad input)."""


def first_in_order(
    parts: Sequence[tuple[Sequence[Rank], Sequence[T]]], limit: int | None = DETAIL_LIMIT
) -> list[T]:
    """The details of every part in merge order (ranks beside them), the first ``limit``."""
    ranked = [
        (rank, n, item)
        for ranks, items in parts
        for n, (rank, item) in enumerate(zip(ranks, items, strict=True))
    ]
    ranked.sort(key=lambda found: (found[0], found[1]))
    return [item for _, _, item in ranked[:limit]]


def refuse_copies(outcomes: Sequence[ChainOutcome]) -> None:
    """Refuse journals holding the same lines: the in-process replay counts such a copy once.

    It recognises a line repeated across journals in its merged stream; a cluster reads each
    journal apart. A copy either repeats an entry (same validator, overlapping sequence numbers)
    or a line that is no entry; both are found here before anything is reported.
    """
    seen: dict[str, list[tuple[int, int, str]]] = {}
    lines: dict[bytes, str] = {}
    for outcome in outcomes:
        name = str(outcome.chain.source.directory)
        for validator, (low, high) in outcome.seqs.items():
            for other_low, other_high, other in seen.get(validator, []):
                if low <= other_high and other_low <= high:
                    raise ClusterReplayError(
                        f"{other} and {name} both hold {validator} seq "
                        f"{max(low, other_low)}..{min(high, other_high)} (a copy given twice?): "
                        "replay them in-process, which recognises copies across journals"
                    )
            seen.setdefault(validator, []).append((low, high, name))
        for digest in outcome.unreadable:
            other = lines.setdefault(digest, name)
            if other != name:
                raise ClusterReplayError(
                    f"{other} and {name} hold the same unreadable line: replay them in-process, "
                    "which recognises copies across journals"
                )


def merge_anchors(anchors: Sequence[Anchor], outcomes: Sequence[ChainOutcome]) -> AnchorCheck:
    """One AnchorCheck for every journal: each anchor as the chain holding it saw it."""
    merged = AnchorCheck(list(anchors))
    parts = []
    for outcome in outcomes:
        check = outcome.chain.anchors
        if check is None:
            continue
        for anchor, status in check._status.items():  # noqa: SLF001 - the same module's state
            if status != "truncated":
                merged._status[anchor] = status  # noqa: SLF001
        parts.append((outcome.anchor_ranks, check.problems))
        outcome.chain.anchors = merged
    for problem in first_in_order(parts, None):  # the anchors keep every problem
        merged._add(problem)  # noqa: SLF001
    return merged


class TotalsFold:
    """Every chain's totals added as it arrives; only the first DETAIL_LIMIT details of each
    kind in merge order are kept, so the driver's memory does not grow with the chains."""

    def __init__(self) -> None:
        self.totals = Totals()
        self._mac: list[tuple[Rank, dict[str, Any]]] = []
        self._differences: list[tuple[Rank, dict[str, Any]]] = []

    def add(self, outcome: ChainOutcome) -> None:
        """Fold one chain's totals in; its details move here (the outcome keeps none)."""
        counts = outcome.totals
        self._mac = _first(self._mac, outcome.mac_ranks, counts.mac_failures)
        self._differences = _first(self._differences, outcome.difference_ranks, counts.differences)
        counts.mac_failures, counts.differences = [], []
        outcome.mac_ranks, outcome.difference_ranks = [], []
        self.totals.merge(counts)

    def verified_again(self, rank: Rank, check: MacCheck, failure: dict[str, Any] | None) -> None:
        """A PKI tap its chain left unverifiable, verified again with every journal's
        certificates (validator.office.cluster.certificates): counted as it came out."""
        for counts in (self.totals.mac, self.totals.pki):
            counts[UNVERIFIABLE] -= 1
            counts[check.status] += 1
        if failure is not None:
            self._mac = _first(self._mac, [rank], [failure])

    def result(self) -> Totals:
        """The totals of every chain folded, their details in merge order."""
        self.totals.mac_failures = [item for _, item in self._mac]
        self.totals.differences = [item for _, item in self._differences]
        return self.totals


def _first(
    kept: list[tuple[Rank, T]], ranks: Sequence[Rank], items: Sequence[T]
) -> list[tuple[Rank, T]]:
    """``kept`` and the new ranked items, the first DETAIL_LIMIT by rank (one detail per line:
    ranks are unique)."""
    merged = kept + list(zip(ranks, items, strict=True))
    merged.sort(key=lambda found: found[0])
    return merged[:DETAIL_LIMIT]


def merge_recon(rules: FareRules, partitions: Sequence[PartitionOutcome]) -> Reconciler:
    """One Reconciler holding every partition's counts, its details in merge order."""
    recon = Reconciler(rules)
    for part in partitions:
        other = part.recon
        recon.unknown_total += other.unknown_total
        recon.unknown_resolved += other.unknown_resolved
        recon.unknown_committed += other.unknown_committed
        recon.disagreements += other.disagreements
        recon.recoveries += other.recoveries
        recon.recoveries_matched += other.recoveries_matched
        recon.double_debit_count += other.double_debit_count
    recon.unknowns = first_in_order([(p.unknown_ranks, p.recon.unknowns) for p in partitions])
    recon.unmatched_recoveries = first_in_order(
        [(p.recovery_ranks, p.recon.unmatched_recoveries) for p in partitions]
    )
    recon.double_debits = first_in_order(
        [(p.double_ranks, p.recon.double_debits) for p in partitions]
    )
    return recon


def merge_report(
    outcomes: Sequence[ChainOutcome],
    partitions: Sequence[PartitionOutcome] | None,
    *,
    totals: Totals,
    rules: FareRules | None,
    anchors: Sequence[Anchor],
    fares_label: str | None,
    mac_checked: bool,
    authenticated: bool,
) -> ReplayReport:
    """The report the in-process replay gives on the same journals (``seconds`` left at 0);
    ``totals``: every chain's, folded as they came (``TotalsFold``)."""
    refuse_copies(outcomes)
    chains = [outcome.chain for outcome in outcomes]
    check = merge_anchors(anchors, outcomes) if anchors else None
    recon = merge_recon(rules, partitions) if partitions is not None and rules else None
    report = ReplayReport(totals, chains, recon, fares_label, mac_checked)
    report.authenticated = authenticated
    report.anchors = check
    report.lines = sum(outcome.lines for outcome in outcomes)
    check_overlaps(chains)
    if check is not None:
        check.finish(last_seqs(chains))
    return report


def cluster_section(
    workers: int, scheduler: str, tasks: int, retried: int | None, peak: int | None
) -> dict[str, Any]:
    """The report's ``cluster`` part (the benchmark reads ``retried`` and the peak RSS);
    ``retried`` None: not counted (a scheduler without this package)."""
    return {
        "workers": workers,
        "scheduler": scheduler,
        "tasks": tasks,
        "retried": retried,
        "peak_worker_rss_bytes": peak,
    }
