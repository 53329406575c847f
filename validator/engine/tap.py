# SPDX-License-Identifier: Apache-2.0
"""One tap as the validator owns it: attempts, unknown-outcome tracking, and the journal entry.

The procedure runs one attempt. Here a session that failed before Close, on a card still in
the field, is rerun once inside the time budget (never a write resent inside a session: the
rerun is a new session). Taps whose Close went unanswered (``unknown``) are remembered by card
serial; when that card comes back, the event record read from it tells whether the lost Close
committed, and the journal records the resolution.

Before each Close that may commit writes, the journal holds a durable closing intent (DESIGN
section 6; ``intent_entry``). An intent that no tap entry follows (the validator stopped, or
could not journal the tap, after it) becomes an ``unknown`` tap (``orphaned_entry``): at
start-up (validator.journal.pending) or, in a running validator, before its next tap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from readers.base import CardConnection
from sam.base import Sam
from sam.policy import AuthorizedKeys
from validator.engine.attempt import validate
from validator.engine.fares.decide import Decision as FareDecision
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.layouts.base import CardLayout
from validator.engine.outcome import Closing, Outcome, TapResult, event_sent
from validator.engine.pki.trust import CardTrust
from validator.engine.recording import (
    JOURNAL_UNAVAILABLE,
    JournalError,
    TapNotServedError,
    TapRecorder,
)
from validator.engine.session import Ratification

EVENT_PREFIX = "08:"  # event log records, as keyed in TapResult.state_read
# The reason of an unknown tap made from a closing intent that no tap entry followed.
OUTCOME_NOT_JOURNALED = "outcome_not_journaled"


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
    """Validates taps for one validator and journals each before feedback.

    ``sam`` None: a validator with no SAM, running PKI cards only (``pki``: the trusted roots
    and the card keys verified so far).
    """

    sam: Sam | None
    rules: FareRules
    aids: Sequence[bytes]
    validator_id: str
    journal: TapRecorder | None = None
    ratification: Ratification = Ratification.COMMAND
    budget_s: float = 0.5
    authorized: AuthorizedKeys | None = None
    multiple_session: bool = False
    layouts: Mapping[bytes, CardLayout] | None = None
    pki: CardTrust | None = None
    # False: the SAM's calls run in order on the tap's thread (an in-process software SAM,
    # where a thread of its own buys nothing); the APDUs, MACs and decisions are the same.
    overlap: bool = True
    pending: dict[bytes, PendingUnknown] = field(default_factory=dict)
    last_paid: dict[bytes, int] = field(default_factory=dict)
    taps: int = 0
    # The closing intents made durable during the current tap, as written (with their seq).
    _intents: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    # The last of them, and its tap's number, when that tap's entry could not be written.
    _unsettled: tuple[dict[str, Any], int] | None = field(default=None, init=False, repr=False)

    def process(self, connection: CardConnection, context: TapContext) -> TapRecord:
        """Run the tap (with one rerun if allowed), resolve a pending unknown, journal it.

        A closing intent left without its tap's entry by an earlier tap is journaled first, as
        an unknown tap (JournalError if it still cannot be: this tap is then not served)."""
        if self._unsettled is not None:
            self._settle()
        self._intents = []
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
                if self._intents:  # the card may have committed: settled before the next tap
                    self._unsettled = (self._intents[-1], record.index)
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
        """Between taps: fetch the next SAM challenge off the passenger's time (if a SAM)."""
        if self.sam is not None:
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
            overlap=self.overlap,
            # The older events matter only to settle an unknown tap of this card.
            history=self.pending.__contains__,
            deadline=deadline,
            before_close=self.journal.ensure_room if self.journal is not None else None,
            closing=self._closing(context) if self.journal is not None else None,
            pki=self.pki,
        )

    def _closing(self, context: TapContext) -> Callable[[Closing], Callable[[], object]]:
        """The engine's ``closing`` hook: the journal's closing intent of this tap."""
        journal = self.journal
        assert journal is not None  # noqa: S101 - only given with a journal

        def begin(closing: Closing) -> Callable[[], object]:
            resolves = self._resolution(closing.serial, closing.state_read)
            intent = intent_entry(closing, context, self.validator_id, self.sam, resolves)
            writing = journal.write_intent(intent)

            def wait() -> object:
                written = writing.wait()
                self._intents.append(written)
                return written

            return wait

        return begin

    def _settle(self) -> None:
        """Journal the closing intent an earlier tap left without its entry, as unknown."""
        assert self._unsettled is not None and self.journal is not None  # noqa: S101
        intent, index = self._unsettled
        written = self.journal.append(orphaned_entry(intent))  # JournalError: not served
        self._unsettled = None
        serial = bytes.fromhex(intent["card"])
        if "resolves" in intent:
            self.pending.pop(serial, None)
        self.pending[serial] = PendingUnknown(
            written["seq"],
            index,
            intent.get("transaction_counter"),
            event_sent([bytes.fromhex(w) for w in intent["writes"]]),
            intent["debit"],
        )

    def _resolution(self, serial: bytes, state_read: Mapping[str, str]) -> dict[str, Any] | None:
        """How this tap's reads settle an earlier unknown tap of the card (None: none pending).

        The pending tap committed if the event record its Close sent is in the card's log."""
        pending = self.pending.get(serial)
        if pending is None or not state_read:
            return None
        events = {
            bytes.fromhex(data) for key, data in state_read.items() if key.startswith(EVENT_PREFIX)
        }
        committed = pending.event_sent is not None and pending.event_sent in events
        return {
            "seq": pending.seq,
            "tap": pending.tap,
            "committed": committed,
            "debit": pending.debit_sent if committed else 0,
        }

    def _resolve(self, record: TapRecord) -> None:
        """Settle an earlier unknown tap of this card from what this tap read."""
        result = record.result
        if result.serial is None:
            return
        resolved = self._resolution(result.serial, result.state_read)
        if resolved is None:
            return
        pending = self.pending.pop(result.serial)
        record.resolved = resolved
        if result.outcome is Outcome.RECOVERED and resolved["committed"]:
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
    record: TapRecord, context: TapContext, validator_id: str, sam: Sam | None
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
        "decision": _decision(decision),
        "debit": result.debit if result.outcome is not Outcome.UNKNOWN else result.sent_debit,
        "sam_serial": hexed(sam.serial) if sam is not None else None,
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
    if result.pki is not None:
        entry["pki"] = dict(result.pki)  # PKI mode: the certificates by reference
    if record.resolved is not None:
        entry["resolves"] = record.resolved
    if record.recovered_from is not None:
        entry["recovered_from_tap"] = record.recovered_from
    return entry


def _decision(decision: FareDecision | None) -> dict[str, Any] | None:
    """The journal's form of a fare decision."""
    if decision is None:
        return None
    return {
        "verdict": decision.verdict.value,
        "contract": decision.contract,
        "product": decision.product,
        "debit": decision.debit.units if decision.debit else 0,
        "remaining": decision.remaining,
        "valid_until": decision.valid_until.isoformat() if decision.valid_until else None,
    }


def intent_entry(
    closing: Closing,
    context: TapContext,
    validator_id: str,
    sam: Sam | None,
    resolves: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The journal's closing intent of a Close about to commit (validator.journal.intent).

    What an ``unknown`` tap entry needs if no tap entry follows it: the card, its transaction
    counter, the writes sent (their event record recognises the tap on the card), the debit
    sent, the decision; and ``resolves``, the earlier unknown tap of the card this tap settles.
    """
    intent: dict[str, Any] = {
        "tap_time": context.now.isoformat(),
        "validator": validator_id,
        "station": context.location_id,
        "card": closing.serial.hex().upper(),
        "product_type": closing.product_type,
        "df_name": closing.df_name.hex().upper() if closing.df_name is not None else None,
        "layout": closing.layout,
        "transaction_counter": closing.transaction_counter,
        "writes": [w.hex().upper() for w in closing.writes],
        "debit": closing.sent_debit,
        "decision": _decision(closing.decision),
        "sam_serial": sam.serial.hex().upper() if sam is not None else None,
    }
    if resolves is not None:
        intent["resolves"] = dict(resolves)
    return intent


_FROM_INTENT = (
    "tap_time",
    "validator",
    "station",
    "card",
    "product_type",
    "df_name",
    "layout",
    "transaction_counter",
    "writes",
    "debit",
    "decision",
    "sam_serial",
    "resolves",
)


def orphaned_entry(intent: Mapping[str, Any]) -> dict[str, Any]:
    """The ``unknown`` tap entry of a closing intent (as written) that no tap entry followed.

    Its Close may have committed, or may never have been sent: the card tells at its next tap,
    as for any unanswered Close (DESIGN section 5). ``intent`` names the intent's seq.
    """
    entry = {name: intent[name] for name in _FROM_INTENT if name in intent}
    entry.update(
        outcome=Outcome.UNKNOWN.value,
        reason=OUTCOME_NOT_JOURNALED,
        explanation=(
            f"the closing intent seq {intent['seq']} has no tap entry after it: the validator "
            "stopped, or could not journal the tap, once it was written"
        ),
        intent=intent["seq"],
    )
    return entry
