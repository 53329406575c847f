# SPDX-License-Identifier: Apache-2.0
"""What every ``validator`` subcommand shares: exit codes and the ``--config`` option.

Exit codes are the unit's contract with systemd (deploy/calypso-validator.service):
2 is a mistake a person must fix (RestartPreventExitStatus), 3 a journal that cannot be
written, 4 a reader or SAM that may come back (restarted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from validator.app.settings import default_config_dir

__all__ = ["EXIT_CONFIG", "EXIT_JOURNAL", "EXIT_START", "config_folder", "config_option"]

EXIT_CONFIG = 2
EXIT_JOURNAL = 3
EXIT_START = 4

DEFAULT_CONFIG_HELP = "Configuration folder (default: $CALYPSO_VALIDATOR_CONFIG, else ./config)."

F = TypeVar("F", bound=Callable[..., Any])


def config_option(help: str = DEFAULT_CONFIG_HELP) -> Callable[[F], F]:
    """The ``--config FOLDER`` option (None when not given: see :func:`config_folder`)."""
    return click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help=help,
    )


def config_folder(value: Path | None) -> Path:
    """The configuration folder given, else $CALYPSO_VALIDATOR_CONFIG, else ./config."""
    return value if value is not None else default_config_dir()
