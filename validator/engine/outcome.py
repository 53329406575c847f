# SPDX-License-Identifier: Apache-2.0
"""What happened at the gate for one tap: the Outcome and the tap's record; what a Close is
about to commit (the facts of the journal's closing intent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from calypso.commands import CardIns
from calypso.commands.records import appended_record
from readers.trace import Exchange
from validator.engine.fares.decide import Decision


class Outcome(StrEnum):
    """The gate's outcome of one tap (DESIGN section 3)."""

    GRANTED = "granted"
    DENIED = "denied"
    RECOVERED = "recovered"
    CARD_LOST = "card_lost"  # lost before Close: the card rolled back, nothing owed
    UNKNOWN = "unknown"  # lost after Close was sent, before its answer
    ERROR = "error"

    @property
    def opens_gate(self) -> bool:
        """Only a granted or recovered tap, both with a verified card MAC, opens the gate."""
        return self in (Outcome.GRANTED, Outcome.RECOVERED)


@dataclass(frozen=True, slots=True)
class TapResult:
    """One tap from selection to the last APDU, with its audit trail; built once, when the
    attempt ends (the tap adds its timing and a rerun's traces with ``dataclasses.replace``)."""

    outcome: Outcome
    reason: str
    explanation: str
    serial: bytes | None = None
    product: str | None = None
    debit: int = 0
    remaining: int | None = None
    mac_verified: bool = False
    transaction_counter: int | None = None
    decision: Decision | None = None
    card_trace: tuple[Exchange, ...] = ()
    sam_trace: tuple[Exchange, ...] = ()
    writes: tuple[bytes, ...] = ()
    elapsed: float = 0.0
    product_type: str | None = None
    df_name: bytes | None = None  # the application selected (its DF name)
    layout: str | None = None  # the card data layout that read and wrote it
    ratified_seen: bool | None = None
    state_read: Mapping[str, str] = field(default_factory=dict)  # "SFI:record" -> hex, as read
    terminal_mac: bytes | None = None
    card_mac: bytes | None = None
    retryable: bool = False  # failed before Close, card perhaps still there: rerun once
    attempts: int = 1
    pki: Mapping[str, object] | None = None  # PKI mode: the chain's references (CardKey)

    @property
    def sent_debit(self) -> int:
        """Units of the Decrease actually sent (the debit of an ``unknown`` tap)."""
        return sent_debit(self.decision, self.writes)

    @property
    def event_sent(self) -> bytes | None:
        """The event record of the Append Record sent in this tap, if any."""
        return event_sent(self.writes)

    @property
    def card_apdus(self) -> int:
        """Card APDUs physically sent during the tap."""
        return len(self.card_trace)

    @property
    def sam_apdus(self) -> int:
        """SAM APDUs physically sent during the tap."""
        return len(self.sam_trace)

    def summary(self) -> dict[str, object]:
        """The JSON form of the tap (without the index, which the caller owns)."""
        return {
            "card": self.serial.hex().upper() if self.serial is not None else None,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "explanation": self.explanation,
            "product": self.product,
            "debit": self.debit,
            "remaining": self.remaining,
            "mac_verified": self.mac_verified,
            "apdus": {"card": self.card_apdus, "sam": self.sam_apdus},
            "ms": round(self.elapsed * 1000, 3),
        }


@dataclass(frozen=True, slots=True)
class Closing:
    """What a Close is about to commit: the facts of its closing intent (DESIGN section 6).

    ``writes`` are every write of the tap's sessions so far; ``state_read`` what the tap read
    (an earlier unknown tap of the card is settled from its event log).
    """

    serial: bytes
    transaction_counter: int | None
    writes: tuple[bytes, ...]
    decision: Decision | None
    product_type: str | None
    df_name: bytes | None
    layout: str | None
    state_read: Mapping[str, str]

    @property
    def sent_debit(self) -> int:
        """Units of the debit among the writes (0 when none is)."""
        return sent_debit(self.decision, self.writes)


def sent_debit(decision: Decision | None, writes: Sequence[bytes]) -> int:
    """Units of the decision's debit if its command (Decrease or SV Debit) is among ``writes``."""
    if decision is None or decision.debit is None:
        return 0
    debit_ins = CardIns.SV_DEBIT if decision.debit.purse else CardIns.DECREASE
    return decision.debit.units if any(w[1] == debit_ins for w in writes) else 0


def event_sent(writes: Sequence[bytes]) -> bytes | None:
    """The event record of the first Append Record among ``writes``, if any."""
    for write in writes:
        record = appended_record(write)
        if record is not None:
            return record
    return None
