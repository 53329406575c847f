# SPDX-License-Identifier: Apache-2.0
"""Offline replay of tap journals for the back office (DESIGN section 8).

The journals are streamed, merged by tap time, and cut into batches. Each line is analysed on
its own (hash, parse, HMAC, decision replayed, MACs recomputed: validator.office.replay.line),
in this process or, with ``jobs`` > 1, in worker processes; the results come back in order, and this
process checks each journal's chain (validator.office.replay.integrity), reconciles unknowns,
recoveries and double debits across journals (validator.office.replay.recon) and keeps the totals
(validator.office.replay.report). Memory is bounded: a few batches in flight, the reconciliation
window, and at most a thousand details of each kind.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from validator.engine.fares.decide import FareRules
from validator.journal.reading import JournalSource, RawLine, RecentLines, discover, merged
from validator.office.replay.anchor import Anchor, AnchorCheck
from validator.office.replay.findings import Totals
from validator.office.replay.integrity import ChainChecker, check_overlaps, last_seqs
from validator.office.replay.line import (
    Analyser,
    BatchResult,
    Options,
    analyse_batch,
    init_worker,
    tune_gc,
)
from validator.office.replay.mac import MacChecker
from validator.office.replay.recon import Reconciler, clock_of
from validator.office.replay.report import ReplayReport

BATCH_LINES = 512
Progress = Callable[[int], None]  # called with the bytes read since the last call


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay and how."""

    paths: Sequence[Path]
    options: Options
    fares_label: str | None = None  # how the report names the rules ("in force", a file)
    recon_rules: FareRules | None = None  # windows and station groups for reconciliation
    macs: MacChecker | None = None  # over a real SAM (then one process only)
    jobs: int = 1
    reconcile: bool = True
    anchors: tuple[Anchor, ...] = ()  # published heads (``--anchor``)


def total_bytes(paths: Sequence[Path]) -> int:
    """Bytes a replay of ``paths`` will read (for a progress bar)."""
    return sum(source.size for source in discover(paths))


def _counted_once(
    lines: Iterable[RawLine],
    chains: Sequence[ChainChecker],
    report: ReplayReport,
    progress: Progress | None,
) -> Iterator[RawLine]:
    """The lines to analyse: a verbatim copy of a recent line is recorded, not analysed.

    Each journal flags copies of its own lines; the lines merged by tap time also catch the
    same journal given twice (its copies then lie side by side), whatever their folders.
    """
    recent = RecentLines()
    for raw in lines:
        if not raw.duplicate_of and raw.terminated and not raw.too_long:
            earlier = recent.seen(raw.data, raw.file, raw.line)
            if earlier is not None:
                raw.duplicate_file, raw.duplicate_of = earlier
        if raw.duplicate_of:
            chains[raw.journal].duplicate(raw)
            report.lines += 1
            if progress is not None:
                progress(len(raw.data) + 1)
            continue
        yield raw


def clocked(lines: Iterable[RawLine], journals: int) -> Iterator[RawLine]:
    """The merged lines, each ``key`` raised to the highest of its journal so far.

    The merge took the keys already; the raised key is the reconciliation's clock, which never
    goes back along the merge (a journal whose clock stepped back keeps its highest time), and
    which a replay that reconciles each card apart computes from the card's own lines
    (validator.office.cluster): both forget old debits alike.
    """
    highest = [b""] * journals
    for raw in lines:
        top = highest[raw.journal]
        if raw.key < top:
            raw.key = top
        else:
            highest[raw.journal] = raw.key
        yield raw


def _batches(lines: Iterable[RawLine]) -> Iterator[list[RawLine]]:
    batch: list[RawLine] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= BATCH_LINES:
            yield batch
            batch = []
    if batch:
        yield batch


Analysed = Iterator[tuple[list[RawLine], BatchResult]]


def _job(batch: list[RawLine]) -> tuple[list[bytes], list[tuple[str, int]]]:
    return [raw.data for raw in batch], [(raw.file, raw.line) for raw in batch]


def _inline(request: ReplayRequest, batches: Iterator[list[RawLine]]) -> Analysed:
    analyser = Analyser(request.options, request.macs)
    for batch in batches:
        yield batch, analyser.batch(*_job(batch))


def _parallel(request: ReplayRequest, batches: Iterator[list[RawLine]]) -> Analysed:
    window: deque[tuple[list[RawLine], Future[BatchResult]]] = deque()
    with ProcessPoolExecutor(
        request.jobs, initializer=init_worker, initargs=(request.options,)
    ) as pool:
        for batch in batches:
            window.append((batch, pool.submit(analyse_batch, *_job(batch))))
            if len(window) >= 3 * request.jobs:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


def replay(request: ReplayRequest, progress: Progress | None = None) -> ReplayReport:
    """Replay every journal under ``request.paths`` and report."""
    sources = discover(request.paths)
    return replay_lines(request, sources, merged(sources), progress)


def replay_lines(
    request: ReplayRequest,
    sources: Sequence[JournalSource],
    lines: Iterable[RawLine],
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay ``lines`` (each naming its journal by its index in ``sources``) and report.

    ``request.paths`` is not read: the lines come from files (``replay``) or from the office
    database (validator.office.database.reports), in each journal's order.
    """
    start = time.perf_counter()
    anchors = AnchorCheck(list(request.anchors)) if request.anchors else None
    chains = [ChainChecker(source, anchors) for source in sources]
    recon_rules = request.recon_rules or request.options.rules
    recon = None
    if request.reconcile and request.options.taps and recon_rules is not None:
        recon = Reconciler(recon_rules)
    options = request.options
    checked = options.keys is not None or request.macs is not None or bool(options.pki_roots)
    report = ReplayReport(Totals(), chains, recon, request.fares_label, checked)
    report.authenticated = request.options.journal_key is not None
    report.anchors = anchors
    batches = _batches(_counted_once(clocked(lines, len(sources)), chains, report, progress))
    # One process with a real SAM, or with PKI roots: certificates are journaled once, so
    # PKI taps are verified in journal order by one auditor.
    parallel = request.jobs > 1 and request.macs is None and not options.pki_roots
    thresholds = gc.get_threshold()
    tune_gc()
    try:
        results = _parallel(request, batches) if parallel else _inline(request, batches)
        for batch, analysed in results:
            for raw, facts in zip(batch, analysed.chain, strict=True):
                chains[raw.journal].feed(raw, facts)
            report.totals.merge(analysed.totals)
            if recon is not None:
                for tap in analysed.taps:
                    raw = batch[tap.position]
                    if raw.terminated:
                        where = {"validator": tap.validator, "file": raw.file, "line": raw.line}
                        where["seq"] = analysed.chain[tap.position].seq
                        recon.feed(tap, where, clock_of(raw.key))
            report.lines += len(batch)
            if progress is not None:
                progress(sum(len(raw.data) + 1 for raw in batch))
    finally:
        gc.set_threshold(*thresholds)
    check_overlaps(chains)
    if anchors is not None:
        anchors.finish(last_seqs(chains))
    report.seconds = time.perf_counter() - start
    return report
