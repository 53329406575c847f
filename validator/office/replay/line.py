# SPDX-License-Identifier: Apache-2.0
"""What replay learns from journal lines on their own: the part that runs on every core.

``Analyser.batch`` takes a batch of lines (with their file and line number) and, for each,
hashes it (for the chain), parses it, checks its HMAC, and for a tap inside the time range
replays its decision and recomputes its MACs. It returns compact, cheaply pickled results: one
``ChainFacts`` per line, one ``ReconTap`` per tap that matters to reconciliation, and the
batch's ``Totals``. The chain, the reconciliation and the report are built from them in file
and time order by validator.office.replay.audit; ``analyse_batch`` is the unit of work of a
``--jobs`` worker process.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from calypso.commands.records import appended_record
from calypso.errors import CardResponseError
from calypso.pki.chain import TrustedRoot
from readers.apdu import ApduError
from validator.engine.fares.decide import FareRules
from validator.journal.entry import EntryFormatError, JournalEntry, bounded_int
from validator.journal.intent import ClosingIntent, read_record
from validator.journal.jsonline import loads
from validator.journal.writer import entry_mac
from validator.office.replay.decisions import parse_time, replay_decision, replay_layouts
from validator.office.replay.findings import Totals
from validator.office.replay.mac import NOT_CHECKED, UNVERIFIABLE, MacCheck, MacChecker
from validator.office.replay.pki import PkiAuditor, is_pki_tap

_EVENT_PREFIX = "08:"
_NOT_CHECKED = MacCheck(NOT_CHECKED)
_NO_ROOT = MacCheck(UNVERIFIABLE, "a PKI session: give its root key file (--pki-root)", pki=True)


@dataclass(frozen=True, slots=True)
class Options:
    """What every worker needs to analyse lines (picklable)."""

    rules: FareRules | None = None  # None: decisions are not replayed
    journal_key: bytes | None = None
    keys: Path | None = None  # CSIM1 key file for the software SAM
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    layouts: tuple[tuple[str, str], ...] = ()  # card layout by AID (settings ``layouts``)
    taps: bool = True  # False: integrity only (no per-tap analysis at all)
    record_cache: int = 4096  # decoded card records kept by their bytes (0: none)
    pki_roots: tuple[TrustedRoot, ...] = ()  # root public keys: PKI taps verified (in order)


class ChainFacts(NamedTuple):
    """What the chain check needs of one line."""

    digest: str
    seq: int | None  # None: not a journal entry
    prev: str
    hmac_ok: bool | None  # None: no journal key given
    error: str
    in_range: bool
    validator: str = ""  # the entry's validator, for the anchors
    malformed: bool = False  # chained, but its fields do not read as a JournalEntry
    kind: str = ""  # "intent" for a closing intent; "" for a tap entry
    card: str | None = None  # whose tap (an intent is settled by a tap entry of its card)
    settles: int | None = None  # an unknown tap made of an open intent: that intent's seq


class ReconTap(NamedTuple):
    """What reconciliation needs of one tap in range (card taps only)."""

    position: int  # of the line in its batch
    time: dt.datetime
    validator: str
    station: int
    card: str
    outcome: str
    debit: int
    events: tuple[str, ...]  # event records read (hex), to recognise an earlier lost Close
    event_sent: str | None  # the event record this tap appended (hex), if any
    resolves: dict[str, Any] | None


@dataclass
class BatchResult:
    """One batch analysed."""

    chain: list[ChainFacts] = field(default_factory=list)
    taps: list[ReconTap] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


def event_sent(writes: Any) -> str | None:
    """The event record appended by the tap's writes (Append Record data), in hex."""
    if not isinstance(writes, list):
        return None
    for write in writes:
        record = appended_record(bytes.fromhex(str(write)))
        if record is not None:
            return record.hex().upper()
    return None


def entry_facts(data: bytes, key: bytes | None) -> tuple[ChainFacts, dict[str, Any] | None]:
    """What the chain needs of one line, and the entry parsed (None: not a journal entry)."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        entry = loads(data)
        seq = int(bounded_int("seq", entry["seq"]))
        prev = str(entry["prev"])
    except (ValueError, KeyError, TypeError) as exc:
        return ChainFacts(digest, None, "", None, f"not a journal entry ({exc})", False), None
    validator = str(entry.get("validator", ""))
    hmac_ok: bool | None = None
    if key is not None:
        mac = entry.get("hmac")
        try:
            hmac_ok = isinstance(mac, str) and hmac.compare_digest(mac, entry_mac(key, entry))
        except RecursionError:  # too deep to serialise: no valid entry is
            hmac_ok = False
    kind, card, settles = entry.get("kind"), entry.get("card"), entry.get("intent")
    return (
        ChainFacts(
            digest,
            seq,
            prev,
            hmac_ok,
            "",
            False,
            validator,
            False,
            kind if isinstance(kind, str) else "",
            card if isinstance(card, str) else None,
            settles if type(settles) is int else None,
        ),
        entry,
    )


class Analyser:
    """Analyses lines with one set of options (and one SAM, when MACs are recomputed)."""

    def __init__(self, options: Options, macs: MacChecker | None = None) -> None:
        self.options = options
        self.layouts, self.default_layout = replay_layouts(
            dict(options.layouts), options.record_cache
        )
        self.macs = macs
        if macs is None and options.keys is not None:
            self.macs = MacChecker.from_keys(options.keys)
        self.pki = PkiAuditor(options.pki_roots) if options.pki_roots else None

    def batch(self, lines: list[bytes], places: list[tuple[str, int]]) -> BatchResult:
        """Analyse a batch; ``places`` gives each line's file and line number."""
        result = BatchResult()
        for index, data in enumerate(lines):
            result.chain.append(self._line(index, data, places[index], result))
        return result

    def _line(
        self, index: int, data: bytes, place: tuple[str, int], out: BatchResult
    ) -> ChainFacts:
        facts, raw = entry_facts(data, self.options.journal_key)
        if raw is None or facts.seq is None or not self.options.taps:
            return facts
        try:
            entry = read_record(raw)
        except EntryFormatError as exc:
            # Every entry the writer writes reads back: one that does not was changed or
            # written by a newer release. It is a break of integrity, not a tap left out.
            return facts._replace(error=f"malformed entry: {exc}", malformed=True)
        if isinstance(entry, ClosingIntent):
            return facts  # not a tap: the chain checker follows it to its tap's entry
        try:
            in_range = self._tap(index, entry, place, facts.seq, out)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            # A field of the wrong type or shape (an edited or corrupted entry), a newer schema,
            # or one nested too deeply to walk (issue 15.13).
            return facts._replace(error=f"malformed entry: {exc}")
        except (ApduError, CardResponseError) as exc:  # a journaled answer that does not parse
            return facts._replace(error=f"malformed trace: {exc}")
        # ChainFacts._make of the fields: NamedTuple._replace costs twice as much, every line.
        return ChainFacts._make((*facts[:5], in_range, *facts[6:]))

    def _tap(
        self, index: int, entry: JournalEntry, place: tuple[str, int], seq: int, out: BatchResult
    ) -> bool:
        options = self.options
        when = parse_time(entry.when)
        pki = self.pki is not None and is_pki_tap(entry)
        if pki and self.pki is not None:
            self.pki.harvest(entry, place)  # before the range: later taps may name them
        if (options.since is not None and when < options.since) or (
            options.until is not None and when >= options.until
        ):
            return False
        mac = self._mac(entry, when, pki, place)
        rules = options.rules
        check = None
        if rules is not None:
            check = replay_decision(entry, rules, self.layouts, when, self.default_layout)
        validator = entry.validator or ""
        out.totals.add((validator, place[0], place[1], seq), entry, mac, check)
        card = entry.card
        if card is not None:
            state_read = entry.state_read or {}
            resolves = entry.resolves
            out.taps.append(
                ReconTap(
                    index,
                    when,
                    validator,
                    entry.station or 0,
                    card,
                    entry.outcome or "",
                    entry.debit or 0,
                    tuple([v for k, v in state_read.items() if k.startswith(_EVENT_PREFIX)]),
                    event_sent(list(entry.writes or ())),
                    resolves.to_json() if resolves is not None else None,
                )
            )
        return True

    def _mac(
        self, entry: JournalEntry, when: dt.datetime, pki: bool, place: tuple[str, int]
    ) -> MacCheck:
        """The tap's authenticity: its PKI signature, or its symmetric MACs recomputed."""
        if pki and self.pki is not None:
            return self.pki.check(entry, when.date(), place)
        if self.macs is None:
            return _NOT_CHECKED
        if self.pki is None and is_pki_tap(entry):
            return _NO_ROOT  # signed by the card's key, not with the SAM's keys
        return self.macs.check(entry)


def tune_gc() -> None:
    """Fewer young-generation collections: replay allocates much and keeps little."""
    gc.set_threshold(50_000, 20, 100)


_worker: Analyser | None = None


def init_worker(options: Options) -> None:
    """Process-pool initialiser: one Analyser (and one software SAM) per worker."""
    global _worker
    tune_gc()
    _worker = Analyser(options)


def analyse_batch(lines: list[bytes], places: list[tuple[str, int]]) -> BatchResult:
    """Analyse a batch of lines in a worker process."""
    if _worker is None:  # pragma: no cover - the pool always runs the initialiser
        raise RuntimeError("worker not initialised")
    return _worker.batch(lines, places)
