# SPDX-License-Identifier: Apache-2.0
"""One shipping run (``validator ship``): send what is not acknowledged, delete what may go.

Order of a run: ask the collector for its anchor (and see a deleted tail: the collector holds a
seq this journal no longer has); ship each file's finished bytes (whole lines; the current
file's unfinished last line waits) unless exactly those bytes were acknowledged before; record
each acknowledgement at once; and only when the whole run had no failure, delete the closed
files wholly acknowledged and older than the retention. A file changed after it was
acknowledged is shipped again and reported (the collector records the break).

A file that grew since its acknowledgement (the current one) sends only its new lines when
the collector's anchor is the last line acknowledged of it (its seq and line hash): the
collector checks them from that anchor as it checks any file, so the chain is verified across
the two bodies. Otherwise (the anchor elsewhere: a restored database, a lost answer) the whole
finished part goes, and the lines the collector holds are duplicates that add nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from validator.app.ship.client import (
    CollectorClient,
    CollectorUnreachableError,
    FileRefusedError,
    TlsRefusedError,
)
from validator.app.ship.protocol import Refusal
from validator.app.ship.settings import ShippingSettings
from validator.app.ship.state import Acked, ShipState
from validator.journal.files import fsync_dir, highest_seq, journal_files, parse_entry

Log = Callable[[str], None]


@dataclass
class ShipReport:
    """What one run did; ``problems`` are integrity findings, ``failure`` a transport one."""

    shipped: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # acknowledged before, unchanged
    refused: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failure: str | None = None  # unreachable, TLS refused, database down or full: run stopped
    tls_refused: bool = False
    taps: int = 0  # new taps the collector stored
    anchor: tuple[int, str | None] = (0, None)


def finished_part(path: Path) -> bytes:
    """A file's bytes up to its last newline: the lines the writer finished."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def last_seq(data: bytes) -> int:
    """The seq of the last entry in ``data`` (0 when none parses)."""
    for raw in reversed(data.splitlines()):
        entry = parse_entry(raw)
        if entry is not None:
            return int(entry["seq"])
    return 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ship_journal(
    directory: Path,
    client: CollectorClient,
    settings: ShippingSettings,
    *,
    now: Callable[[], dt.datetime] = _now,
    log: Log = lambda _: None,
) -> ShipReport:
    """Ship the journal in ``directory`` once; never raises for the collector's failures."""
    report = ShipReport()
    state = ShipState.load(directory)
    if state.problem:
        report.problems.append(state.problem)
    files = journal_files(directory)
    local_head = max((highest_seq(path) for path in files), default=0)
    try:
        anchor = client.anchor()
        report.anchor = (anchor.seq, anchor.hash)
        if anchor.seq > local_head:
            report.problems.append(
                f"deleted tail: the collector holds this validator up to seq {anchor.seq}, "
                f"the journal here ends at seq {local_head}"
            )
        for path in files:
            _ship_file(path, client, state, report, now, log)
            state.save(directory)
    except TlsRefusedError as exc:
        report.failure, report.tls_refused = str(exc), True
    except CollectorUnreachableError as exc:
        report.failure = str(exc)
    except FileRefusedError as exc:  # a refusal of the collector itself, not of one file
        report.failure = str(exc)
    if state.anchor_seq > local_head:
        report.problems.append(
            f"deleted tail: seq {state.anchor_seq} was acknowledged, "
            f"the journal here ends at seq {local_head}"
        )
    if report.failure is None and not report.refused and not report.problems:
        _delete_acknowledged(directory, files, state, settings, report, now, log)
        state.save(directory)
    return report


def _ship_file(
    path: Path,
    client: CollectorClient,
    state: ShipState,
    report: ShipReport,
    now: Callable[[], dt.datetime],
    log: Log,
) -> None:
    data = finished_part(path)
    if not data:
        return
    digest = hashlib.sha256(data).hexdigest()
    acked = state.files.get(path.name)
    if acked is not None:
        if acked.size == len(data) and acked.sha256 == digest:
            report.already.append(path.name)
            return
        before = hashlib.sha256(data[: acked.size]).hexdigest()
        if acked.size > len(data) or before != acked.sha256:
            report.problems.append(
                f"{path.name}: changed after the collector acknowledged it: shipped again"
            )
    seq = last_seq(data)
    body = data
    if acked is not None and _continues(data, acked, report.anchor):
        body = data[acked.size :]  # the anchor is its last acknowledged line: the rest goes
    try:
        ack = client.ship(path.name, body)
    except FileRefusedError as exc:
        if exc.refusal in (Refusal.DATABASE_UNAVAILABLE, Refusal.DATABASE_FULL):
            raise CollectorUnreachableError(f"{path.name}: {exc}") from None
        report.refused.append(f"{path.name}: {exc}")
        log(f"{path.name}: refused: {exc}")
        return
    report.anchor = (ack.anchor.seq, ack.anchor.hash)
    state.anchor_seq, state.anchor_hash = ack.anchor.seq, ack.anchor.hash
    report.taps += int(ack.answer.get("new_taps", 0))
    if ack.anchor.seq < seq:  # stored, but held after a gap: not acknowledged
        report.refused.append(
            f"{path.name}: held by the collector (its anchor is seq {ack.anchor.seq}, "
            f"the file ends at seq {seq})"
        )
        return
    state.files[path.name] = Acked(len(data), digest, seq, now().isoformat())
    (report.shipped if ack.status == "ingested" else report.already).append(path.name)
    log(f"{path.name}: {ack.status}, anchored at seq {ack.anchor.seq}")


def _continues(data: bytes, acked: Acked, anchor: tuple[int, str | None]) -> bool:
    """Whether ``data`` grew from its acknowledged start, whose last line is the collector's
    anchor: then the new lines chain from the anchor by themselves."""
    if acked.size >= len(data) or acked.size == 0 or anchor[0] != acked.last_seq:
        return False
    start = data[: acked.size]
    if hashlib.sha256(start).hexdigest() != acked.sha256:
        return False  # changed after acknowledgement: the whole file goes again
    last_line = start[:-1].rsplit(b"\n", 1)[-1]
    return hashlib.sha256(last_line).hexdigest() == anchor[1]


def _delete_acknowledged(
    directory: Path,
    files: list[Path],
    state: ShipState,
    settings: ShippingSettings,
    report: ShipReport,
    now: Callable[[], dt.datetime],
    log: Log,
) -> None:
    """Delete the closed files (all but the newest) wholly acknowledged and old enough."""
    limit = now().timestamp() - settings.retention_days * 86_400
    for path in files[:-1]:
        acked = state.files.get(path.name)
        if acked is None or acked.last_seq > state.anchor_seq:
            continue
        info = path.stat()
        if info.st_size != acked.size or info.st_mtime > limit:
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != acked.sha256:
            continue  # changed since: the next run ships it again
        path.unlink()
        report.deleted.append(path.name)
        log(f"{path.name}: acknowledged, deleted")
    if report.deleted:
        fsync_dir(directory)
    present = {path.name for path in journal_files(directory)}
    state.files = {name: acked for name, acked in state.files.items() if name in present}


def unshipped(directory: Path) -> tuple[int, int]:
    """The journal files (and their bytes) not wholly acknowledged: for the doctor."""
    state = ShipState.load(directory)
    count = size = 0
    for path in journal_files(directory):
        acked = state.files.get(path.name)
        length = path.stat().st_size
        if acked is None or acked.size < length:
            count += 1
            size += length - (acked.size if acked else 0)
    return count, size
