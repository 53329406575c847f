# SPDX-License-Identifier: Apache-2.0
"""What the tap engine needs of a journal: room before Close, a durable closing intent before
each Close that may commit writes, one entry per tap, typed failures.

The engine records through this protocol and never imports the journal package above it
(docs/architecture.md): validator.journal.writer.Journal is the implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "JOURNAL_UNAVAILABLE",
    "IntentWrite",
    "JournalError",
    "TapNotServedError",
    "TapRecorder",
]

# The reason of a tap aborted before Close because its entry could not be sure of room.
JOURNAL_UNAVAILABLE = "journal_unavailable"


class JournalError(Exception):
    """The journal cannot be opened or written: the validator must stop serving taps."""


class TapNotServedError(JournalError):
    """A tap the gate cannot serve for want of its journal entry (it gets no feedback).

    ``journaled`` says whether its entry was written all the same; ``card``, ``outcome`` and
    ``debit`` say what the card was left with, for the operator's log line.
    """

    def __init__(
        self, message: str, *, card: str | None, outcome: str, debit: int, journaled: bool
    ) -> None:
        super().__init__(message)
        self.card = card
        self.outcome = outcome
        self.debit = debit
        self.journaled = journaled


class IntentWrite(Protocol):
    """A closing intent being made durable (the journal fsyncs it while the card works)."""

    def wait(self) -> dict[str, Any]:
        """The intent as written (with its seq) once durable; JournalError if it cannot be."""


class TapRecorder(Protocol):
    """Where taps are recorded: room checked before Close, a closing intent made durable before
    each Close that may commit writes, one entry appended per tap."""

    def ensure_room(self) -> None:
        """Raise JournalError unless the next entry is sure to fit (called before Close)."""

    def write_intent(self, intent: Mapping[str, Any]) -> IntentWrite:
        """Start writing a closing intent (DESIGN section 6); Close is sent only after ``wait``.

        JournalError when it cannot even be written: the session is then aborted.
        """

    def check_writable(self) -> None:
        """Raise JournalError unless the journal can be written again (after a failure)."""

    def append(self, entry: Mapping[str, Any], *, reserve: bool = True) -> dict[str, Any]:
        """Write one entry durably and return it as written (with seq, chain and MAC)."""
