# SPDX-License-Identifier: Apache-2.0
"""Unknown taps across restarts: rebuilt at start-up from a checkpoint and the entries after it.

A tap whose Close went unanswered stays pending until its card comes back; a restart must not
forget it. Reading every journal file at each start would grow without bound and would lose
the pending taps of files already shipped and deleted, so the pending set is checkpointed in
``.pending.json`` (written atomically: temporary file, fsync, rename) with the sequence number
and line hash of the last entry it covers. Start-up reads only the entries after that one; a
checkpoint that is missing, unreadable, or of another history (its hash does not match) falls
back to a full scan, with a log line.

A closing intent that no tap entry followed (the validator stopped between the card's Close and
the tap's entry: validator.journal.intent) is journaled here, before the first tap, as an
``unknown`` tap, and is pending like any other (DESIGN section 6).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from calypso.commands.records import appended_record
from validator.engine.outcome import Outcome
from validator.engine.tap import PendingUnknown, TapProcessor, TapRecord, orphaned_entry
from validator.journal.entry import EntryFormatError, JournalEntry
from validator.journal.files import first_seq, fsync_dir, journal_files, read_entries
from validator.journal.intent import open_intents, unsettled
from validator.journal.writer import Journal

CHECKPOINT_NAME = ".pending.json"
CHECKPOINT_EVERY = 1000  # taps between two checkpoints when nothing is pending-related
log = structlog.get_logger("validator.journal_pending")

# Only these lines can open or settle an unknown tap; the canonical form (sorted keys, no
# spaces, strings escaped) means these substrings cannot come from inside a string value.
_UNKNOWN_MARK = '"outcome":"unknown"'
_RESOLVES_MARK = '"resolves":{'
# A closing intent may carry ``resolves`` too: its tap's entry (or the unknown tap made of it,
# settle_intents) is what settles, not the intent.
_INTENT_MARK = '"kind":"intent"'


class _Damaged(Exception):
    """The checkpoint cannot be trusted (the message says why)."""


def save_pending(journal: Journal, pending: Mapping[bytes, PendingUnknown]) -> None:
    """Write the checkpoint of ``pending`` as of the journal's last entry (atomically)."""
    document = {
        "version": 1,
        "seq": journal.last_seq,
        "hash": journal.report.last_hash,
        "pending": [
            {
                "card": card.hex().upper(),
                "seq": item.seq,
                "tap": item.tap,
                "transaction_counter": item.transaction_counter,
                "event_sent": item.event_sent.hex().upper() if item.event_sent else None,
                "debit_sent": item.debit_sent,
            }
            for card, item in pending.items()
        ],
    }
    target = journal.directory / CHECKPOINT_NAME
    temporary = target.with_name(CHECKPOINT_NAME + ".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(json.dumps(document, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    fsync_dir(journal.directory)


def restore_pending(processor: TapProcessor, journal: Journal) -> int:
    """Rebuild the processor's unknown taps at start-up; returns how many are pending.

    Tap numbers continue from the journal's sequence so that ``resolves.tap`` stays
    meaningful. Open closing intents are journaled as unknown taps first (JournalError if
    they cannot be: the validator must not serve taps before). The checkpoint is written
    again, covering the journal's last entry.
    """
    try:
        covered, pending = _load(journal)
        paths = _files_after(journal.directory, covered)
    except _Damaged as exc:
        covered, pending, paths = 0, {}, journal_files(journal.directory)
        if paths:
            log.warning("pending_full_scan", reason=str(exc), files=len(paths))
    _replay(paths, covered, pending)
    settle_intents(journal, pending)
    processor.pending.update(pending)
    processor.taps = max(processor.taps, journal.last_seq)
    try:
        save_pending(journal, processor.pending)
    except OSError as exc:  # the next start-up scans fully: slower, never wrong
        log.warning("pending_checkpoint_failed", error=str(exc))
    return len(pending)


def _load(journal: Journal) -> tuple[int, dict[bytes, PendingUnknown]]:
    """The checkpoint's covered seq and pending taps, once checked against the journal."""
    path = journal.directory / CHECKPOINT_NAME
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise _Damaged("no checkpoint") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise _Damaged(f"unreadable checkpoint: {type(exc).__name__}") from None
    try:
        seq, digest, items = document["seq"], document["hash"], document["pending"]
        if document["version"] != 1 or type(seq) is not int or not isinstance(items, list):
            raise _Damaged("checkpoint of an unknown form")
        pending = {bytes.fromhex(item["card"]): _pending(item) for item in items}
    except (KeyError, TypeError, ValueError) as exc:
        raise _Damaged(f"checkpoint of an unknown form: {type(exc).__name__}") from None
    if seq > journal.last_seq:
        raise _Damaged(f"checkpoint at seq {seq}, beyond the journal's last entry")
    if seq == journal.last_seq and digest != journal.report.last_hash:
        raise _Damaged(f"checkpoint of another history (seq {seq})")
    if seq < journal.last_seq and not _follows(journal.directory, seq, digest):
        raise _Damaged(f"checkpoint of another history (seq {seq})")
    return seq, pending


def _pending(item: Any) -> PendingUnknown:
    event = item["event_sent"]
    counter = item["transaction_counter"]
    return PendingUnknown(
        seq=int(item["seq"]),
        tap=int(item["tap"]),
        transaction_counter=int(counter) if counter is not None else None,
        event_sent=bytes.fromhex(event) if event else None,
        debit_sent=int(item["debit_sent"]),
    )


def _files_after(directory: Path, seq: int) -> list[Path]:
    """The files that may hold entries after ``seq``: from the one holding it to the newest."""
    files = journal_files(directory)
    for index in range(len(files) - 1, -1, -1):
        first = first_seq(files[index]) or _first_line_seq(files[index])
        if first is not None and first <= seq:
            return files[index:]
    return files


def _first_line_seq(path: Path) -> int | None:
    """The seq of a file's first line (old-style names do not carry it)."""
    with open(path, "rb") as handle:
        line = handle.readline(1 << 20)
    try:
        seq = json.loads(line.decode("utf-8")).get("seq")
    except (ValueError, AttributeError, RecursionError):
        return None
    return seq if type(seq) is int else None


def _follows(directory: Path, seq: int, digest: str) -> bool:
    """Whether the journal's entry ``seq + 1`` chains to ``digest`` (the checkpoint's history).

    Its ``prev`` is checked rather than entry ``seq`` itself, which may have been shipped away;
    when both were shipped (the oldest file left starts later) the checkpoint is all there is.
    """
    after = seq + 1
    needle = f'"seq":{after},'
    for _path, _number, line in read_entries(_files_after(directory, after)):
        if needle in line or line.endswith(f'"seq":{after}}}'):
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(entry, dict) and entry.get("seq") == after:
                return bool(entry.get("prev") == digest)
    # Not found: trusted only if shipping removed it along with everything before it.
    files = journal_files(directory)
    oldest = (first_seq(files[0]) or _first_line_seq(files[0])) if files else None
    return oldest is not None and oldest > after


def settle_intents(journal: Journal, pending: dict[bytes, PendingUnknown]) -> int:
    """Journal each open closing intent as an unknown tap and make it pending; how many.

    Of a card's open intents only the last counts (it holds every write sent: an earlier one
    belongs to a rerun or an earlier session of the same tap).
    """
    intents = unsettled(open_intents(journal.directory))
    for intent in intents:
        written = journal.append(orphaned_entry(intent.to_json()))
        log.warning(
            "closing_intent_unsettled",
            intent_seq=intent.seq,
            card=intent.card,
            debit=intent.debit,
            unknown_seq=written["seq"],
        )
        _apply(JournalEntry.from_json(written), pending)
    return len(intents)


def _apply(entry: JournalEntry, pending: dict[bytes, PendingUnknown]) -> None:
    """What one unknown or resolving entry does to the pending set."""
    if entry.card is None:
        return
    try:
        card = bytes.fromhex(entry.card)
    except ValueError:
        return
    if entry.resolves is not None:
        pending.pop(card, None)
    if entry.outcome == "unknown":
        pending[card] = PendingUnknown(
            seq=entry.seq,
            tap=entry.seq,
            transaction_counter=entry.transaction_counter,
            event_sent=_event_sent(list(entry.writes or ())),
            debit_sent=entry.debit or 0,
        )


def _replay(paths: list[Path], covered: int, pending: dict[bytes, PendingUnknown]) -> None:
    """Apply the unknown and resolving entries after ``covered`` to ``pending``."""
    for path, _number, line in read_entries(paths):
        if (_UNKNOWN_MARK not in line and _RESOLVES_MARK not in line) or _INTENT_MARK in line:
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            continue  # journal_verify reports unreadable lines; nothing to restore from them
        try:
            entry = JournalEntry.from_json(data)
        except EntryFormatError as exc:
            seq = data.get("seq") if isinstance(data, dict) else None
            if not isinstance(seq, int) or seq > covered:
                log.warning("pending_entry_unreadable", file=str(path), seq=seq, error=str(exc))
            continue
        if entry.seq > covered:
            _apply(entry, pending)


def _event_sent(writes: object) -> bytes | None:
    """The event record of the Append Record among a journal entry's writes (hex APDUs)."""
    for write in writes if isinstance(writes, list) else ():
        try:
            apdu = bytes.fromhex(write)
        except (TypeError, ValueError):
            continue
        record = appended_record(apdu)
        if record is not None:
            return record
    return None


class CheckpointObserver:
    """Writes the checkpoint when the pending set changes, and every ``every`` taps."""

    def __init__(
        self, processor: TapProcessor, journal: Journal, every: int = CHECKPOINT_EVERY
    ) -> None:
        self.processor = processor
        self.journal = journal
        self.every = every

    def on_idle(self) -> None:
        """Nothing to do between taps."""

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """Nothing to do on an outage."""

    def on_tap(self, record: TapRecord) -> None:
        """Checkpoint after an unknown or a resolution (rare), or every ``every`` taps."""
        changed = record.result.outcome is Outcome.UNKNOWN or record.resolved is not None
        if changed or (record.seq or 0) % self.every == 0:
            self.save()

    def save(self) -> None:
        """Write the checkpoint now (a failure is logged: the next start-up scans fully)."""
        try:
            save_pending(self.journal, self.processor.pending)
        except OSError as exc:
            log.warning("pending_checkpoint_failed", error=str(exc))
