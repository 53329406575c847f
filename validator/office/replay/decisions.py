# SPDX-License-Identifier: Apache-2.0
"""Decisions replayed: a journaled tap's card state run through ``fares.decide`` again.

The state is rebuilt by the tap's own card layout (chosen from the AID of its Select
Application, as the procedure does) reading the records the tap read (``state_read``) instead of
the card into the ticketing model (validator.engine.ticketing.model), as at the gate, plus the
SV purse balance when the tap read it; then decided with the tap's own time and station. A
journal written by an earlier release replays the same way: its records are decoded again by
their layout as it reads them now. With the rules in force every decision must come out the
same; with another fare file (what-if) the differences give the revenue and ridership that file
would have made on the same taps. A what-if that needs records the tap never read (counters,
the purse) still decides, on what was read, and the tap is counted as ``incomplete``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from calypso.card_image import CalypsoCard
from calypso.commands import CardIns
from calypso.commands.sv import parse_sv_get
from calypso.constants import RECORD_SIZE
from calypso.frozen import fast_init
from readers.apdu import CommandApdu, ResponseApdu
from validator.engine.attempt import DEFAULT_LAYOUT
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import CardState, Decision, FareRules, TapContext
from validator.engine.layouts.base import CardLayout, build_layouts, layout_for
from validator.engine.layouts.demo import DemoLayout
from validator.engine.layouts.states import with_sv_balance
from validator.engine.session import SecureSession
from validator.journal.entry import JournalEntry

_REASONS = frozenset(reason.value for reason in fares.Reason)
# The outcome a decision has when the gate carried it out (the session went through).
_CARRIED_OUT = {"grant": "granted", "recover": "recovered", "deny": "denied"}


@fast_init
@dataclass(frozen=True, slots=True)
class DecisionCheck:
    """One tap's recorded decision against the replayed one."""

    status: str  # same, different, not_decided, not_replayable
    recorded: dict[str, Any] | None = None
    replayed: dict[str, Any] | None = None
    recorded_explanation: str = ""
    replayed_explanation: str = ""
    carried_out: bool = False  # the recorded decision took effect (revenue counts)
    incomplete: bool = False  # the rules wanted counters the tap did not read


_PREFIXES = tuple(f"{sfi:02X}:" for sfi in range(256))


def _sfi_prefix(sfi: int) -> str:
    """The ``state_read`` key of an SFI's records, up to the record number ("07:")."""
    return _PREFIXES[sfi] if 0 <= sfi < len(_PREFIXES) else f"{sfi:02X}:"


class _JournaledSession:
    """Serves a journaled tap's records to a layout's reads, as its session did."""

    __slots__ = ("state_read", "incomplete")

    def __init__(self, state_read: Mapping[str, str]) -> None:
        self.state_read = state_read  # "SFI:record" (SFI in hex) -> record data in hex
        self.incomplete = False

    def read_records(
        self, sfi: int, record: int, count: int = 1, *, record_size: int = RECORD_SIZE
    ) -> dict[int, bytes]:
        """The records the tap read (KeyError if it read none of them)."""
        get = self.state_read.get
        prefix = _sfi_prefix(sfi)
        got = {}
        for number in range(record, record + count):
            data = get(prefix + str(number))
            if data is not None:
                got[number] = bytes.fromhex(data)
        if not got:
            raise KeyError(f"SFI {sfi:02X} record {record} was not read")
        return got

    def read_counters(
        self, sfi: int, *, record_size: int = RECORD_SIZE, count: int | None = None
    ) -> dict[int, int]:
        """The counters of the record the tap read (none, and incomplete, if it did not)."""
        text = self.state_read.get(_sfi_prefix(sfi) + "1")
        if text is None:
            self.incomplete = True
            return {}
        data = bytes.fromhex(text)
        return {
            n + 1: int.from_bytes(data[3 * n : 3 * n + 3], "big") for n in range(len(data) // 3)
        }


@fast_init
@dataclass(frozen=True, slots=True)
class _Image:
    """The card image a journaled tap had: its serial, ratification and the records read."""

    serial: bytes
    ratified: bool | None
    state_read: Mapping[str, str]

    def record(self, sfi: int, number: int) -> bytes | None:
        """Record ``number`` of ``sfi`` as the tap read it, if it did."""
        data = self.state_read.get(_sfi_prefix(sfi) + str(number))
        return bytes.fromhex(data) if data is not None else None


@functools.lru_cache(maxsize=4096)
def _select_target(command_hex: str) -> bytes | None:
    """The AID a Select Application command names, or None (ValueError: not hex).

    Cached by the command's text: a network's cards are selected by a handful of AIDs."""
    command = bytes.fromhex(command_hex)
    if len(command) >= 5 and command[1] == CardIns.SELECT:
        return command[5 : 5 + command[4]]
    return None


def selected_aid(entry: JournalEntry) -> bytes | None:
    """The AID of the tap's Select Application that the card accepted, from its card trace."""
    for exchange in entry.trace.card if entry.trace is not None else ():
        target = _select_target(str(exchange.get("c", "")))
        if target is not None and str(exchange.get("r", "")).endswith("9000"):
            return target
    return None


def sv_balance(entry: JournalEntry) -> int | None:
    """The SV purse balance the tap's SV Get read, if it read one."""
    if "SV" not in (entry.state_read or {}):
        return None
    if entry.trace is None:
        raise KeyError("trace")
    for exchange in entry.trace.card:
        command = bytes.fromhex(str(exchange.get("c", "")))
        if len(command) > 1 and command[1] == CardIns.SV_GET:
            response = ResponseApdu.from_bytes(bytes.fromhex(str(exchange.get("r", ""))))
            return parse_sv_get(response, CommandApdu.from_bytes(command)).balance
    return None


def card_state(
    entry: JournalEntry, layout: CardLayout, rules: FareRules, context: TapContext
) -> tuple[CardState, Decision | None, bool]:
    """The CardState the tap's layout decoded from the records read, the early decision (one
    taken on the environment and event alone, as the procedure does), and whether the rules
    wanted records the tap did not read. KeyError/ValueError if it cannot be done."""
    if entry.state_read is None or entry.card is None:
        raise KeyError("state_read" if entry.state_read is None else "card")
    session = _JournaledSession(entry.state_read)
    image = _Image(bytes.fromhex(entry.card), entry.ratified_seen, entry.state_read)
    environment = session.read_records(layout.open_read[0], layout.open_read[1])
    head = layout.read_head(
        cast(SecureSession, session), cast(CalypsoCard, image), environment[layout.open_read[1]]
    )
    early = fares.decide_early(head, context, rules)
    if early is not None:
        return head, early, session.incomplete
    try:
        state = layout.read_titles(
            cast(SecureSession, session), cast(CalypsoCard, image), head, rules
        )
    except KeyError:
        # The tap decided on its head alone; other rules (a what-if) want titles it never read.
        state, session.incomplete = head, True
    balance = sv_balance(entry)
    if balance is not None:
        state = with_sv_balance(state, balance)
    return state, None, session.incomplete


def decision_fields(decision: Decision) -> dict[str, Any]:
    """The journal's form of a decision (validator.engine.tap.journal_entry)."""
    return {
        "verdict": decision.verdict.value,
        "contract": decision.contract,
        "product": decision.product,
        "debit": decision.debit.units if decision.debit else 0,
        "remaining": decision.remaining,
        "valid_until": decision.valid_until.isoformat() if decision.valid_until else None,
    }


def parse_time(value: str) -> dt.datetime:
    """A journal time as a naive datetime (an aware one is taken as is, its zone dropped)."""
    when = dt.datetime.fromisoformat(value)
    return when if when.tzinfo is None else when.replace(tzinfo=None)


def replay_layouts(
    by_aid: Mapping[str, str], record_cache: int = 0
) -> tuple[dict[bytes, CardLayout], CardLayout]:
    """The layouts by AID (settings ``layouts``) and the default one, for replay: each keeps
    ``record_cache`` decoded environment and contract records by their bytes, as a card's
    records repeat across its taps (0: none). Decoding is pure: the results are the same."""
    layouts = build_layouts(by_aid)
    default: CardLayout = DEFAULT_LAYOUT
    if record_cache > 0:
        default = DemoLayout()
        for layout in (default, *layouts.values()):
            cache = getattr(layout, "cache_records", None)
            if cache is not None:
                cache(record_cache)
    return layouts, default


def replay_decision(
    entry: JournalEntry,
    rules: FareRules,
    layouts: Mapping[bytes, CardLayout],
    when: dt.datetime | None = None,
    default: CardLayout = DEFAULT_LAYOUT,
) -> DecisionCheck:
    """Decide the tap again with ``rules`` (at ``when``, default its tap time) and compare;
    ``default`` is the layout of an AID not in ``layouts`` (the procedure's)."""
    if entry.decision is None:
        return DecisionCheck("not_decided")
    recorded = entry.decision.to_json()
    if entry.card is None or entry.state_read is None:
        return DecisionCheck("not_replayable", recorded)
    aid = selected_aid(entry)
    layout = layout_for(aid, layouts, default) if aid is not None else default
    try:
        if entry.station is None or (when is None and entry.tap_time is None):
            raise KeyError("station" if entry.station is None else "tap_time")
        now = when if when is not None else parse_time(entry.tap_time or "")
        context = TapContext(now, entry.station)
        state, early, incomplete = card_state(entry, layout, rules, context)
    except (ValueError, KeyError, TypeError, IndexError):
        return DecisionCheck("not_replayable", recorded)
    # ``card_state`` already ran decide_early on this card's head: the titles do not change it.
    decision = early or fares.decide_titles(state, context, rules)
    if early is None and state.sv_balance is None and fares.wants_purse(decision, rules, True):
        incomplete = incomplete or "SV" not in entry.state_read
    replayed = decision_fields(decision)
    carried_out = _CARRIED_OUT.get(entry.decision.verdict) == entry.outcome
    recorded_reason = entry.reason
    same = replayed == {k: recorded.get(k) for k in replayed}
    if same and carried_out and recorded_reason in _REASONS:
        same = recorded_reason == decision.reason.value
    return DecisionCheck(
        "same" if same else "different",
        recorded,
        replayed,
        entry.explanation or "",
        decision.explanation,
        carried_out,
        incomplete,
    )


def revenue(check: DecisionCheck) -> tuple[int, int, int, int]:
    """(units recorded, units replayed, riders recorded, riders replayed) of a carried-out tap."""
    if not check.carried_out or check.recorded is None or check.replayed is None:
        return 0, 0, 0, 0
    granted_before = check.recorded.get("verdict") == "grant"
    granted_after = check.replayed["verdict"] == "grant"
    before = int(check.recorded.get("debit") or 0) if granted_before else 0
    after = int(check.replayed["debit"] or 0) if granted_after else 0
    return before, after, int(granted_before), int(granted_after)
