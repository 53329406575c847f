# SPDX-License-Identifier: Apache-2.0
"""The card commands a layout encodes a decision into, and how a session sends them.

A layout's ``writes(card, decision, records)`` is pure: it gives these values, which tests and
the fuzz campaign check without a card; ``apply_writes`` sends them in the secure session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from validator.engine.session import SecureSession

Records = Mapping[int, Mapping[int, bytes]]  # what the session read: SFI -> record -> data


@dataclass(frozen=True, slots=True)
class Decrease:
    """Decrease counter ``counter`` of file ``sfi`` by ``units`` (the card's own units)."""

    sfi: int
    counter: int
    units: int


@dataclass(frozen=True, slots=True)
class SvDebit:
    """Debit the Calypso SV purse, with the date and time the SV log records."""

    amount: int
    date: bytes
    time: bytes


@dataclass(frozen=True, slots=True)
class AppendRecord:
    """Append ``data`` to the cyclic file ``sfi`` (a new event)."""

    sfi: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    """Replace record ``record`` of file ``sfi`` with ``data``."""

    sfi: int
    record: int
    data: bytes


CardWrite = Decrease | SvDebit | AppendRecord | UpdateRecord


def apply_writes(session: SecureSession, writes: Sequence[CardWrite]) -> None:
    """Send the writes in the session, in order."""
    for write in writes:
        if isinstance(write, Decrease):
            session.decrease(write.sfi, write.counter, write.units)
        elif isinstance(write, SvDebit):
            session.sv_debit(write.amount, date=write.date, time=write.time)
        elif isinstance(write, AppendRecord):
            session.append_record(write.sfi, write.data)
        else:
            session.update_record(write.sfi, write.record, write.data)
