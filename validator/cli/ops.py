# SPDX-License-Identifier: Apache-2.0
"""CLI commands for operations: ``validator check-config`` and ``validator doctor``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from validator.app.settings import load_settings
from validator.app.words import counted
from validator.cli.common import EXIT_CONFIG, config_folder, config_option
from yamlconfig import ConfigError

STYLES = {"pass": ("PASS", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "red")}


@click.command("check-config")
@config_option()
def check_config(config: Path | None) -> None:
    """Validate every configuration file and print every error with file, line and reason."""
    from calypso.emulator.profile import load_profile
    from sam.keys import load_keys
    from validator.app.settings import NO_SAM, load_fares, load_trust
    from validator.app.station import load_journal_key

    config_dir = config_folder(config)
    try:
        settings = load_settings(config_dir)
    except ConfigError as exc:
        for line in exc.details():
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_CONFIG)
    errors: list[str] = []
    keys = 0
    roots = 0
    try:
        load_fares(config_dir, settings)
    except ConfigError as exc:
        errors += exc.details()
    try:
        trust = load_trust(config_dir, settings)
        roots = len(tuple(trust.roots)) if trust is not None else 0
    except ConfigError as exc:
        errors += exc.details()
    try:
        if settings.sam_reader != NO_SAM or (config_dir / settings.keys).exists():
            keys = len(
                load_keys(config_dir / settings.keys, allow_simulation=settings.simulation).keys
            )
    except ConfigError as exc:
        errors += exc.details()
    try:
        load_journal_key(config_dir, settings)
    except ConfigError as exc:
        errors += exc.details()
    profiles = sorted((config_dir / settings.cards).glob("*.yaml"))
    for path in profiles:
        try:
            load_profile(path)
        except ConfigError as exc:
            errors += exc.details()
    for line in errors:
        click.echo(f"error: {line}", err=True)
    if errors:
        sys.exit(EXIT_CONFIG)
    mode = "SIMULATION" if settings.simulation else "production"
    sam = "no SAM" if settings.sam_reader == NO_SAM else counted(keys, "SAM key")
    pki = f", {counted(roots, 'trusted PKI root')}" if roots else ""
    click.echo(f"{config_dir}: valid ({mode} mode, {sam}{pki}, {len(profiles)} card profiles)")


@click.command("doctor")
@config_option()
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON document.")
@click.option(
    "--service-user",
    default=None,
    help="Judge file permissions for this user (default: calypso-validator if it exists, "
    "else the current user).",
)
def doctor_command(config: Path | None, as_json: bool, service_user: str | None) -> None:
    """Check this validator host: configuration, readers, SAM, keys, journal, clock.

    Exit code 0 when every check passes, 1 with a warning, 2 with a failure.
    """
    from validator.app.doctor.diagnose import diagnose
    from validator.app.doctor.report import Identity, Probes

    try:
        identity = Identity.service(service_user)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--service-user") from None
    config_dir = config_folder(config)
    report = diagnose(config_dir, Probes(identity=identity))
    if as_json:
        click.echo(report.as_json())
    else:
        width = max(len(check.name) for check in report.checks)
        for check in report.checks:
            label, colour = STYLES[check.status.value]
            click.echo(
                f"{click.style(label, fg=colour, bold=True)}  {check.name:<{width}}  {check.detail}"
            )
            if check.hint and check.status.value != "pass":
                click.echo(f"      {'':<{width}}  -> {check.hint}")
        passed = sum(check.status.value == "pass" for check in report.checks)
        click.echo(f"\n{passed}/{len(report.checks)} checks pass ({config_dir})")
    sys.exit(report.exit_code)


def register(group: click.Group) -> None:
    """Add these commands to the ``validator`` group."""
    group.add_command(check_config)
    group.add_command(doctor_command)
