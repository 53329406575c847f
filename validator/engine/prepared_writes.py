# SPDX-License-Identifier: Apache-2.0
"""Writes with anticipated answers, and the prepared ones sent with the Close.

A write whose answer is known in advance (calypso-protocol 2.4: 9000 for a record write, the
known new value for a counter) is digested with that answer before the card gets it. Once
``SecureSession.prepare_writes`` was called, such writes are only queued here (Keyple's prepared
modifications) and sent to the card with the Close, while the SAM digests them and computes the
terminal MAC. Each real answer must be the anticipated one: the MACs would not match otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from readers.apdu import CommandApdu, ResponseApdu
from readers.channel import ApduChannel
from validator.engine.session_digest import SessionDigest
from validator.engine.session_types import SessionError

# Parses a prepared write's real answer (raising the command's typed error on a refusal).
Check = Callable[[ResponseApdu, CommandApdu], object]

ANSWER_OK = b"\x90\x00"


def unanticipated(response: ResponseApdu, anticipated: bytes) -> SessionError:
    """The error for a card answer that is not the anticipated one."""
    return SessionError(
        f"the card answered {response.hex()} where {anticipated.hex().upper()} was anticipated"
    )


class PreparedWrites:
    """The queue of prepared writes: off (writes go at once) until ``start``."""

    def __init__(self) -> None:
        # None: off; a list, even empty: on, the writes queued for the Close.
        self._queue: list[tuple[CommandApdu, bytes, Check]] | None = None

    @property
    def active(self) -> bool:
        """Whether writes with an anticipated answer are queued rather than sent."""
        return self._queue is not None

    def start(self) -> None:
        """Queue the anticipated writes from now on."""
        self._queue = []

    def add(self, command: CommandApdu, anticipated: bytes, check: Check) -> ResponseApdu:
        """Queue a write (already digested) and return its anticipated answer."""
        if self._queue is None:
            raise SessionError("no prepared writes were started")
        self._queue.append((command, anticipated, check))
        return ResponseApdu.from_bytes(anticipated)

    def send_before(self, card: ApduChannel) -> None:
        """Send what was prepared before a command that must see it done; stay on."""
        if self._queue:
            self._send(card)
            self._queue = []

    def terminal_mac(self, card: ApduChannel, digest: SessionDigest) -> bytes:
        """The terminal MAC for Close; with writes prepared, the SAM computes it while the card
        executes them. Ends the prepared mode."""
        if not self._queue:
            self._queue = None
            return digest.terminal_mac()
        digest.flush()
        mac = digest.terminal_mac_later()
        self._send(card)
        digest.sync()
        return mac.result()

    def _send(self, card: ApduChannel) -> None:
        """Send the prepared writes in order; each answer must be the anticipated one."""
        prepared, self._queue = self._queue or [], None
        for command, anticipated, check in prepared:
            response = card.transmit(command)
            if bytes(response) != anticipated:
                check(response, command)  # a refusal raises its typed error here
                raise unanticipated(response, anticipated)
