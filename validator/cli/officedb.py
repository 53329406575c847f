# SPDX-License-Identifier: Apache-2.0
"""``validator office``: the back-office database (``init-db``, ``ingest``, ``retention``).

Exit codes: 0 done, 1 an integrity break was found (recorded in the database, the file's other
entries stored), 2 a mistake to fix (no schema, a file that cannot be taken, an unreachable
database).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from validator.app.words import counted
from validator.cli.common import config_folder, config_option
from yamlconfig import ConfigError

if TYPE_CHECKING:
    from validator.office.database.ingest import IngestResult
    from validator.office.pseudonym import Pseudonymiser

EXIT_BREAK = 1
EXIT_BAD_INPUT = 2
DB_ENV = "CALYPSO_OFFICE_DB"

db_option = click.option(
    "--db",
    "url",
    required=True,
    envvar=DB_ENV,
    metavar="URL",
    help=f"PostgreSQL URL or libpq conninfo of the office database (or ${DB_ENV}).",
)


def pseudonymise_option(function: Any) -> Any:
    """``--pseudonymise KEYFILE``: pseudonyms instead of card serials (export)."""
    return click.option(
        "--pseudonymise",
        "office_key_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="KEYFILE",
        help="Office key file (hex, mode 0600): write pseudonyms instead of card serials.",
    )(function)


def read_pseudonymiser(path: Path | None) -> Pseudonymiser | None:
    """The pseudonymiser of an office key file (None without one); OfficeKeyError if unusable."""
    if path is None:
        return None
    from validator.office.pseudonym import Pseudonymiser, read_office_key

    return Pseudonymiser(read_office_key(path))


def selection_options(function: Any) -> Any:
    """``--db``, ``--station`` and ``--validator``: replay and export read the office database."""
    function = click.option(
        "--validator",
        "validators",
        multiple=True,
        metavar="ID",
        help="With --db: only this validator (repeatable).",
    )(function)
    function = click.option(
        "--station",
        "stations",
        multiple=True,
        type=int,
        help="With --db: only taps at this station (repeatable).",
    )(function)
    return click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help="Read the office database (a PostgreSQL URL) instead of journal files.",
    )(function)


def check_source(
    paths: tuple[Path, ...],
    db_url: str | None,
    stations: tuple[int, ...],
    validators: tuple[str, ...],
) -> None:
    """Usage error (exit 2) unless journal paths or --db is given, and not both."""
    if db_url is None and not paths:
        raise click.UsageError("give journal files or folders, or --db URL")
    if db_url is not None and paths:
        raise click.UsageError("give journal files or folders, or --db URL, not both")
    if db_url is None and (stations or validators):
        raise click.UsageError("--station and --validator select from the office database: --db")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.group()
def office() -> None:
    """The back-office database: create it, ingest journals into it."""


@office.command("init-db")
@db_option
@pseudonymise_option
def init_db(url: str, office_key_file: Path | None) -> None:
    """Create the office schema in an empty database, or migrate an older one.

    --pseudonymise KEYFILE: from now on the database stores pseudonyms of card serials only
    (before the first ingestion; never turned off).
    """
    from validator.office.database.privacy import enable_pseudonyms
    from validator.office.database.schema import OfficeDatabaseError
    from validator.office.database.schema import init_db as create

    try:
        pseudonyms = read_pseudonymiser(office_key_file)
        before, after = create(url)
        changed = pseudonyms is not None and enable_pseudonyms(url, pseudonyms)
    except (ConfigError, OfficeDatabaseError) as exc:
        _fail(str(exc))
        return
    if before == after:
        click.echo(f"office schema version {after}: up to date")
    else:
        click.echo(f"office schema version {after} (was {before or 'none'})")
    if pseudonyms is not None:
        state = "now stores" if changed else "stores"
        click.echo(f"the database {state} pseudonyms only (office key id {pseudonyms.key_id})")


def _line(result: IngestResult) -> str:
    if result.status == "already_ingested":
        return f"{result.name}: already ingested, nothing added"
    if result.status == "empty":
        return f"{result.name}: no entry yet, nothing added"
    parts = [counted(result.new_taps, "new tap")]
    if result.new_records:
        parts.append(counted(result.new_records, "new record"))
    if result.duplicates:
        parts.append(counted(result.duplicates, "duplicate"))
    if result.resumed:
        parts.append(f"{counted(result.resumed, 'held entry', 'held entries')} now continue it")
    if result.held:
        parts.append(f"{counted(result.held, 'line')} held after a break")
    if result.torn:
        parts.append(f"an unfinished last line ({result.torn} bytes) left for later")
    anchor = f"; {result.validator} anchored at seq {result.anchor[0]}" if result.anchor else ""
    return f"{result.name}: {', '.join(parts)}{anchor}"


@office.command()
@db_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@config_option("Configuration folder: its journal_key_file (read only when given).")
@click.option(
    "--journal-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Hex HMAC key: check each entry's HMAC.",
)
@click.option(
    "--office-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Office key (hex, mode 0600): needed by a database that stores pseudonyms only.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def ingest(
    url: str,
    paths: tuple[Path, ...],
    config: Path | None,
    journal_key_file: Path | None,
    office_key_file: Path | None,
    as_json: bool,
) -> None:
    """Ingest journal files (or directories of them) into the office database.

    Idempotent: a file ingested before, or overlapping one, adds nothing. Each validator's
    chain is checked from its anchor; a break is recorded and what follows it held (exit 1).
    """
    from validator.app.settings import load_settings
    from validator.journal.keyfile import read_journal_key
    from validator.journal.reading import ReplayInputError
    from validator.office.database.ingest import IngestError, ingest_paths
    from validator.office.database.schema import OfficeDatabaseError

    try:
        if journal_key_file is None and config is not None:
            config_dir = config_folder(config)
            settings = load_settings(config_dir)
            if settings.journal_key_file:
                journal_key_file = config_dir / settings.journal_key_file
        key = None if journal_key_file is None else read_journal_key(journal_key_file)
        pseudonyms = read_pseudonymiser(office_key_file)
        results = ingest_paths(url, paths, key=key, pseudonymiser=pseudonyms)
    except (ConfigError, ReplayInputError, OfficeDatabaseError) as exc:
        _fail(str(exc))
        return
    done = [r for r in results if not isinstance(r, IngestError)]
    refused = [r for r in results if isinstance(r, IngestError)]
    if as_json:
        document = {"files": [r.as_dict() for r in done], "refused": [str(e) for e in refused]}
        click.echo(json.dumps(document))
    else:
        for result in done:
            click.echo(_line(result))
            for found in result.breaks:
                click.echo(f"  integrity break: {found.kind} at seq {found.seq}: {found.detail}")
        for error in refused:
            click.echo(f"error: {error}", err=True)
        if key is None:
            click.echo(
                "warning: no journal key: the HMACs were not checked, only the chain", err=True
            )
    if refused:
        sys.exit(EXIT_BAD_INPUT)
    if any(not r.ok for r in done):
        sys.exit(EXIT_BREAK)


@office.command()
@db_option
@click.option(
    "--days",
    type=int,
    required=True,
    help="Keep card-level data of the last N days (N >= 1); older taps become aggregates.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def retention(url: str, days: int, as_json: bool) -> None:
    """Delete card-level data older than N days, keeping entries and revenue per station and hour.

    Idempotent; the validators' anchors stay, so ingestion goes on as before.
    """
    from validator.office.database.retention import MAX_DAYS, apply_retention
    from validator.office.database.schema import OfficeDatabaseError

    if not 1 <= days <= MAX_DAYS:
        raise click.BadParameter(f"must be between 1 and {MAX_DAYS}", param_hint="--days")
    try:
        result = apply_retention(url, days)
    except OfficeDatabaseError as exc:
        _fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(result)))
        return
    click.echo(f"retention {days} days: card-level data before {result.cutoff} deleted")
    click.echo(
        f"deleted: {counted(result.taps, 'tap')}, {counted(result.records, 'record')}, "
        f"{counted(result.held, 'held line')}; "
        f"{counted(result.unknown_cards, 'unknown tap')} lost their card"
    )
    click.echo(
        f"kept: {counted(result.aggregates, 'aggregate row')} added or updated "
        f"(taps and revenue per station, hour and outcome), {counted(result.kept_taps, 'tap')} "
        "younger than the cut-off, every validator's anchor"
    )


@office.command()
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("/etc/calypso-collector"),
    show_default=True,
    help="Folder holding collector.yaml and the files it names.",
)
@click.option("--port", type=int, default=None, help="Override the port (0: any free port).")
def serve(config: Path, port: int | None) -> None:
    """The collector: ingest journals shipped over mutual TLS, answer each with the anchor.

    Prints "collector listening on URL" once it accepts connections; stops on SIGTERM.
    """
    from validator.cli.common import CONFIG_ERRORS, exits_on
    from validator.office.collector.server import serve as run_collector

    def say(message: str) -> None:
        click.echo(message, err=True)

    def ready(url: str) -> None:
        click.echo(f"collector listening on {url}")
        sys.stdout.flush()

    with exits_on(CONFIG_ERRORS):
        run_collector(config, port=port, ready=ready, log=say)


def register(group: click.Group) -> None:
    """Add the ``office`` group to the ``validator`` group."""
    group.add_command(office)
