# SPDX-License-Identifier: Apache-2.0
"""Running a replay on Dask: the cluster (local or given), the task graph, what it cost.

``--workers N`` starts a LocalCluster of N processes of one thread each (the replay is pure
Python: threads would share one interpreter lock); ``--scheduler tcp://HOST:PORT`` uses a running
cluster, whose workers (and scheduler) have this package and its ``cluster`` extra installed.

A worker that dies mid-run is replaced (the nanny restarts it) and the scheduler runs its tasks
again, as it does a task that raised (``retries``); ``RetryCounter`` counts how many runs of the
replay's tasks were such second runs, for the report's ``cluster`` part.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import SchedulerPlugin

from calypso.pki.chain import TrustedRoot
from validator.office.cluster.certificates import certificates_for, fold_known, verify_again
from validator.office.cluster.inputs import Inputs
from validator.office.cluster.merge import TotalsFold, cluster_section, merge_report
from validator.office.cluster.tasks import (
    ChainOutcome,
    Spec,
    analyse_chain,
    facts_of,
    reconcile_partition,
    summary_of,
)
from validator.office.replay.audit import ReplayRequest
from validator.office.replay.report import ReplayReport

log = logging.getLogger(__name__)
# Reconciliation partitions: twice the workers, so a slow one is evened out, and at most this
# many: reconciling is light next to analysing chains, and each chain sends one small task to
# each partition (chains x partitions tasks).
MAX_PARTITIONS = 16
RETRIES = 3  # runs of a task that raised (a storage hiccup) before the replay fails


@dataclass(frozen=True)
class ClusterSettings:
    """Where to run: a local cluster of ``workers`` processes, or the ``scheduler`` given."""

    workers: int | None = None
    scheduler: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def wanted(self) -> bool:
        """Whether the replay runs on Dask at all (the default stays in-process)."""
        return self.workers is not None or self.scheduler is not None


@contextlib.contextmanager
def connect(settings: ClusterSettings) -> Iterator[Client]:
    """A client of the cluster given, or of a local cluster started (and stopped) for the run."""
    if settings.scheduler is not None:
        with Client(settings.scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=settings.workers or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


class RetryCounter(SchedulerPlugin):
    """Counts, on the scheduler, how often each of one replay's tasks started processing."""

    def __init__(self, prefix: str) -> None:
        self.name = f"calypso-retries-{prefix}"
        self.prefix = prefix
        self.starts: dict[str, int] = {}

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        """Count a start of one of the replay's tasks."""
        if finish == "processing" and isinstance(key, str) and key.startswith(self.prefix):
            self.starts[key] = self.starts.get(key, 0) + 1

    def retried(self) -> int:
        """Runs beyond the first: a task run again after its worker died, or after it raised."""
        return sum(n - 1 for n in self.starts.values())


def _retried(name: str, dask_scheduler: Any = None) -> int:
    plugin = dask_scheduler.plugins.get(name)
    return plugin.retried() if plugin is not None else 0


def _peak_rss() -> int:
    """This worker process's peak resident memory, in bytes (Linux counts in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Plan:
    """One run's tasks on one client; their keys all start with ``prefix``."""

    client: Client
    prefix: str
    settings: ClusterSettings
    tasks: int = 0
    counted: bool = True  # the scheduler counts second runs (RetryCounter registered)

    @property
    def workers(self) -> int:
        """The workers the cluster has now."""
        return len(self.client.scheduler_info().get("workers", {}))

    def submit(self, name: str, function: Any, *args: Any) -> Any:
        """Submit one task (retried when it raises) under a key of this run."""
        self.tasks += 1
        key = f"{self.prefix}-{name}"
        return self.client.submit(function, *args, key=key, retries=RETRIES, pure=False)

    def section(self) -> dict[str, Any]:
        """The report's ``cluster`` part, once every task is done."""
        retried = None
        if self.counted:
            retried = self.client.run_on_scheduler(_retried, f"calypso-retries-{self.prefix}")
        peaks = self.client.run(_peak_rss)
        scheduler = self.client.scheduler_info().get("address", self.settings.scheduler or "")
        peak = max(peaks.values()) if peaks else None
        count = int(retried) if retried is not None else None
        return cluster_section(self.workers, str(scheduler), self.tasks, count, peak)


@contextlib.contextmanager
def planned(settings: ClusterSettings, kind: str) -> Iterator[Plan]:
    """A Plan on the cluster, its tasks' second runs counted on the scheduler meanwhile."""
    with connect(settings) as client:
        plan = Plan(client, f"calypso-{kind}-{uuid.uuid4().hex[:12]}", settings)
        counter = RetryCounter(plan.prefix)
        try:
            client.register_plugin(counter, name=counter.name)
        except Exception as exc:  # a scheduler without this package: run, uncounted
            plan.counted = False
            log.warning("retries not counted: the scheduler cannot load this package (%s)", exc)
        try:
            yield plan
        finally:
            with contextlib.suppress(Exception):  # a scheduler gone: nothing left to clean
                client.unregister_scheduler_plugin(counter.name)


def _gathered(futures: list[Any]) -> tuple[list[ChainOutcome], TotalsFold]:
    """The chains' summaries in journal order, their totals folded as each one arrives."""
    fold = TotalsFold()
    place = {future.key: n for n, future in enumerate(futures)}
    outcomes: list[ChainOutcome | None] = [None] * len(futures)
    for future, outcome in as_completed(futures, with_results=True):
        fold.add(outcome)
        outcomes[place[future.key]] = outcome
        future.release()
    return [outcome for outcome in outcomes if outcome is not None], fold


def _verify_lacking(
    plan: Plan,
    analysed: list[Any],
    outcomes: list[ChainOutcome],
    fold: TotalsFold,
    roots: tuple[TrustedRoot, ...],
) -> None:
    """PKI taps whose chain lacked their certificate, verified again with those every chain
    read before them, as the in-process replay does (validator.office.cluster.certificates)."""
    wanted = frozenset().union(*(outcome.lacked_cards for outcome in outcomes))
    parts = [
        plan.submit(f"certificates-{n}", certificates_for, future, wanted)
        for n, future in enumerate(analysed)
    ]
    # A task, not data scattered: a worker lost holding it, the scheduler computes it again.
    known = plan.submit("known", fold_known, *parts)
    again = [
        plan.submit(f"again-{n}", verify_again, analysed[n], known, roots)
        for n, outcome in enumerate(outcomes)
        if outcome.lacked
    ]
    for changed in plan.client.gather(again):
        for rank, check, failure in changed:
            fold.verified_again(rank, check, failure)


def replay_on_cluster(
    request: ReplayRequest,
    inputs: Inputs,
    settings: ClusterSettings,
    *,
    journal_key_file: Path | None = None,
) -> ReplayReport:
    """Replay the chains of ``inputs`` on Dask: the in-process report, plus a ``cluster`` part.

    ``request.options.journal_key`` is not sent: the workers read ``journal_key_file``; the
    CSIM1 keys travel as their file's path (``options.keys``) too. A database of pseudonyms is
    replayed without the journal key, as ``replay_database`` does.
    """
    chains = inputs.chains
    if inputs.as_received:
        journal_key_file = None
        request = replace(request, options=replace(request.options, journal_key=None))
    options = request.options
    keys = options.keys.resolve() if options.keys is not None else None
    key_file = str(journal_key_file.resolve()) if journal_key_file is not None else None
    options = replace(options, journal_key=None, keys=keys)
    recon_rules = request.recon_rules or options.rules
    reconcile = request.reconcile and options.taps and recon_rules is not None
    with planned(settings, "replay") as plan:
        start = time.perf_counter()  # from a running cluster: a local one's start-up is not replay
        partitions = min(MAX_PARTITIONS, 2 * (plan.workers or settings.workers or 1))
        spec = Spec(plan.prefix, options, key_file, partitions, reconcile, tuple(request.anchors))
        analysed = [
            plan.submit(f"chain-{n}", analyse_chain, spec, chain) for n, chain in enumerate(chains)
        ]
        summaries = [
            plan.submit(f"summary-{n}", summary_of, future) for n, future in enumerate(analysed)
        ]
        parts = []
        if reconcile:
            for k in range(partitions):
                facts = [
                    plan.submit(f"facts-{n}-{k}", facts_of, future, k)
                    for n, future in enumerate(analysed)
                ]
                parts.append(plan.submit(f"recon-{k}", reconcile_partition, recon_rules, *facts))
        outcomes, fold = _gathered(summaries)
        if any(outcome.lacked for outcome in outcomes):
            _verify_lacking(plan, analysed, outcomes, fold, options.pki_roots)
        totals = fold.result()
        reconciled = plan.client.gather(parts) if reconcile else None
        section = plan.section()
    checked = options.keys is not None or request.macs is not None or bool(options.pki_roots)
    report = merge_report(
        outcomes,
        reconciled,
        totals=totals,
        rules=recon_rules if reconcile else None,
        anchors=request.anchors,
        fares_label=request.fares_label,
        mac_checked=checked,
        authenticated=key_file is not None or request.options.journal_key is not None,
    )
    for index, problem in inputs.recorded:  # what ingestion found, as replay_database adds it
        report.chains[index].add(problem)
    report.cluster = section
    report.seconds = time.perf_counter() - start
    return report
