# SPDX-License-Identifier: Apache-2.0
"""Where a chain's lines come from, named in a small picklable value a worker reads itself.

- ``FileChain``: a journal on a disk the workers see (found by validator.journal.reading.discover
  on the driver, so the journals, their order and their names are the in-process replay's);
- ``UrlChain``: a journal on object storage through fsspec (``s3://bucket/journals``), found by
  ``discover_urls`` the way ``discover`` finds files: the same grouping and order;
- ``DbChain``: one validator's chain in the office database (validator.office.database.reports).

Credentials for object storage come from the workers' environment (fsspec, boto): none travels.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, cast

from validator.journal.files import _order as file_order  # the writer's file order, by name
from validator.journal.reading import (
    JournalSource,
    RawLine,
    RecentLines,
    ReplayInputError,
    bounded_lines,
    read_journal,
    tap_time_key,
)
from validator.journal.writer import FILE_PREFIX, FILE_SUFFIX, QUARANTINE_PREFIX

_READ_BUFFER = 1 << 20


@dataclass(frozen=True, slots=True)
class FileChain:
    """A journal on a disk every worker sees (the same path)."""

    source: JournalSource

    @property
    def index(self) -> int:
        """The journal's place in the replay (its merge tie-break)."""
        return self.source.index


@dataclass(frozen=True, slots=True)
class UrlChain:
    """A journal on object storage: its folder and files as URLs, oldest file first."""

    index: int
    directory: str
    files: tuple[str, ...]
    quarantine: tuple[str, ...]
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DbChain:
    """One validator's chain in the office database, seq ``first`` to ``last``."""

    index: int
    url: str
    validator: str
    first: int
    last: int
    as_received: bool


ChainSource = FileChain | UrlChain | DbChain


def is_url(value: str) -> bool:
    """Whether a path argument is a URL (``s3://...``, ``file://...``)."""
    return "://" in value


def local_path(value: str) -> Path | None:
    """The local path of a ``file://`` URL or a plain path (None for a remote URL)."""
    if value.startswith("file://"):
        return Path(value.removeprefix("file://"))
    return None if is_url(value) else Path(value)


def _parts(url: str) -> tuple[str, ...]:
    return tuple(url.split("/"))


def discover_urls(urls: Sequence[str], storage_options: dict[str, Any]) -> list[UrlChain]:
    """Group the journal files under ``urls`` by folder, as ``discover`` does on a disk."""
    import fsspec

    groups: dict[str, dict[str, None]] = {}
    protocols: dict[str, Any] = {}
    for url in urls:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        protocol = url.split("://", 1)[0]
        protocols[protocol] = fs
        if fs.isdir(root):
            found = sorted(p for p in fs.find(root) if _is_journal(p.rsplit("/", 1)[-1]))
        elif fs.exists(root):
            found = [root]
        else:
            raise ReplayInputError(f"{url}: no such file or folder")
        for path in found:
            parent = path.rsplit("/", 1)[0]
            groups.setdefault(f"{protocol}://{parent}", {})[f"{protocol}://{path}"] = None
    chains: list[UrlChain] = []
    for directory in sorted(groups, key=_parts):
        files = sorted(groups[directory], key=lambda u: file_order(Path(PurePosixPath(u).name)))
        fs = protocols[directory.split("://", 1)[0]]
        stems = tuple(f"{QUARANTINE_PREFIX}{PurePosixPath(f).stem}-" for f in files)
        listing = fs.ls(directory.split("://", 1)[1], detail=False)
        quarantine = tuple(
            sorted(
                f"{directory}/{name}"
                for name in (p.rsplit("/", 1)[-1] for p in listing)
                if name.startswith(stems)
            )
        )
        chains.append(UrlChain(len(chains), directory, tuple(files), quarantine, storage_options))
    if not chains:
        raise ReplayInputError("no journal file (journal-*.jsonl) under the URLs given")
    return chains


def _is_journal(name: str) -> bool:
    return name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIX)


def read_chain(chain: ChainSource) -> Iterator[RawLine]:
    """Every line of one chain in its order, as the in-process replay reads it."""
    if isinstance(chain, FileChain):
        return read_journal(chain.source)
    if isinstance(chain, UrlChain):
        return _read_urls(chain)
    return _read_database(chain)


def _read_urls(chain: UrlChain) -> Iterator[RawLine]:
    """``read_journal`` over fsspec files: the same lines, numbers, keys and copies flagged."""
    import fsspec

    pending: RawLine | None = None
    key = b""
    recent = RecentLines()
    for url in chain.files:
        with fsspec.open(url, "rb", **chain.storage_options) as remote:
            # fsspec's readline takes no limit: a buffered reader gives bounded_lines its own.
            handle = io.BufferedReader(cast(io.RawIOBase, remote), _READ_BUFFER)
            for number, (data, terminated, too_long, digest) in enumerate(
                bounded_lines(handle), start=1
            ):
                if not too_long and not data.strip():
                    continue
                key = tap_time_key(data, key)
                line = RawLine(
                    chain.index, url, number, data, key, terminated, False, too_long, digest
                )
                if terminated and not too_long:
                    earlier = recent.seen(data, url, number)
                    if earlier is not None:
                        line.duplicate_file, line.duplicate_of = earlier
                if pending is not None:
                    yield pending
                pending = line
    if pending is not None:
        pending.last = True
        yield pending


def url_quarantined(chain: UrlChain) -> list[dict[str, Any]]:
    """The quarantine files beside a remote journal, as ``ChainChecker.quarantined`` lists them."""
    import fsspec

    fs, _ = fsspec.core.url_to_fs(chain.directory, **chain.storage_options)
    return [
        {"kind": "quarantine_file", "file": url, "size": fs.size(url.split("://", 1)[1])}
        for url in chain.quarantine
    ]


def _read_database(chain: DbChain) -> Iterator[RawLine]:
    """The validator's chain from the office database, as ``replay_database`` streams it."""
    from validator.office.database.reports import _lines
    from validator.office.database.schema import connect

    with connect(chain.url) as conn:
        yield from _lines(
            conn, chain.index, chain.validator, chain.first, chain.last, chain.as_received
        )
