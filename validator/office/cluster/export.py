# SPDX-License-Identifier: Apache-2.0
"""``validator export`` on Dask: one task per journal writes its file, the driver decides.

Each task reads its journal (a path the workers see, or a URL), checks its chain on the way and
writes its rows to a temporary file in the output folder, which every worker must see (the same
path: one machine, or a shared file system). The driver gathers the chains, checks overlaps and
the anchors as ``validator.office.export.export`` does, and renames the files into place only if
integrity holds in every journal: a tampered journal never reaches the dataset. The journal key
and the office key (``--pseudonymise``) travel as their files' paths.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from validator.office import export as exporter
from validator.office.cluster.inputs import Inputs
from validator.office.cluster.run import ClusterSettings, planned
from validator.office.cluster.sources import ChainSource, FileChain, read_chain
from validator.office.cluster.tasks import checker, placeholder
from validator.office.replay.anchor import Anchor, AnchorCheck
from validator.office.replay.integrity import ChainChecker


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What every export task needs; keys as file paths only."""

    fmt: str
    journal_key_file: str | None
    office_key_file: str | None
    anchors: tuple[Anchor, ...]


@dataclass
class Written:
    """One journal exported to its temporary file."""

    chain: ChainChecker
    rows: int
    skipped: int
    intents: int


def export_chain(spec: ExportSpec, source: ChainSource, temporary: str) -> Written:
    """Check one journal's chain and write its rows to ``temporary`` (run again: rewritten)."""
    from validator.journal.keyfile import read_journal_key
    from validator.office.pseudonym import Pseudonymiser, read_office_key

    key = read_journal_key(Path(spec.journal_key_file)) if spec.journal_key_file else None
    pseudonyms = None
    if spec.office_key_file is not None:
        pseudonyms = Pseudonymiser(read_office_key(Path(spec.office_key_file)))
    anchors = AnchorCheck(list(spec.anchors)) if spec.anchors else None
    chain = checker(source, anchors)
    skipped = [0, 0]
    rows = exporter.entries(read_chain(source), chain, key, skipped, pseudonyms)
    count = exporter.write_rows(Path(temporary), spec.fmt, rows)
    return Written(chain, count, skipped[0], skipped[1])


def _anchors(anchors: Sequence[Anchor], chains: Sequence[ChainChecker]) -> AnchorCheck:
    """One AnchorCheck: each anchor as the journal holding it saw it, problems in journal order."""
    merged = AnchorCheck(list(anchors))
    for chain in chains:
        check = chain.anchors
        if check is None:
            continue
        for anchor, status in check._status.items():  # noqa: SLF001 - merging its own kind
            if status != "truncated":
                merged._status[anchor] = status  # noqa: SLF001
        for problem in check.problems:
            merged._add(problem)  # noqa: SLF001
        chain.anchors = merged
    return merged


def export_on_cluster(
    inputs: Inputs,
    out: Path,
    fmt: str,
    settings: ClusterSettings,
    *,
    journal_key_file: Path | None = None,
    anchors: Sequence[Anchor] = (),
    office_key_file: Path | None = None,
) -> tuple[exporter.ExportReport, dict[str, Any]]:
    """Export every chain of ``inputs`` on Dask: the in-process export's report and files; and
    the ``cluster`` figures (workers, tasks, retried, peak memory)."""
    if fmt not in exporter.FORMATS:
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    spec = ExportSpec(
        fmt,
        str(journal_key_file.resolve()) if journal_key_file is not None else None,
        str(office_key_file.resolve()) if office_key_file is not None else None,
        tuple(anchors),
    )
    used: set[str] = set()
    places: list[tuple[Path, Path]] = []
    for chain in inputs.chains:
        source = chain.source if isinstance(chain, FileChain) else placeholder(chain)
        path = out / f"taps-{exporter.dataset_name(source, used)}.{fmt}"
        places.append((path.with_name(f".{path.name}.{os.getpid()}.cluster.tmp"), path))
    try:
        with planned(settings, "export") as plan:
            futures = [
                plan.submit(f"export-{n}", export_chain, spec, chain, str(places[n][0]))
                for n, chain in enumerate(inputs.chains)
            ]
            written: list[Written] = plan.client.gather(futures)
            section = plan.section()
        chains = [item.chain for item in written]
        check = _anchors(anchors, chains) if anchors else None
        results = [
            exporter.ExportResult(
                path, item.rows, item.skipped, item.chain.duplicate_count, item.intents
            )
            for (_, path), item in zip(places, written, strict=True)
        ]
        report = exporter.ExportReport(results, chains, check, journal_key_file is not None)
        exporter.publish(report, places)
    finally:
        exporter.discard(places)
    return report, section
