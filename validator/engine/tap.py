# SPDX-License-Identifier: Apache-2.0
"""One tap as the validator owns it: attempts, unknown-outcome tracking, and the journal entry.

The procedure runs one attempt. Here a session that failed before Close, on a card still in
the field, is rerun once inside the time budget (never a write resent inside a session: the
rerun is a new session). Taps whose Close went unanswered (``unknown``) are remembered by card
serial; when that card comes back, the event record read from it tells whether the lost Close
committed, and the journal records the resolution.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from readers.base import CardConnection
from sam.base import Sam
from sam.policy import AuthorizedKeys
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.layouts.base import CardLayout
from validator.engine.outcome import Outcome, TapResult
from validator.engine.recording import (
    JOURNAL_UNAVAILABLE,
    JournalError,
    TapNotServedError,
    TapRecorder,
)
from validator.engine.session import Ratification

EVENT_PREFIX = "08:"  # event log records, as keyed in TapResult.state_read


@dataclass(frozen=True, slots=True)
class PendingUnknown:
    """A tap whose Close went unanswered: what was sent, to recognise it on the card later."""

    seq: int
    tap: int
    transaction_counter: int | None
    event_sent: bytes | None
    debit_sent: int


@dataclass
class TapRecord:
    """A processed tap: the result, its journal entry, and what it resolved."""

    index: int
    result: TapResult
    entry: dict[str, Any]
    resolved: dict[str, Any] | None = None
    recovered_from: int | None = None

    @property
    def seq(self) -> int | None:
        """The journal sequence number of this tap."""
        seq = self.entry.get("seq")
        return seq if isinstance(seq, int) else None


@dataclass
class TapProcessor:
    """Validates taps for one validator and journals each before feedback."""

    sam: Sam
    rules: FareRules
    aids: Sequence[bytes]
    validator_id: str
    journal: TapRecorder | None = None
    ratification: Ratification = Ratification.COMMAND
    budget_s: float = 0.5
    authorized: AuthorizedKeys | None = None
    multiple_session: bool = False
    layouts: Mapping[bytes, CardLayout] | None = None
    pending: dict[bytes, PendingUnknown] = field(default_factory=dict)
    last_paid: dict[bytes, int] = field(default_factory=dict)
    taps: int = 0

    def process(self, connection: CardConnection, context: TapContext) -> TapRecord:
        """Run the tap (with one rerun if allowed), resolve a pending unknown, journal it."""
        start = time.perf_counter()
        deadline = time.monotonic() + self.budget_s  # a card too slow to answer is cut here
        result = self._attempt(connection, context, deadline)
        if result.retryable and time.perf_counter() - start < self.budget_s / 2:
            retry = self._attempt(connection, context, deadline)
            result = replace(
                retry,
                attempts=2,
                card_trace=result.card_trace + retry.card_trace,
                sam_trace=result.sam_trace + retry.sam_trace,
            )
        result = replace(result, elapsed=time.perf_counter() - start)
        self.taps += 1
        record = TapRecord(self.taps, result, {})
        pending = dict(self.pending)  # put back if this tap's entry cannot be written
        self._resolve(record)
        if result.serial is not None and result.outcome is Outcome.RECOVERED:
            record.recovered_from = record.recovered_from or self.last_paid.get(result.serial)
        try:
            record.entry = self._journal(record, context)
        except TapNotServedError as exc:
            if not exc.journaled:
                self.pending = pending
            raise
        if result.serial is not None and result.outcome in (Outcome.GRANTED, Outcome.UNKNOWN):
            self.last_paid[result.serial] = record.index
        if result.outcome is Outcome.UNKNOWN and result.serial is not None:
            self.pending[result.serial] = PendingUnknown(
                record.seq or 0,
                record.index,
                result.transaction_counter,
                result.event_sent,
                result.sent_debit,
            )
        return record

    def prefetch(self) -> None:
        """Between taps: fetch the next SAM challenge off the passenger's time."""
        self.sam.prefetch()

    def _attempt(
        self, connection: CardConnection, context: TapContext, deadline: float | None = None
    ) -> TapResult:
        return validate(
            connection,
            self.sam,
            self.rules,
            context,
            aids=self.aids,
            ratification=self.ratification,
            authorized=self.authorized,
            multiple_session=self.multiple_session,
            layouts=self.layouts,
            # The older events matter only to settle an unknown tap of this card.
            history=self.pending.__contains__,
            deadline=deadline,
            before_close=self.journal.ensure_room if self.journal is not None else None,
        )

    def _resolve(self, record: TapRecord) -> None:
        """Settle an earlier unknown tap of this card from what this tap read."""
        result = record.result
        if result.serial is None or result.serial not in self.pending or not result.state_read:
            return
        pending = self.pending.pop(result.serial)
        events = {
            bytes.fromhex(data)
            for key, data in result.state_read.items()
            if key.startswith(EVENT_PREFIX)
        }
        committed = pending.event_sent is not None and pending.event_sent in events
        record.resolved = {
            "seq": pending.seq,
            "tap": pending.tap,
            "committed": committed,
            "debit": pending.debit_sent if committed else 0,
        }
        if result.outcome is Outcome.RECOVERED and committed:
            record.recovered_from = pending.tap

    def _journal(self, record: TapRecord, context: TapContext) -> dict[str, Any]:
        entry = journal_entry(record, context, self.validator_id, self.sam)
        if self.journal is None:
            return entry
        result = record.result
        details = {"card": entry["card"], "outcome": entry["outcome"], "debit": entry["debit"]}
        aborted = result.reason == JOURNAL_UNAVAILABLE  # nothing charged: keep the reserve
        try:
            written = self.journal.append(entry, reserve=not aborted)
        except JournalError as exc:
            message = f"{result.explanation}; its entry too: {exc}" if aborted else str(exc)
            raise TapNotServedError(message, journaled=False, **details) from exc
        if aborted:
            # Aborted before Close for want of room: recorded, yet the gate goes out of service.
            raise TapNotServedError(
                result.explanation or JOURNAL_UNAVAILABLE, journaled=True, **details
            )
        return written


def journal_entry(
    record: TapRecord, context: TapContext, validator_id: str, sam: Sam
) -> dict[str, Any]:
    """The journal's form of a tap: everything needed to audit and replay it."""
    result = record.result
    decision = result.decision

    def hexed(value: bytes | None) -> str | None:
        return value.hex().upper() if value is not None else None

    entry: dict[str, Any] = {
        "tap_time": context.now.isoformat(),
        "validator": validator_id,
        "station": context.location_id,
        "card": hexed(result.serial),
        "product_type": result.product_type,
        "df_name": hexed(result.df_name),
        "layout": result.layout,
        "transaction_counter": result.transaction_counter,
        "ratified_seen": result.ratified_seen,
        "state_read": result.state_read,
        "writes": [w.hex().upper() for w in result.writes],
        "outcome": result.outcome.value,
        "reason": result.reason,
        "explanation": result.explanation,
        "decision": None
        if decision is None
        else {
            "verdict": decision.verdict.value,
            "contract": decision.contract,
            "product": decision.product,
            "debit": decision.debit.units if decision.debit else 0,
            "remaining": decision.remaining,
            "valid_until": decision.valid_until.isoformat() if decision.valid_until else None,
        },
        "debit": result.debit if result.outcome is not Outcome.UNKNOWN else result.sent_debit,
        "sam_serial": hexed(sam.serial),
        "terminal_mac": hexed(result.terminal_mac),
        "card_mac": hexed(result.card_mac),
        "mac_verified": result.mac_verified,
        "attempts": result.attempts,
        "ms": round(result.elapsed * 1000, 3),
        "trace": {
            "card": [ex.as_dict() for ex in result.card_trace],
            "sam": [ex.as_dict() for ex in result.sam_trace],
        },
    }
    if record.resolved is not None:
        entry["resolves"] = record.resolved
    if record.recovered_from is not None:
        entry["recovered_from_tap"] = record.recovered_from
    return entry
