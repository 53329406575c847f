# SPDX-License-Identifier: Apache-2.0
"""CLI commands for operations: ``validator doctor``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from validator.cli import config_option
from validator.settings import default_config_dir

STYLES = {"pass": ("PASS", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "red")}


@click.command("doctor")
@config_option
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
    from validator.doctor import Identity, Probes, diagnose

    try:
        identity = Identity.service(service_user)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--service-user") from None
    config_dir = config if config is not None else default_config_dir()
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
    group.add_command(doctor_command)
