# SPDX-License-Identifier: Apache-2.0
"""The tap journal: append-only JSON Lines, fsynced, chained by SHA-256, optionally HMACed.

One entry per tap, written and fsynced before the gate gives feedback (DESIGN section 6).
Each entry carries ``prev``, the SHA-256 of the previous entry's line (across files), so a
removed or edited entry breaks the chain. With a journal key each entry also carries ``hmac``,
HMAC-SHA256 over the line without that field. Files are named by their first seq and rotate
by size or when the day changes (journal_files). At start-up a torn or foreign tail is moved to
a quarantine file and reported, never dropped. Before a tap's Close the engine calls
``ensure_room`` (journal_room): a tap that cannot be recorded is not charged. Then, before each
Close that may commit writes, ``write_intent`` writes the closing intent (journal.intent) and
fsyncs it on a thread of its own while the card executes the session's writes; the engine
waits for it just before sending Close. One writer per directory (the directory and its
``.lock`` are flocked) and, given ``validator_id``, per validator.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from validator.engine.recording import JournalError
from validator.journal.entry import TAP_SCHEMA, EntryFormatError, JournalEntry
from validator.journal.files import (
    FILE_PREFIX,
    FILE_SUFFIX,
    QUARANTINE_PREFIX,
    Quarantined,
    file_day,
    file_name,
    first_seq,
    fsync_dir,
    highest_seq,
    journal_files,
    last_entry,
    line_hash,
    read_entries,
    repair_tail,
)
from validator.journal.intent import INTENT_KIND, INTENT_SCHEMA, ClosingIntent
from validator.journal.room import (
    RESERVE_NAME,
    free_bytes,
    has_reserve,
    make_reserve,
    release_reserve,
    write_all,
)

__all__ = [
    "FILE_PREFIX",
    "FILE_SUFFIX",
    "GENESIS",
    "QUARANTINE_PREFIX",
    "RESERVE_NAME",
    "Journal",
    "OpenReport",
    "PendingIntent",
    "Quarantined",
    "canonical",
    "entry_mac",
    "journal_files",
    "line_hash",
    "read_entries",
]

GENESIS = "0" * 64
log = structlog.get_logger("validator.journal")


def canonical(entry: Mapping[str, Any]) -> str:
    """The one serialisation of an entry: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_mac(key: bytes, entry: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the canonical entry without its ``hmac`` field, in hex."""
    body = {k: v for k, v in entry.items() if k != "hmac"}
    return hmac.new(key, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class OpenReport:
    """What start-up found: where the chain continues and what was set aside."""

    last_seq: int = 0
    last_hash: str = GENESIS
    files: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass(eq=False)
class _InFlight:
    """A closing intent written and being fsynced: what to undo if the fsync fails."""

    future: Future[None]
    handle: IO[bytes]
    start: int  # the file's size before the intent's line
    last_seq: int  # the chain's head before it
    last_hash: str
    settled: bool = False
    error: BaseException | None = None


class PendingIntent:
    """A closing intent on its way to the disk (``Journal.write_intent``)."""

    def __init__(self, journal: Journal, written: dict[str, Any], flight: _InFlight) -> None:
        self._journal = journal
        self.written = written
        self._flight = flight

    def wait(self) -> dict[str, Any]:
        """The intent as written, once durable; JournalError (and its line cut away) if not."""
        self._journal._settle()
        error = self._flight.error
        if error is not None:
            raise JournalError(f"cannot make the closing intent durable: {error}") from error
        return self.written


def _fsync(fd: int) -> None:
    os.fsync(fd)  # looked up at each call: the benchmark times it by replacing os.fsync


class Journal:
    """A single-writer journal in one directory (an exclusive lock keeps a second writer out)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        key: bytes | None = None,
        max_bytes: int = 16 * 1024 * 1024,
        clock: Callable[[], dt.datetime] | None = None,
        validator_id: str | None = None,
        reserve_bytes: int = 64 * 1024,
        min_free: int = 64 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self._key = key
        self.max_bytes = max_bytes
        self.validator_id = (
            validator_id  # when set, a journal whose newest entry is another's is refused
        )
        # A preallocated file released when the disk fills between the pre-Close check and
        # the entry's write (DESIGN section 6: a committed tap must find room for its entry).
        self.reserve_bytes = reserve_bytes
        self.min_free = min_free  # free bytes required, beyond the reserve, to start a tap
        self._clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(dt.UTC))
        self._file: IO[bytes] | None = None
        self._broken: str | None = None  # why appends are refused until the next open
        self._path: Path | None = None
        self._lock: IO[str] | None = None
        self._dir_fd: int | None = None  # flocked too: deleting .lock lets no second writer in
        self._day: str | None = None  # the day in the current file's name
        self._in_flight: _InFlight | None = None  # the closing intent being fsynced
        self._fsyncer: ThreadPoolExecutor | None = None
        self.report = OpenReport()

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r}, hmac={'on' if self._key else 'off'})"

    @property
    def last_seq(self) -> int:
        """Sequence number of the last committed entry (0 when empty)."""
        return self.report.last_seq

    def open(self) -> OpenReport:
        """Lock the directory, repair a torn tail, and find where the chain continues."""
        self._take_lock()
        try:
            return self._open_locked()
        except BaseException:
            self.close()
            raise

    def _take_lock(self) -> None:
        """Lock the directory itself and its ``.lock`` file (older versions lock only that)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(self._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._lock = open(self.directory / ".lock", "a", encoding="utf-8")
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise JournalError(f"{self.directory}: another process writes this journal") from None
        except OSError as exc:
            self.close()
            raise JournalError(f"{self.directory}: cannot open the journal: {exc}") from None

    def _open_locked(self) -> OpenReport:
        files = journal_files(self.directory)
        self.report = OpenReport(files=len(files))
        self._broken = None
        if not self._has_reserve():
            try:
                self._make_reserve()
            except OSError:
                pass  # ensure_room says so before the first tap: the gate stays out of service
        floor = 0  # no seq at or below it may be written again (see highest_seq)
        for path in reversed(files):
            quarantined = repair_tail(path, self.directory)
            if quarantined is not None:
                self.report.quarantined.append(quarantined)
                # DESIGN section 6: set aside and reported, never silently dropped.
                log.warning(
                    "journal_quarantined",
                    file=str(quarantined.source),
                    quarantine=str(quarantined.quarantine),
                    size=quarantined.size,
                )
            floor = max(floor, highest_seq(path))
            last = last_entry(path)
            if last is not None:
                entry, line = last
                self._check_owner(entry)
                self.report.last_seq = max(entry["seq"], floor)
                self.report.last_hash = line_hash(line)
                break
        return self.report

    def _check_owner(self, entry: Mapping[str, Any]) -> None:
        """Refuse a folder whose newest entry another validator wrote (no silent takeover)."""
        owner = entry.get("validator")
        if self.validator_id is None or not isinstance(owner, str) or owner == self.validator_id:
            return
        raise JournalError(
            f"{self.directory}: the newest entry (seq {entry['seq']}) was written by validator "
            f"{owner!r}, not {self.validator_id!r}: give each validator its own journal_dir"
        )

    def append(self, entry: Mapping[str, Any], *, reserve: bool = True) -> dict[str, Any]:
        """Add schema, sequence, time and chain fields, write one line, fsync it; return it.

        The entry is checked by ``JournalEntry`` first (JournalError naming the field if it
        would not read back); the line is its canonical JSON, HMACed as such.

        ``reserve``: on a full disk, spend the reserve file to write this entry (a tap the card
        may have committed); an aborted tap's entry is written only if it fits as things are.
        """
        self._settle()
        if self._lock is None:
            raise JournalError("journal not opened")
        if self._broken is not None:
            raise JournalError(self._broken)
        now = self._clock()
        full: dict[str, Any] = dict(entry)
        full.setdefault("schema", TAP_SCHEMA)
        full["seq"] = self.report.last_seq + 1
        full.setdefault("time", now.isoformat())
        full["prev"] = self.report.last_hash
        try:  # what is written always reads back (from_json(d).to_json() == d, tested)
            JournalEntry.from_json(full)
        except EntryFormatError as exc:
            raise JournalError(f"not a journal entry: {exc}") from exc
        if self._key is not None:
            full["hmac"] = entry_mac(self._key, full)
        line = canonical(full)
        data = (line + "\n").encode("utf-8")
        try:
            handle = self._writable(now, len(data))
            start = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            raise JournalError(f"cannot open the journal file: {exc}") from exc
        try:
            self._write_line(handle, start, data)
        except OSError as exc:
            # The disk filled since ensure_room: give the reserve back to the filesystem and
            # write once more, since the card may have committed already.
            if not reserve or not self._release_reserve():
                raise JournalError(f"cannot write the journal: {exc}") from exc
            log.warning("journal_reserve_used", directory=str(self.directory))
            try:
                handle = self._writable(now, len(data))
                start = os.fstat(handle.fileno()).st_size
                self._write_line(handle, start, data)
            except OSError as again:
                raise JournalError(f"cannot write the journal: {again}") from again
        self.report.last_seq = full["seq"]
        self.report.last_hash = line_hash(line)
        return full

    def write_intent(self, intent: Mapping[str, Any]) -> PendingIntent:
        """Write a closing intent's line now and fsync it on the journal's own thread.

        Called before a Close that may commit writes (DESIGN section 6); the caller sends
        the Close only once ``wait()`` on the result returned. The line takes the next seq
        and chain fields at once, so the tap's entry follows it. JournalError (nothing left
        written) if the intent would not read back or its line cannot be written; the reserve
        is not spent on it: a tap whose intent finds no room is not charged.
        """
        self._settle()
        if self._lock is None:
            raise JournalError("journal not opened")
        if self._broken is not None:
            raise JournalError(self._broken)
        now = self._clock()
        full: dict[str, Any] = dict(intent)
        full["kind"] = INTENT_KIND
        full["schema"] = INTENT_SCHEMA
        full["seq"] = self.report.last_seq + 1
        full.setdefault("time", now.isoformat())
        full["prev"] = self.report.last_hash
        try:
            ClosingIntent.from_json(full)
        except EntryFormatError as exc:
            raise JournalError(f"not a closing intent: {exc}") from exc
        if self._key is not None:
            full["hmac"] = entry_mac(self._key, full)
        line = canonical(full)
        data = (line + "\n").encode("utf-8")
        try:
            handle = self._writable(now, len(data))
            start = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            raise JournalError(f"cannot open the journal file: {exc}") from exc
        try:
            write_all(handle, data)
        except OSError as exc:
            self._undo(handle, start)
            raise JournalError(f"cannot write the closing intent: {exc}") from exc
        if self._fsyncer is None:
            self._fsyncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        flight = _InFlight(
            self._fsyncer.submit(_fsync, handle.fileno()),
            handle,
            start,
            self.report.last_seq,
            self.report.last_hash,
        )
        self._in_flight = flight
        self.report.last_seq = full["seq"]
        self.report.last_hash = line_hash(line)
        return PendingIntent(self, full, flight)

    def _settle(self) -> None:
        """Wait for the closing intent being fsynced; if its fsync failed, cut its line away.

        Every other use of the file comes after this: nothing is written behind an intent
        whose durability is not known, and a failed one leaves no trace for a Close to follow.
        """
        flight, self._in_flight = self._in_flight, None
        if flight is None or flight.settled:
            return
        flight.settled = True
        flight.error = flight.future.exception()
        if flight.error is None:
            return
        log.warning("journal_intent_not_durable", error=str(flight.error))
        self._undo(flight.handle, flight.start)
        self.report.last_seq, self.report.last_hash = flight.last_seq, flight.last_hash

    def _write_line(self, handle: IO[bytes], start: int, data: bytes) -> None:
        """Write and fsync one line, or cut the file back to ``start`` and raise OSError."""
        try:
            write_all(handle, data)
            os.fsync(handle.fileno())
        except OSError:
            # A full disk writes part of the line and fails: cut it away so that the refused
            # entry can never surface later and the next entry continues the chain.
            self._undo(handle, start)
            raise

    def ensure_room(self) -> None:
        """Raise JournalError unless the next entry is sure to find room (run before Close).

        Sure means: appends are not refused, the reserve file is in place (made again if it
        was spent), and the filesystem has ``min_free`` bytes free besides. A tap whose check
        fails is aborted before Close: a tap that cannot be recorded is not charged.
        """
        self._settle()
        if self._lock is None:
            raise JournalError("journal not opened")
        if self._broken is not None:
            raise JournalError(self._broken)
        if not self._has_reserve():
            try:
                self._make_reserve()
            except OSError as exc:
                raise JournalError(f"the journal has no room for its reserve: {exc}") from exc
        free = self._free_bytes()
        if free < self.min_free:
            raise JournalError(
                f"the journal has no room: {free} bytes free, {self.min_free} required"
            )

    def _free_bytes(self) -> int:
        """Bytes the validator's user may still write on the journal's filesystem."""
        try:
            return free_bytes(self.directory)
        except OSError as exc:
            raise JournalError(f"the journal has no room: cannot stat its disk: {exc}") from exc

    def _has_reserve(self) -> bool:
        return has_reserve(self.directory, self.reserve_bytes)

    def _make_reserve(self) -> None:
        make_reserve(self.directory, self.reserve_bytes)

    def _release_reserve(self) -> bool:
        return release_reserve(self.directory)

    def check_writable(self, size: int = 64 * 1024) -> None:
        """Write, fsync and remove a probe of ``size`` bytes beside the journal, or raise.

        After a failed append the gate stays out of service until this passes: a tap is not
        served unless its entry has room to be written.
        """
        self.ensure_room()
        probe = self.directory / ".probe"
        try:
            with open(probe, "wb", buffering=0) as handle:
                write_all(handle, b"\0" * size)
                os.fsync(handle.fileno())
        except OSError as exc:
            raise JournalError(f"the journal has no room: {exc}") from exc
        finally:
            probe.unlink(missing_ok=True)

    def _undo(self, handle: IO[bytes], size: int) -> None:
        """Cut a failed write back to ``size`` bytes and drop the file handle."""
        try:
            os.ftruncate(handle.fileno(), size)
            os.fsync(handle.fileno())
        except OSError as exc:
            # The tail stays torn on disk: refuse every append until a restart quarantines it.
            self._broken = f"cannot write the journal: a failed write could not be undone: {exc}"
        try:
            handle.close()
        except OSError:
            pass
        self._file = None
        self._path = None

    def close(self) -> None:
        """Close the current file and release the locks."""
        self._settle()
        if self._fsyncer is not None:
            self._fsyncer.shutdown(wait=True)
            self._fsyncer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self._path = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)  # closing the last descriptor releases its flock
            self._dir_fd = None

    def __enter__(self) -> Journal:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writable(self, now: dt.datetime, size: int) -> IO[bytes]:
        """The file for the next entry: a new one, named by its first seq, on a new day or size.

        Any change of day starts a new file, forward or back: the name's seq keeps the order.
        """
        day = now.strftime("%Y%m%d")
        path: Path | None = None
        if self._file is not None and self._path is not None:
            if self._day == day and os.fstat(self._file.fileno()).st_size + size <= self.max_bytes:
                return self._file
            self._file.close()
            self._file = None
        else:
            files = journal_files(self.directory)
            newest = files[-1] if files else None
            # After a restart: continue the newest file if it is new-style, today's, with room,
            # and (left empty by a quarantine) still named by the seq that comes next.
            named = first_seq(newest) if newest is not None else None
            if (
                newest is not None
                and named is not None
                and file_day(newest) == day
                and newest.stat().st_size + size <= self.max_bytes
                and (newest.stat().st_size > 0 or named == self.report.last_seq + 1)
            ):
                path = newest
        if path is None:
            path = self.directory / file_name(self.report.last_seq + 1, day)
        created = not path.exists()
        # Unbuffered: a failed write leaves nothing behind in a buffer to be flushed later.
        self._file = open(path, "ab", buffering=0)
        self._path = path
        self._day = day
        if created:
            fsync_dir(self.directory)
        return self._file
