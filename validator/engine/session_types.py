# SPDX-License-Identifier: Apache-2.0
"""The vocabulary of a secure session: its states, the ratification modes and its errors.

Kept apart from ``session.py``, which re-exports them (callers import them from there), so that
the session's parts (prepared writes, multiple sessions) raise and name them without a cycle.
"""

from __future__ import annotations

from enum import Enum


class SessionError(Exception):
    """The secure session could not be completed as a trusted transaction."""


class SessionStateError(SessionError):
    """A call that the session's current state does not allow."""


class TerminalMacRejectedError(SessionError):
    """The card refused the terminal MAC at Close (6988): it dropped the session's writes.

    A card personalised with keys the SAM does not hold ends here.
    """


class InvalidCardMacError(SessionError):
    """The SAM rejected the card's MAC: the card is not authentic; the gate must stay closed."""


class CloseOutcomeUnknownError(SessionError):
    """The card was lost after Close was sent and before its answer: the outcome is unknown."""

    def __init__(self, transaction_counter: int | None) -> None:
        super().__init__("card lost during Close Secure Session: outcome unknown")
        self.transaction_counter = transaction_counter


class ModificationBufferOverflowError(SessionError):
    """The next write would overflow the card's session buffer (raised before sending it)."""


class Ratification(Enum):
    """How the session is ratified at Close (calypso-protocol section 2.6)."""

    IMMEDIATE = "immediate"  # P1=80: contact mode
    COMMAND = "command"  # P1=00 then the ratification command: contactless mode
    DEFERRED = "deferred"  # P1=00 and nothing after (the next command ratifies)


class SessionState(Enum):
    """Where the session stands."""

    IDLE = "idle"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    ABORTED = "aborted"
    UNKNOWN = "unknown"
