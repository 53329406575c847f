# SPDX-License-Identifier: Apache-2.0
"""The ``validator`` command: thin wrappers that turn errors into messages and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import tempfile
from pathlib import Path

import click
import structlog

from calypso.yamlfile import ConfigError
from validator.journal import Journal, JournalError
from validator.logs import LEVELS, configure
from validator.settings import default_config_dir, load_settings

EXIT_CONFIG = 2
EXIT_JOURNAL = 3
log = structlog.get_logger("validator")

_OUTCOME_COLOURS = {
    "granted": "green",
    "recovered": "cyan",
    "denied": "yellow",
    "card_lost": "magenta",
    "unknown": "red",
    "error": "red",
}


config_option = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Configuration folder (default: $CALYPSO_VALIDATOR_CONFIG, else ./config).",
)


def _config_dir(value: Path | None) -> Path:
    return value if value is not None else default_config_dir()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per tap on stdout.")
@config_option
@click.option(
    "--start",
    type=click.DateTime(),
    default=None,
    help="Simulated time of the first tap (default: today 07:00).",
)
@click.option(
    "--log-level",
    type=click.Choice(list(LEVELS)),
    default="warning",
    show_default=True,
    help="Log level on stderr (traffic logs every APDU).",
)
@click.option(
    "--tear-rate",
    type=click.FloatRange(0.0, 1.0),
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
    from validator.demo import run_demo

    config_dir = _config_dir(config)
    if start is None:
        start = dt.datetime.combine(dt.date.today(), dt.time(7, 0))
    if journal_dir is None:
        journal_dir = Path(tempfile.mkdtemp(prefix="validator-demo-journal-"))
    try:
        settings = load_settings(config_dir)
        configure(settings.log_format, log_level)
        times: list[float] = []
        with Journal(journal_dir) as journal:
            for tap in run_demo(
                config_dir,
                settings,
                taps=taps,
                seed=seed,
                start=start,
                journal=journal,
                tear_rate=tear_rate,
            ):
                times.append(tap.result.elapsed * 1000)
                log.info("tap", **tap.as_json())
                if as_json:
                    click.echo(json.dumps(tap.as_json(), sort_keys=False))
                else:
                    click.echo(_tap_line(tap.index, tap.at, tap.result.summary()))
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except JournalError as exc:
        click.echo(f"journal error: {exc}", err=True)
        sys.exit(EXIT_JOURNAL)
    message = f"journal: {journal_dir}"
    if not as_json and times:
        message = (
            f"\n{len(times)} taps, median {statistics.median(times):.1f} ms per tap "
            f"(host time, emulated card and software SAM); {message}"
        )
    click.echo(message, err=as_json)


def _tap_line(index: int, at: dt.datetime, tap: dict[str, object]) -> str:
    outcome = str(tap["outcome"])
    remaining = tap["remaining"]
    left = f"{remaining} left" if remaining is not None else ""
    product = tap["product"] or "-"
    apdus = tap["apdus"]
    assert isinstance(apdus, dict)  # noqa: S101 - summary() always builds this dict
    return (
        f"{index:4d}  {at:%H:%M:%S}  {tap['card']}  {product:<15} "
        + click.style(f"{outcome:<9}", fg=_OUTCOME_COLOURS.get(outcome))
        + f" {tap['reason']:<26} {left:<9} {tap['ms']:>6.1f} ms"
        f"  ({apdus['card']} card + {apdus['sam']} SAM APDUs)"
    )


@main.command("check-config")
@config_option
def check_config(config: Path | None) -> None:
    """Validate every configuration file and say what is wrong, with file and line."""
    from calypso.profile import load_profile
    from calypso.yamlfile import load_model
    from sam.keys import load_keys
    from validator.fares import FareRules

    config_dir = _config_dir(config)
    try:
        settings = load_settings(config_dir)
        load_model(config_dir / settings.fares, FareRules)
        keys = load_keys(config_dir / settings.keys, allow_simulation=settings.simulation)
        profiles = sorted((config_dir / settings.cards).glob("*.yaml"))
        for path in profiles:
            load_profile(path)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    mode = "SIMULATION" if settings.simulation else "production"
    click.echo(
        f"{config_dir}: valid ({mode} mode, {len(keys.keys)} SAM keys, "
        f"{len(profiles)} card profiles)"
    )


def _register_extensions() -> None:
    from validator.cli_readers import register

    register(main)


_register_extensions()
