# SPDX-License-Identifier: Apache-2.0
"""The ``validator`` command: thin wrappers that turn errors into messages and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import cast

import click
import structlog

from validator.app.gate import ConsoleGate, JsonGate, tap_line
from validator.app.logs import LEVELS, LogFormat, configure
from validator.app.settings import load_settings
from validator.app.words import counted
from validator.cli.common import (
    CONFIG_ERRORS,
    EXIT_START,
    JOURNAL_ERRORS,
    config_folder,
    config_option,
    exits_on,
)
from validator.journal.writer import Journal

log = structlog.get_logger("validator")


json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per tap on stdout."
)
log_level_option = click.option(
    "--log-level",
    type=click.Choice(list(LEVELS)),
    default="warning",
    show_default=True,
    help="Log level on stderr (traffic logs every APDU).",
)


class _Commands(click.Group):
    """The command group; a reader that closed our stdout (``| head -1``) ends us quietly."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; BrokenPipeError on stdout is a clean exit 0, no traceback."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Later flushes (at exit too) go to /dev/null: no "Exception ignored" message.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            ctx.exit(0)


def _probability(value: float) -> float:
    """FloatRange lets NaN through (every comparison with NaN is false)."""
    if math.isnan(value):
        raise click.BadParameter("must be a number from 0 to 1, not nan")
    return value


class _Stopped(BaseException):
    """SIGTERM reached the demo (SIGINT arrives as KeyboardInterrupt).

    A BaseException, as KeyboardInterrupt is: raised wherever the main thread happens to be,
    it must not be taken for an error by an ``except Exception`` on the way (SamWorker.drain
    forgets the errors of a dropped session, and swallowed the stop under load).
    """


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="calypso-gate-validator")
def main() -> None:
    """Gate validator for Calypso contactless transit cards."""


@main.command()
@click.option(
    "--taps",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Number of passengers.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the simulation (same seed, same run).",
)
@json_option
@config_option()
@click.option(
    "--start",
    type=click.DateTime(),
    default=None,
    help="Simulated time of the first tap (default: today 07:00).",
)
@log_level_option
@click.option(
    "--tear-rate",
    type=click.FloatRange(0.0, 1.0),
    callback=lambda ctx, param, value: _probability(value),
    default=0.05,
    show_default=True,
    help="Probability that a tap's card leaves the field at a random APDU.",
)
@click.option(
    "--journal-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the demo's journal there (default: a new temporary folder).",
)
def demo(
    taps: int,
    seed: int,
    as_json: bool,
    config: Path | None,
    start: dt.datetime | None,
    log_level: str,
    tear_rate: float,
    journal_dir: Path | None,
) -> None:
    """Simulate a stream of passengers on emulated cards and the software SAM."""
    from validator.app.demo import DemoOutOfServiceError, DemoTap, run_demo
    from validator.app.station import load_journal_key as journal_key

    config_dir = config_folder(config)
    if start is None:
        start = dt.datetime.combine(dt.date.today(), dt.time(7, 0))
    _check_demo_dates(start)
    if journal_dir is None:
        journal_dir = Path(tempfile.mkdtemp(prefix="validator-demo-journal-"))
    # Stopped by SIGTERM or Ctrl-C, the demo says where its journal is and keeps it (to replay
    # it): the folder is the operator's to delete (README, "validator demo").
    main_thread = threading.current_thread() is threading.main_thread()  # signals: main only
    previous = signal.signal(signal.SIGTERM, _raise_stopped) if main_thread else None
    try:
        with exits_on(
            CONFIG_ERRORS,
            JOURNAL_ERRORS,
            (DemoOutOfServiceError, "demo stopped: out of service", EXIT_START),
        ):
            settings = load_settings(config_dir)
            configure(settings.log_format, log_level)
            times: list[float] = []
            # The demo's journal is HMACed like run's (issue 15.5), or replay reports hmac_failure.

            def show(tap: DemoTap) -> None:
                times.append(tap.result.elapsed * 1000)
                log.info("tap", **tap.as_json())
                if as_json:
                    click.echo(json.dumps(tap.as_json(), sort_keys=False))
                else:
                    click.echo(tap_line(tap.record, f"{tap.at:%H:%M:%S}"))

            with Journal(journal_dir, key=journal_key(config_dir, settings)) as journal:
                run_demo(
                    config_dir,
                    settings,
                    taps=taps,
                    seed=seed,
                    start=start,
                    journal=journal,
                    tear_rate=tear_rate,
                    on_tap=show,
                )
    except (KeyboardInterrupt, _Stopped) as exc:
        signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
        click.echo(f"demo stopped by {signum.name}; its journal kept in {journal_dir}", err=True)
        sys.exit(128 + signum)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    message = f"journal: {journal_dir}"
    if not as_json and times:
        message = (
            f"\n{counted(len(times), 'tap')}, median {statistics.median(times):.1f} ms per tap "
            f"(host time, emulated card and software SAM); {message}"
        )
    click.echo(message, err=as_json)


def _check_demo_dates(start: dt.datetime) -> None:
    """Usage error unless the demo's first day of taps can be written on the cards."""
    from validator.app.clock import ClockError, check_clock

    try:
        check_clock(start)
        check_clock(start + dt.timedelta(days=1))
    except ClockError as exc:
        detail = str(exc).removeprefix("clock not set: ").partition(";")[0]
        raise click.BadParameter(detail, param_hint="--start") from None


@main.command()
@config_option()
@click.option(
    "--card-reader",
    default=None,
    help="emulated | pcsc:REGEX | nfc:PATH (default: from validator.yaml).",
)
@click.option(
    "--sam-reader",
    default=None,
    help="software | pcsc:REGEX | none (no SAM: PKI cards only; default: from validator.yaml).",
)
@click.option(
    "--max-taps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after N taps (default: run until Ctrl-C).",
)
@json_option
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default=None,
    help="Log format on stderr (default: from validator.yaml).",
)
@log_level_option
@click.option(
    "--interval",
    type=click.FloatRange(min=0.0),
    default=0.5,
    show_default=True,
    help="Emulated reader only: seconds between simulated passengers.",
)
def run(
    config: Path | None,
    card_reader: str | None,
    sam_reader: str | None,
    max_taps: int | None,
    as_json: bool,
    log_format: str | None,
    log_level: str,
    interval: float,
) -> None:
    """Serve the gate: wait for cards, validate, journal, give feedback, repeat."""
    from validator.app.run import serve
    from validator.app.station import RunError

    config_dir = config_folder(config)
    try:
        with exits_on(CONFIG_ERRORS, JOURNAL_ERRORS, (RunError, "cannot start", EXIT_START)):
            settings = load_settings(config_dir)
            configure(cast(LogFormat, log_format or settings.log_format), log_level)
            gate = JsonGate() if as_json else ConsoleGate()
            served = serve(
                config_dir,
                settings,
                gate,
                card_spec=card_reader or settings.card_reader,
                sam_spec=sam_reader or settings.sam_reader,
                max_taps=max_taps,
                interval_s=interval,
            )
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        return
    click.echo(f"{counted(served, 'tap')} served", err=True)


@main.command()
@config_option()
@json_option
@click.option(
    "--taps",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Modelled taps per scenario and mode.",
)
@click.option(
    "--host-taps",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="In-process taps per scenario for the host cost.",
)
@click.option(
    "--pcsc-taps",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="Taps per scenario through pcscd and vpcd (0: skip).",
)
@click.option(
    "--intent-taps",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="In-process taps with and without the closing intent, for its cost (0: skip).",
)
@click.option(
    "--scaling/--no-scaling",
    default=True,
    show_default=True,
    help="Per-tap cost with 1, 10^4 and 10^6 journal entries and cards seen.",
)
def bench(
    config: Path | None,
    as_json: bool,
    taps: int,
    host_taps: int,
    pcsc_taps: int,
    intent_taps: int,
    scaling: bool,
) -> None:
    """Per scenario: APDUs, modelled tap time (sequential baseline vs engine), host cost; the
    closing intent's cost per tap."""
    from validator.bench.document import format_tables, run_bench

    document = run_bench(
        config_folder(config),
        taps=taps,
        host_taps=host_taps,
        pcsc_taps=pcsc_taps,
        intent_taps=intent_taps,
        scaling=(1, 10_000, 1_000_000) if scaling else None,
        progress=lambda message: click.echo(message, err=True),
    )
    click.echo(json.dumps(document, indent=2) if as_json else format_tables(document))


def _register_extensions() -> None:
    from validator.cli import inspect as cli_inspect
    from validator.cli import office as cli_replay
    from validator.cli import officedb as cli_officedb
    from validator.cli import ops as cli_ops
    from validator.cli import readers as cli_readers
    from validator.cli import ship as cli_ship

    for module in (cli_readers, cli_inspect, cli_replay, cli_ops, cli_officedb, cli_ship):
        module.register(main)


_register_extensions()
