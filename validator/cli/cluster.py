# SPDX-License-Identifier: Apache-2.0
"""``--workers`` and ``--scheduler`` of ``validator replay`` and ``validator export`` (issue 21).

The default stays in-process. The Dask part (validator.office.cluster) is imported only when a
cluster is asked for: the ``cluster`` extra is optional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from validator.office.cluster.sources import is_url, local_path


class JournalPath(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.3 on
    """A journal file or folder: a local path (``file://`` too) that exists, or a URL."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """A Path for a local file or folder, the URL itself (a str) for object storage."""
        if isinstance(value, Path):
            return value
        text = str(value)
        path = local_path(text)
        if path is None:
            return text
        if not path.exists() and not path.is_symlink():
            self.fail(f"{text}: no such file or folder", param, ctx)
        return path


paths_argument = click.argument("paths", nargs=-1, required=False, type=JournalPath())


def cluster_options(function: Any) -> Any:
    """``--workers N`` (a local Dask cluster) and ``--scheduler ADDRESS`` (a running one)."""
    function = click.option(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="Run on this Dask scheduler's cluster (same package and extras on every worker).",
    )(function)
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Run on a local Dask cluster of this many worker processes.",
    )(function)


def check_cluster(
    paths: tuple[Path | str, ...],
    workers: int | None,
    scheduler: str | None,
    refused: dict[str, bool],
) -> bool:
    """Whether the run is on Dask; usage error for what a cluster run does not support.

    ``refused``: option name -> whether it was given (each needs this process: a local SAM
    reader, a process pool of its own).
    """
    wanted = workers is not None or scheduler is not None
    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers (a local cluster) or --scheduler, not both")
    if not wanted:
        remote = [p for p in paths if isinstance(p, str)]
        if remote:
            raise click.UsageError(
                f"{remote[0]}: a URL is read by a Dask cluster: give --workers N or --scheduler"
            )
        return False
    for option, given in refused.items():
        if given:
            raise click.UsageError(f"{option} runs in this process only: not with a cluster")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise click.UsageError(
            "--workers and --scheduler need the cluster extra: pip install "
            "'calypso-gate-validator[cluster]'"
        ) from None
    if scheduler is not None and not is_url(scheduler):
        raise click.UsageError(f"--scheduler {scheduler}: give an address like tcp://HOST:8786")
    return True
