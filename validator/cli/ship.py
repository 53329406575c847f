# SPDX-License-Identifier: Apache-2.0
"""``validator ship``: ship the journal to the collector, delete what it acknowledged.

Exit codes (validator.cli.common's style): 0 every file acknowledged; 1 an integrity finding
(a file refused for a chain break or held, a deleted tail, a file changed after its
acknowledgement): reported, nothing deleted; 2 a mistake to fix (the configuration, no
``shipping:`` section, a key file others may read, a TLS handshake refused); 4 the collector
or its database unreachable or full (the timer tries again). Nothing is deleted unless the
whole run ends in 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from validator.cli.common import CONFIG_ERRORS, EXIT_CONFIG, EXIT_START, config_folder
from validator.cli.common import config_option as config_opt
from yamlconfig import ConfigError

EXIT_INTEGRITY = 1
EXIT_UNREACHABLE = EXIT_START  # may come back by itself: retried by the timer


@click.command()
@config_opt()
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON document.")
def ship(config: Path | None, as_json: bool) -> None:
    """Ship closed journal files and the finished part of the current one to the collector."""
    from validator.app.settings import load_settings
    from validator.app.ship.client import CollectorClient
    from validator.app.ship.run import ship_journal

    config_dir = config_folder(config)
    try:
        settings = load_settings(config_dir)
        if settings.shipping is None:
            raise ConfigError(config_dir / "validator.yaml", "shipping: not configured")
        client = CollectorClient(settings.shipping, config_dir)
    except CONFIG_ERRORS[0] as exc:
        click.echo(f"{CONFIG_ERRORS[1]}: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    directory = config_dir / settings.journal_dir
    if not directory.is_dir():
        click.echo(f"nothing to ship: no journal directory {directory}", err=True)
        return
    with client:
        report = ship_journal(directory, client, settings.shipping)
    if as_json:
        click.echo(json.dumps(report.__dict__))
    else:
        click.echo(
            f"shipped {len(report.shipped)} files ({report.taps} new taps), "
            f"{len(report.already)} acknowledged before, {len(report.deleted)} deleted; "
            f"collector anchor seq {report.anchor[0]}"
        )
    for refused in report.refused:
        click.echo(f"refused: {refused}", err=True)
    for problem in report.problems:
        click.echo(f"integrity: {problem}", err=True)
    if report.failure is not None:
        click.echo(f"not shipped (nothing deleted): {report.failure}", err=True)
        sys.exit(EXIT_CONFIG if report.tls_refused else EXIT_UNREACHABLE)
    if report.refused or report.problems:
        sys.exit(EXIT_INTEGRITY)


def register(group: click.Group) -> None:
    """Add ``ship`` to the ``validator`` group."""
    group.add_command(ship)
