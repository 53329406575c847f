# SPDX-License-Identifier: Apache-2.0
"""The session MAC: what the session feeds the SAM, on the SAM worker (rule CL-C4-MAC of
calypso-protocol section 0).

Every in-session command and its answer are digested in order; in overlap mode the SAM digests
them on its own thread while the card works (``flush``), and the engine waits only where it
needs an answer: the terminal MAC for Close, the card MAC's verdict after it.
"""

from __future__ import annotations

from concurrent.futures import Future

from calypso.crypto import digest_item
from readers.apdu import CommandApdu, ResponseApdu
from sam.base import SessionCrypto
from validator.engine.sam_worker import SamWorker


class SessionDigest:
    """The session's crypto and its SAM worker; ``crypto`` changes with each new session."""

    def __init__(self, crypto: SessionCrypto, *, overlap: bool) -> None:
        self.crypto = crypto
        self.sam = SamWorker(inline=not overlap)

    def start(self, data_out: bytes, kif: int, kvc: int) -> None:
        """Begin the MAC of a session just opened (Digest Init) with the Open's answer."""
        self.sam.submit(self.crypto.init_session_mac, data_out, kif, kvc)

    def add(self, command: CommandApdu | bytes, response: ResponseApdu | bytes) -> None:
        """Digest one command (its case-4 Le dropped) and its answer, real or anticipated."""
        self.sam.submit(self.crypto.update_session_mac, digest_item(bytes(command)))
        self.sam.submit(self.crypto.update_session_mac, bytes(response))

    def flush(self) -> None:
        """Let the SAM digest what it was given so far while the card works (overlap mode)."""
        flush = getattr(self.crypto, "flush", None)
        if flush is not None and not self.sam.inline:
            self.sam.submit(flush)

    def terminal_mac(self) -> bytes:
        """The terminal MAC for Close, once everything queued was digested (Digest Close)."""
        return self.sam.call(self.crypto.finalize_session_mac)

    def terminal_mac_later(self) -> Future[bytes]:
        """Queue Digest Close; ``sync`` before reading the MAC."""
        return self.sam.future(self.crypto.finalize_session_mac)

    def verify_later(self, card_mac: bytes) -> list[bool]:
        """Queue Digest Authenticate of the card's MAC; its verdict is in the list after sync."""
        verified: list[bool] = []
        self.sam.submit(lambda: verified.append(self.crypto.verify_card_session_mac(card_mac)))
        return verified

    def sync(self) -> None:
        """Wait for the queued SAM calls; raise the first error any of them met."""
        self.sam.sync()
