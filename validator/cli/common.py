# SPDX-License-Identifier: Apache-2.0
"""What every ``validator`` subcommand shares: exit codes and the ``--config`` option.

Exit codes are the unit's contract with systemd (deploy/calypso-validator.service):
2 is a mistake a person must fix (RestartPreventExitStatus), 3 a journal that cannot be
written, 4 a reader or SAM that may come back (restarted).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from validator.app.settings import default_config_dir
from validator.engine.recording import JournalError
from yamlconfig import ConfigError

__all__ = [
    "CONFIG_ERRORS",
    "EXIT_CONFIG",
    "EXIT_JOURNAL",
    "EXIT_START",
    "JOURNAL_ERRORS",
    "Refusal",
    "config_folder",
    "config_option",
    "exits_on",
]

EXIT_CONFIG = 2
EXIT_JOURNAL = 3
EXIT_START = 4

# An expected failure of a command: the error type, the words before its message, the exit code.
Refusal = tuple[type[BaseException], str, int]
CONFIG_ERRORS: Refusal = (ConfigError, "configuration error", EXIT_CONFIG)
JOURNAL_ERRORS: Refusal = (JournalError, "journal error", EXIT_JOURNAL)

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


@contextmanager
def exits_on(*refusals: Refusal) -> Iterator[None]:
    """Turn the expected errors into one line on stderr and their exit code (the first that fits).

    Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except tuple(kind for kind, _, _ in refusals) as exc:
        kind, words, code = next(r for r in refusals if isinstance(exc, r[0]))
        click.echo(f"{words}: {exc}", err=True)
        sys.exit(code)
