# SPDX-License-Identifier: Apache-2.0
"""The card's modification buffer across a tap's sessions, and the multiple-session mode.

Each session's writes are accounted against the card's buffer before they are sent
(calypso-protocol 2.2). Without the multiple-session mode an overflowing write is refused
before it is sent; with it, the session is closed first (an intermediate Close) and a new one
opened at the same level, so that the writes go on in a session of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from calypso.constants import WriteAccessLevel
from sam.base import SessionCrypto
from validator.engine.session_buffer import ModificationBuffer
from validator.engine.session_types import ModificationBufferOverflowError, Ratification


class Reopenable(Protocol):
    """What the multiple-session mode drives of a secure session (SecureSession is the one).

    A protocol rather than SecureSession itself: the session holds this part, so naming its
    class here would make the two modules import each other.
    """

    writes: list[bytes]
    mac_verified: bool
    crypto: SessionCrypto

    def close(self, ratification_mode: Ratification = Ratification.COMMAND) -> None:
        """Close the session (the intermediate Close is not ratified)."""
        ...

    def open(self, level: WriteAccessLevel) -> Any:
        """Open a new session at ``level``."""
        ...


class MultipleSession:
    """The buffer accounting of a tap's sessions; ``new_crypto`` turns on the multiple mode."""

    def __init__(
        self, buffer: ModificationBuffer, new_crypto: Callable[[], SessionCrypto] | None
    ) -> None:
        self.buffer = buffer
        self.new_crypto = new_crypto
        self.sessions = 0
        self.level: WriteAccessLevel | None = None
        # The writes of the sessions already closed with a verified MAC.
        self.committed_writes: list[bytes] = []

    @property
    def enabled(self) -> bool:
        """Whether a closed session may be followed by a new one."""
        return self.new_crypto is not None

    def opened(self, level: WriteAccessLevel) -> None:
        """A session was opened at ``level``: its buffer starts empty."""
        self.level = level
        self.sessions += 1
        self.buffer.reset()

    def take(self, session: Reopenable, raw: bytes) -> None:
        """Account one write, closing and reopening ``session`` first if it would overflow."""
        if not self.buffer.fits(raw):
            self._next_session(session, raw)
        self.buffer.take(raw)

    def _next_session(self, session: Reopenable, raw: bytes) -> None:
        """Multiple-session mode: close and reopen before an overflowing write."""
        if self.new_crypto is None or self.level is None or self.buffer.used == 0:
            raise ModificationBufferOverflowError(
                f"{self.buffer.used} + {self.buffer.cost(raw)} exceeds the card's session buffer "
                f"of {self.buffer.size} {'bytes' if self.buffer.in_bytes else 'commands'}"
            )
        # Not ratified (P1=00h), unlike Keyple's P1=80h (calypso-protocol 2.6): the next Open
        # ratifies it, and a card lost before that is recognised at its next tap as an
        # unratified session (recovery), as after a lost ratification. A deliberate difference:
        # docs/protocol-differences.md, pinned by tests/validator/engine/test_intermediate_close.py.
        session.close(Ratification.DEFERRED)
        self.committed_writes = list(session.writes)
        session.crypto = self.new_crypto()
        session.mac_verified = False
        session.open(self.level)
