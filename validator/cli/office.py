# SPDX-License-Identifier: Apache-2.0
"""CLI commands for the back office: ``validator replay`` and ``validator export``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from validator.app.words import counted
from validator.cli.cluster import check_cluster, cluster_options, paths_argument
from validator.cli.common import config_folder, config_option
from validator.cli.officedb import (
    check_source,
    pseudonymise_option,
    read_pseudonymiser,
    selection_options,
)
from yamlconfig import ConfigError, load_model

if TYPE_CHECKING:
    from validator.office.export import ExportReport
    from validator.office.pseudonym import Pseudonymiser
    from validator.office.replay.anchor import Anchor
    from validator.office.replay.audit import ReplayRequest
    from validator.office.replay.findings import Problem
    from validator.office.replay.report import ReplayReport

EXIT_BAD_INPUT = 2


@contextlib.contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over ``total`` bytes on stderr when it is a terminal, else nothing."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task, done)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _check_writable(out: Path) -> None:
    """Usage error (exit 2) unless ``out`` can be written; leaves no file behind."""
    existed = out.exists()
    try:
        with open(out, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise click.BadParameter(f"{out}: {exc.strerror or exc}", param_hint="--out") from None
    if not existed:
        out.unlink(missing_ok=True)


anchor_option = click.option(
    "--anchor",
    "anchor_values",
    multiple=True,
    metavar="VALIDATOR:SEQ:SHA256|FILE",
    help="A published head (repeatable), or a JSON file of heads as `journal-head` prints.",
)


def _anchors(values: tuple[str, ...]) -> tuple[Anchor, ...]:
    from validator.office.replay.anchor import AnchorError, parse_anchors

    try:
        return tuple(parse_anchors(values))
    except AnchorError as exc:
        _fail(str(exc))
    return ()  # pragma: no cover - _fail exits


def _journal_key(path: Path | None) -> bytes | None:
    """The key of ``path`` through run's checked reader (mode 0600, hex, 16 bytes at least).

    JournalKeyError is a ConfigError: the callers print it and exit 2, as ``run`` refuses it.
    """
    from validator.journal.keyfile import read_journal_key

    return None if path is None else read_journal_key(path)


@click.command()
@paths_argument
@config_option("Configuration folder: the fare rules in force (default: as `run`).")
@click.option(
    "--fares",
    "fares_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="What-if: replay decisions with this fare file.",
)
@click.option(
    "--keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSIM1 key file: recompute MACs with the software SAM.",
)
@click.option(
    "--sam-reader",
    default=None,
    help="Recompute MACs with this SAM (pcsc:REGEX, in verification mode).",
)
@click.option(
    "--pki-root",
    "pki_roots",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Root public key file (repeatable): verify PKI taps' signatures, no key or SAM.",
)
@click.option(
    "--journal-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Hex HMAC key: check each entry's HMAC.",
)
@anchor_option
@click.option("--since", type=click.DateTime(), default=None, help="First tap time included.")
@click.option("--until", type=click.DateTime(), default=None, help="Tap time excluded onwards.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON document to this file.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes for parsing, decisions and MACs.",
)
@cluster_options
@selection_options
def replay(
    paths: tuple[Path | str, ...],
    config: Path | None,
    fares_file: Path | None,
    keys: Path | None,
    sam_reader: str | None,
    pki_roots: tuple[Path, ...],
    journal_key_file: Path | None,
    anchor_values: tuple[str, ...],
    since: dt.datetime | None,
    until: dt.datetime | None,
    as_json: bool,
    out: Path | None,
    jobs: int,
    workers: int | None,
    scheduler: str | None,
    db_url: str | None,
    stations: tuple[int, ...],
    validators: tuple[str, ...],
) -> None:
    """Audit journals: integrity, MACs and PKI signatures, decisions (what-if with --fares),
    reconciliation.

    PATHS are journal files or folders; or --db reads the office database (with --since,
    --until, --station and --validator to select), with the same report. With --workers N
    or --scheduler, the replay runs on a Dask cluster (PATHS may then be URLs: s3://...), with
    the same report and a `cluster` part (docs/replay-cluster.md).
    """
    check_source(cast(tuple[Path, ...], paths), db_url, stations, validators)
    on_cluster = check_cluster(
        paths,
        workers,
        scheduler,
        {"--sam-reader": sam_reader is not None, "--jobs": jobs > 1},
    )
    from validator.app.settings import load_fares, load_settings
    from validator.engine.pki.files import RootKeyFile
    from validator.journal.reading import ReplayInputError
    from validator.office.database.schema import OfficeDatabaseError
    from validator.office.replay.audit import ReplayRequest, replay, total_bytes
    from validator.office.replay.line import Options
    from validator.office.replay.report import render

    if since is not None and until is not None and since >= until:
        _fail("--since must be before --until")
    if keys is not None and sam_reader is not None:
        _fail("give --keys or --sam-reader, not both")
    if out is not None:
        _check_writable(out)  # before the replay, which may take hours
    anchors = _anchors(anchor_values)
    config_dir = config_folder(config)
    try:
        settings = load_settings(config_dir)
        in_force = load_fares(config_dir, settings)
        rules = in_force
        if fares_file is not None:  # what-if: checked against the layouts like the rules in force
            rules = load_fares(config_dir, settings, fares_file)
        macs = None
        if sam_reader is not None:
            from validator.app.station import RunError, open_sam
            from validator.office.replay.mac import MacChecker

            try:
                sam = open_sam(sam_reader, config_dir, settings)
            except RunError as exc:
                _fail(str(exc))
            if sam is None:
                _fail("--sam-reader none: give a SAM, or --pki-root for PKI taps")
                return
            macs = MacChecker(sam)
        if journal_key_file is None and settings.journal_key_file:
            journal_key_file = config_dir / settings.journal_key_file
        key = _journal_key(journal_key_file)
        layouts = tuple(settings.layouts.items())
        roots = tuple(load_model(path, RootKeyFile).root() for path in pki_roots)
        options = Options(rules, key, keys, since, until, layouts, pki_roots=roots)
        request = ReplayRequest(
            cast(tuple[Path, ...], paths),  # not read by a cluster replay, which reads URLs too
            options,
            fares_label=str(fares_file) if fares_file is not None else "in force",
            recon_rules=in_force,
            macs=macs,
            jobs=jobs,
            anchors=anchors,
        )
        if on_cluster:
            report = _replay_on_cluster(
                request,
                paths,
                db_url,
                (since, until, stations, validators),
                journal_key_file,
                workers,
                scheduler,
            )
        elif db_url is not None:
            from validator.office.database.reports import Selection, replay_database

            selection = Selection(since, until, stations, validators)
            report = replay_database(request, db_url, selection)
        else:
            local = cast(tuple[Path, ...], paths)
            with progress_bar(total_bytes(local), "replay") as progress:
                report = replay(request, progress)
    except (ConfigError, ReplayInputError, OfficeDatabaseError) as exc:
        _fail(str(exc))
        return
    document = report.as_json()
    if out is not None:
        out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(document, default=str))
    else:
        render(report, Console())
    sys.exit(report.exit_code)


def _replay_on_cluster(
    request: ReplayRequest,
    paths: tuple[Path | str, ...],
    db_url: str | None,
    selection: tuple[dt.datetime | None, dt.datetime | None, tuple[int, ...], tuple[str, ...]],
    journal_key_file: Path | None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> ReplayReport:
    """The replay on Dask: the chains found here, analysed and reconciled on the workers."""
    from validator.office.cluster.inputs import database_inputs, path_inputs
    from validator.office.cluster.run import ClusterSettings, replay_on_cluster
    from validator.office.database.reports import Selection

    if db_url is not None:
        inputs = database_inputs(db_url, Selection(*selection))
    else:
        inputs = path_inputs(paths, {})
    settings = ClusterSettings(workers, scheduler)
    return replay_on_cluster(request, inputs, settings, journal_key_file=journal_key_file)


@click.command()
@paths_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (one file per journal).",
)
@config_option("Configuration folder: its journal_key_file (default: as `run`).")
@click.option(
    "--journal-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Hex HMAC key: check each entry's HMAC.",
)
@anchor_option
@selection_options
@click.option("--since", type=click.DateTime(), default=None, help="With --db: first tap time.")
@click.option("--until", type=click.DateTime(), default=None, help="With --db: tap time excluded.")
@pseudonymise_option
@cluster_options
def export(
    paths: tuple[Path | str, ...],
    fmt: str,
    out: Path,
    config: Path | None,
    journal_key_file: Path | None,
    anchor_values: tuple[str, ...],
    db_url: str | None,
    stations: tuple[int, ...],
    validators: tuple[str, ...],
    since: dt.datetime | None,
    until: dt.datetime | None,
    office_key_file: Path | None,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Export journals to one flat row per tap (Parquet or CSV) for DuckDB, Spark or Trino.

    Integrity is checked as by replay: a journal that fails it is not exported (exit 1).
    With --db, the taps of the office database selected (--since, --until, --station,
    --validator), one file per validator; nothing is written if the office recorded an
    integrity break for one of them (exit 1). --pseudonymise KEYFILE writes pseudonyms
    (a keyed hash) instead of card serials. With --workers N or --scheduler, one Dask task per
    journal (PATHS may then be URLs: s3://...); OUT must be a folder every worker sees.
    """
    from validator.app.settings import load_settings
    from validator.journal.reading import ReplayInputError
    from validator.office import export as exporter
    from validator.office.replay.audit import total_bytes

    check_source(cast(tuple[Path, ...], paths), db_url, stations, validators)
    on_cluster = check_cluster(paths, workers, scheduler, {"--db": db_url is not None})
    if db_url is None and (since is not None or until is not None):
        raise click.UsageError("--since and --until select from the office database: --db")
    try:
        pseudonyms = read_pseudonymiser(office_key_file)
    except ConfigError as exc:
        _fail(str(exc))
        return
    if db_url is not None:
        selection = (since, until, stations, validators)
        _export_database(db_url, selection, out, fmt, pseudonyms)
        return
    anchors = _anchors(anchor_values)
    try:
        if journal_key_file is None:
            config_dir = config_folder(config)
            settings = load_settings(config_dir)
            if settings.journal_key_file:
                journal_key_file = config_dir / settings.journal_key_file
        key = _journal_key(journal_key_file)
        if on_cluster:
            report = _export_on_cluster(
                paths, out, fmt, journal_key_file, anchors, office_key_file, workers, scheduler
            )
        else:
            local = cast(tuple[Path, ...], paths)
            with progress_bar(total_bytes(local), "export") as progress:
                report = exporter.export(
                    local, out, fmt, progress, key=key, anchors=anchors, pseudonymiser=pseudonyms
                )
    except (ConfigError, ReplayInputError) as exc:
        _fail(str(exc))
        return
    if not report.ok:
        _integrity_failed(report.counts, report.problems)
    for result in report.results:
        notes = [f"{counted(result.skipped, 'unreadable line')} skipped"] if result.skipped else []
        if result.duplicates:
            notes.append(
                f"{counted(result.duplicates, 'duplicated entry', 'duplicated entries')}"
                " counted once"
            )
        if result.intents:
            notes.append(f"{counted(result.intents, 'closing intent')} left out (not taps)")
        taps = counted(result.rows, "tap")
        click.echo(f"{result.path}: {taps}" + (f" ({'; '.join(notes)})" * bool(notes)))
    if not report.authenticated and not anchors:
        from validator.office.replay.report import UNPROVEN

        click.echo(f"warning: {UNPROVEN}", err=True)


def _export_on_cluster(
    paths: tuple[Path | str, ...],
    out: Path,
    fmt: str,
    journal_key_file: Path | None,
    anchors: tuple[Anchor, ...],
    office_key_file: Path | None,
    workers: int | None,
    scheduler: str | None,
) -> ExportReport:
    """``validator export`` on Dask; its cluster figures on stderr."""
    from validator.office.cluster.export import export_on_cluster
    from validator.office.cluster.inputs import path_inputs
    from validator.office.cluster.run import ClusterSettings

    report, cluster = export_on_cluster(
        path_inputs(paths, {}),
        out,
        fmt,
        ClusterSettings(workers, scheduler),
        journal_key_file=journal_key_file,
        anchors=anchors,
        office_key_file=office_key_file,
    )
    peak = cluster["peak_worker_rss_bytes"]
    click.echo(
        f"cluster: {cluster['workers']} workers ({cluster['scheduler']}), {cluster['tasks']} tasks,"
        f" {cluster['retried']} retried, peak worker memory "
        + (f"{peak / 1e6:.0f} MB" if peak else "unknown"),
        err=True,
    )
    return report


def _export_database(
    url: str,
    selection: tuple[dt.datetime | None, dt.datetime | None, tuple[int, ...], tuple[str, ...]],
    out: Path,
    fmt: str,
    pseudonyms: Pseudonymiser | None,
) -> None:
    """``validator export --db``: the taps selected, one file per validator."""
    from validator.office.database.reports import Selection, export_database
    from validator.office.database.schema import OfficeDatabaseError

    try:
        report = export_database(url, Selection(*selection), out, fmt, pseudonyms)
    except OfficeDatabaseError as exc:
        _fail(str(exc))
        return
    if not report.ok:
        _integrity_failed(report.counts, report.problems)
    for result in report.results:
        click.echo(f"{result.path}: {counted(result.rows, 'tap')}")


def _integrity_failed(counts: dict[str, int], problems: list[Problem]) -> None:
    """Refuse the export: the problems on stderr, nothing written, exit 1."""
    click.echo(f"error: integrity BROKEN {counts}: nothing exported", err=True)
    for problem in problems[:20]:
        where = f" {problem.file}:{problem.line}" if problem.file else ""
        click.echo(f"  {problem.kind}{where} seq {problem.seq}: {problem.detail}", err=True)
    if len(problems) > 20:
        click.echo(f"  ... {len(problems) - 20} more (validator replay --json for all)", err=True)
    sys.exit(1)


@click.command("journal-head")
@click.argument("directory", required=False, type=click.Path(path_type=Path), default=None)
@config_option("Configuration folder: its journal_dir and journal_key_file (default: as `run`).")
@click.option(
    "--journal-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Hex HMAC key: refuse a head whose HMAC does not verify.",
)
def journal_head(
    directory: Path | None, config: Path | None, journal_key_file: Path | None
) -> None:
    """Print the chain's head as JSON (validator, seq, hash, time, file), to anchor it elsewhere.

    DIRECTORY is a journal directory, or one journal file (then the head of what it holds: the
    last file of a shipment).
    """
    from validator.app.settings import load_settings
    from validator.journal.head import journal_head as head_of
    from validator.journal.reading import ReplayInputError

    if directory is not None and config is not None:
        _fail("give a journal directory or --config, not both")
    try:
        if directory is None:
            config_dir = config_folder(config)
            settings = load_settings(config_dir)
            directory = config_dir / settings.journal_dir
            if journal_key_file is None and settings.journal_key_file:
                journal_key_file = config_dir / settings.journal_key_file
        head = head_of(directory, _journal_key(journal_key_file))
    except (ConfigError, ReplayInputError, OSError) as exc:
        _fail(str(exc))
        return
    click.echo(json.dumps(head))


def register(group: click.Group) -> None:
    """Add these commands to the ``validator`` group."""
    group.add_command(replay)
    group.add_command(export)
    group.add_command(journal_head)
