# SPDX-License-Identifier: Apache-2.0
"""The chains of a cluster replay, found on the driver: journal paths, URLs, the office database.

The journals get the indices the in-process replay gives them (its merge tie-break and the order
of the report's journals): local paths through ``discover`` itself, URLs grouped and ordered the
same way, the database's validators in the order ``replay_database`` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from validator.journal.reading import ReplayInputError, discover
from validator.office.cluster.sources import ChainSource, DbChain, FileChain, discover_urls
from validator.office.replay.findings import Problem


@dataclass
class Inputs:
    """The chains to replay; with the office database, what its ingestion recorded."""

    chains: list[ChainSource]
    as_received: bool = False  # a database of pseudonyms: no journal key (replay_database)
    recorded: list[tuple[int, Problem]] = field(default_factory=list)  # chain index, break


def path_inputs(paths: Sequence[Path | str], storage_options: dict[str, Any]) -> Inputs:
    """The journals under local paths, or under URLs (not both: one order for all)."""
    urls = [p for p in paths if isinstance(p, str)]
    local = [p for p in paths if isinstance(p, Path)]
    if urls and local:
        raise ReplayInputError("give journal paths or URLs, not both")
    if urls:
        return Inputs(list(discover_urls(urls, storage_options)))
    return Inputs([FileChain(source) for source in discover(local)])


def database_inputs(url: str, selection: Any) -> Inputs:
    """One chain per validator selected in the office database (``replay_database``'s order)."""
    import psycopg

    from validator.office.database.privacy import pseudonymised
    from validator.office.database.reports import _recorded_breaks, selected
    from validator.office.database.schema import OfficeDatabaseError, connect, require_schema

    try:
        with connect(url) as conn:
            require_schema(conn)
            as_received = pseudonymised(conn) is not None
            ranges = selected(conn, selection)
            breaks = _recorded_breaks(conn, [v for v, _, _ in ranges])
    except psycopg.Error as exc:
        raise OfficeDatabaseError(f"cannot read the office database: {exc}") from None
    chains: list[ChainSource] = [
        DbChain(index, url, validator, first, last, as_received)
        for index, (validator, first, last) in enumerate(ranges)
    ]
    index = {validator: n for n, (validator, _, _) in enumerate(ranges)}
    return Inputs(chains, as_received, [(index[v], problem) for v, problem in breaks])
