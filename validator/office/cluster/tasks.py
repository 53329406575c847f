# SPDX-License-Identifier: Apache-2.0
"""The work a Dask worker does: one journal chain, then one partition of cards.

``analyse_chain`` reads a chain (validator.office.cluster.sources) and does for it what the
in-process replay does line by line (validator.office.replay.audit): copies set aside, each line
analysed (hash, HMAC, decision, MACs), the chain checked. What reconciliation needs of each tap
is put, with the tap's place in the single-process merge order (``Rank``), into the bucket of
its card; ``reconcile_partition`` reconciles one bucket of every chain in that order.

The merge order: the in-process replay merges the journals by tap time with ``heapq.merge``;
a line's place in it is the highest tap time its journal reached up to it, then the journal's
index, then the line's place in its journal (validator.office.replay.audit.clocked; the merge
of streams that are not sorted picks the same lines as a sort on that highest time).

Keys never travel in the task graph: the options carry the key files' paths, which each worker
reads once (``_analyser``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from calypso.commands.pki import Certificate
from validator.journal.entry import JournalEntry
from validator.journal.reading import JournalSource, RawLine
from validator.office.cluster.sources import (
    ChainSource,
    DbChain,
    FileChain,
    UrlChain,
    read_chain,
    url_quarantined,
)
from validator.office.replay.anchor import Anchor, AnchorCheck
from validator.office.replay.audit import BATCH_LINES
from validator.office.replay.findings import Totals
from validator.office.replay.integrity import ChainChecker
from validator.office.replay.line import Analyser, ChainFacts, Options, ReconTap, tune_gc
from validator.office.replay.pki import PkiAuditor
from validator.office.replay.recon import Reconciler, clock_of

Rank = tuple[bytes, int, int]  # highest tap time so far, journal index, line in the journal
Fact = tuple[Rank, ReconTap, dict[str, Any]]
Where = tuple[str, str, int, int]  # validator, file, line, seq (as Totals.add takes it)
# A PKI tap whose certificate this journal lacked: its rank, entry, date and place.
Lacking = tuple[Rank, JournalEntry, dt.date, Where]
Read = tuple[Rank, Certificate, bytes | str, bytes]  # a certificate first read at this rank


@dataclass(frozen=True, slots=True)
class Spec:
    """What every chain task needs; keys as file paths only (the workers read them)."""

    token: str  # one replay: a worker builds its Analyser once per token
    options: Options  # journal_key None: ``journal_key_file`` names it
    journal_key_file: str | None
    partitions: int
    reconcile: bool
    anchors: tuple[Anchor, ...] = ()


class RemoteChain(ChainChecker):
    """A chain read from object storage: its quarantine files listed by the worker."""

    moved: list[dict[str, Any]]

    def quarantined(self) -> list[dict[str, Any]]:
        """The quarantine files the worker found, then the torn tails."""
        return self.moved + self.torn


@dataclass
class ChainOutcome:
    """What one chain task found (its ``facts`` go to the partitions, the rest to the driver)."""

    chain: ChainChecker
    totals: Totals
    mac_ranks: list[Rank]  # of totals.mac_failures, one each
    difference_ranks: list[Rank]  # of totals.differences
    anchor_ranks: list[Rank]  # of chain.anchors.problems
    lines: int = 0
    seqs: dict[str, tuple[int, int]] = field(default_factory=dict)  # validator: lowest, highest
    unreadable: set[bytes] = field(default_factory=set)  # hashes of lines that are no entry
    facts: list[list[Fact]] = field(default_factory=list)
    # PKI (validator.office.cluster.certificates): the certificates this chain read, the taps
    # that named one it lacked (both kept on the worker), and how many, naming which cards.
    read: list[Read] = field(default_factory=list)
    lacking: list[Lacking] = field(default_factory=list)
    lacked: int = 0
    lacked_cards: set[str] = field(default_factory=set)


_local = threading.local()  # a worker with several threads: one Analyser (one SAM) per thread


def _analyser(spec: Spec) -> Analyser:
    """This thread's Analyser for the run: the key files read here, once per run."""
    cached: tuple[str, Analyser] | None = getattr(_local, "analyser", None)
    if cached is not None and cached[0] == spec.token:
        return cached[1]
    options = spec.options
    if spec.journal_key_file is not None:
        from validator.journal.keyfile import read_journal_key

        options = replace(options, journal_key=read_journal_key(Path(spec.journal_key_file)))
    tune_gc()
    analyser = Analyser(options)
    _local.analyser = (spec.token, analyser)
    return analyser


def partition_of(card: str, partitions: int) -> int:
    """The partition of a card serial (the same on every worker: not Python's salted hash)."""
    return zlib.crc32(card.encode("utf-8", "replace")) % partitions


def _ranked(lines: Iterable[RawLine]) -> Iterator[tuple[Rank, RawLine]]:
    highest = b""
    for ordinal, raw in enumerate(lines):
        highest = max(highest, raw.key)
        raw.key = highest
        yield (highest, raw.journal, ordinal), raw


def analyse_chain(spec: Spec, source: ChainSource) -> ChainOutcome:
    """Read and analyse one chain: integrity, HMACs, decisions, MACs, and the recon facts."""
    analyser = _analyser(spec)
    if analyser.pki is not None:
        # The certificates this journal holds, not those of the chains this worker read before
        # (which would make a tap's verdict depend on where it ran).
        analyser.pki = PkiAuditor(spec.options.pki_roots, noting=True)
    anchors = AnchorCheck(list(spec.anchors)) if spec.anchors else None
    chain = checker(source, anchors)
    out = ChainOutcome(chain, Totals(), [], [], [])
    out.facts = [[] for _ in range(spec.partitions)]
    batch: list[tuple[Rank, RawLine]] = []
    for rank, raw in _ranked(read_chain(source)):
        out.lines += 1
        if raw.duplicate_of:
            chain.duplicate(raw)
            continue
        batch.append((rank, raw))
        if len(batch) >= BATCH_LINES:
            _batch(analyser, spec, batch, out)
            batch = []
    if batch:
        _batch(analyser, spec, batch, out)
    return out


def checker(source: ChainSource, anchors: AnchorCheck | None) -> ChainChecker:
    """A chain's checker; a remote journal's lists its quarantine files, read here."""
    if isinstance(source, FileChain):
        return ChainChecker(source.source, anchors)
    chain = RemoteChain(placeholder(source), anchors)
    chain.moved = url_quarantined(source) if isinstance(source, UrlChain) else []
    return chain


def placeholder(source: UrlChain | DbChain) -> JournalSource:
    """A JournalSource naming a remote journal: its folder and files as URLs, or office:V."""
    if isinstance(source, UrlChain):
        files = tuple(cast(Path, _Named(url)) for url in source.files)
        return JournalSource(source.index, cast(Path, _Named(source.directory)), files, ())
    return JournalSource(source.index, cast(Path, _Named(f"office:{source.validator}")), (), ())


class _Named(str):
    """A folder named by a URL: ``str()`` gives it whole (a Path would fold ``s3://``)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The last part, as ``Path.name``."""
        return self.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _batch(
    analyser: Analyser, spec: Spec, batch: list[tuple[Rank, RawLine]], out: ChainOutcome
) -> None:
    lines = [raw for _, raw in batch]
    result = analyser.batch([raw.data for raw in lines], [(raw.file, raw.line) for raw in lines])
    chain = out.chain
    anchors = chain.anchors
    for (rank, raw), facts in zip(batch, result.chain, strict=True):
        before = len(anchors.problems) if anchors is not None else 0
        chain.feed(raw, facts)
        if anchors is not None and len(anchors.problems) > before:
            out.anchor_ranks.append(rank)
        if facts.seq is not None:
            low, high = out.seqs.get(facts.validator, (facts.seq, facts.seq))
            out.seqs[facts.validator] = (min(low, facts.seq), max(high, facts.seq))
        elif raw.terminated and not raw.too_long:
            out.unreadable.add(hashlib.blake2b(raw.data, digest_size=16).digest())
    where = {(raw.file, raw.line): rank for rank, raw in batch}
    if analyser.pki is not None and (analyser.pki.read or analyser.pki.lacking):
        _noted(analyser.pki, where, result.chain, batch, out)
    totals = result.totals
    out.mac_ranks += [where[(m["file"], m["line"])] for m in totals.mac_failures]
    out.difference_ranks += [where[(d["file"], d["line"])] for d in totals.differences]
    out.totals.merge(totals)  # details beyond a chain's first thousand are never reported
    del out.mac_ranks[len(out.totals.mac_failures) :]
    del out.difference_ranks[len(out.totals.differences) :]
    if not spec.reconcile:
        return
    for tap in result.taps:
        rank, raw = batch[tap.position]
        if raw.terminated:
            seq = result.chain[tap.position].seq
            place = {"validator": tap.validator, "file": raw.file, "line": raw.line, "seq": seq}
            out.facts[partition_of(tap.card, spec.partitions)].append((rank, tap, place))


def _noted(
    auditor: PkiAuditor,
    where: dict[tuple[str, int], Rank],
    chain: list[ChainFacts],
    batch: list[tuple[Rank, RawLine]],
    out: ChainOutcome,
) -> None:
    """Move what the chain's PKI auditor noted in a batch to the outcome, ranked."""
    out.read += [(where[place], which, key, raw) for place, which, key, raw in auditor.read]
    seqs = {(raw.file, raw.line): facts.seq for (_, raw), facts in zip(batch, chain, strict=True)}
    for place, entry, day in auditor.lacking:
        seq = seqs[place] or 0
        out.lacking.append((where[place], entry, day, (entry.validator or "", *place, seq)))
        out.lacked += 1
        if entry.pki is not None and entry.pki.card_certificate is not None:
            out.lacked_cards.add(entry.pki.card_certificate)
    auditor.read, auditor.lacking = [], []


def facts_of(outcome: ChainOutcome, partition: int) -> list[Fact]:
    """One partition's facts of a chain (a small task next to the chain's result)."""
    return outcome.facts[partition]


def summary_of(outcome: ChainOutcome) -> ChainOutcome:
    """A chain's outcome without its recon facts, PKI certificates and taps (what the driver
    gathers)."""
    return replace(outcome, facts=[], read=[], lacking=[])


@dataclass
class PartitionOutcome:
    """One partition reconciled, with the merge place of each detail it kept."""

    recon: Reconciler
    unknown_ranks: list[Rank]
    recovery_ranks: list[Rank]
    double_ranks: list[Rank]


def reconcile_partition(rules: Any, *parts: list[Fact]) -> PartitionOutcome:
    """Reconcile the taps of one partition's cards in the single-process merge order."""
    facts = sorted((fact for part in parts for fact in part), key=lambda fact: fact[0])
    recon = Reconciler(rules)
    out = PartitionOutcome(recon, [], [], [])
    for rank, tap, where in facts:
        sizes = (len(recon.unknowns), len(recon.unmatched_recoveries), len(recon.double_debits))
        recon.feed(tap, where, clock_of(rank[0]))
        out.unknown_ranks += [rank] * (len(recon.unknowns) - sizes[0])
        out.recovery_ranks += [rank] * (len(recon.unmatched_recoveries) - sizes[1])
        out.double_ranks += [rank] * (len(recon.double_debits) - sizes[2])
    return out
