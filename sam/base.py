# SPDX-License-Identifier: Apache-2.0
"""The seam between the session engine and whatever computes session MACs (a SAM, usually)."""

from __future__ import annotations

from typing import Protocol


class SamError(Exception):
    """The SAM failed or refused: the session cannot be trusted (the gate stays closed)."""


class SamUnavailableError(SamError):
    """The SAM did not answer (removed, reader gone, mute): a transport failure, not a refusal."""


class SessionCrypto(Protocol):
    """Python form of Keyple's SymmetricCryptoCardTransactionManagerSpi, for one card session.

    The engine calls, in order: ``init_session`` (terminal challenge for Open Secure Session),
    ``init_session_mac`` (with the Open Secure Session data-out and the KIF/KVC it names),
    ``update_session_mac`` once per in-session command then once per response, already in
    digest form (a case-4 command without its Le; a response with its SW),
    ``finalize_session_mac`` (terminal MAC for Close), ``verify_card_session_mac``.
    """

    def init_session(self) -> bytes:
        """Return the terminal (SAM) challenge for Open Secure Session: 4 bytes regular, 8 ext."""
        ...

    def init_session_mac(self, open_data_out: bytes, kif: int, kvc: int) -> None:
        """Start the session MAC from the Open Secure Session response data (no SW)."""
        ...

    def update_session_mac(self, apdu: bytes) -> None:
        """Digest one in-session command (Le stripped if case 4) or response (with SW)."""
        ...

    def finalize_session_mac(self) -> bytes:
        """Return the terminal session MAC for Close Secure Session."""
        ...

    def verify_card_session_mac(self, card_mac: bytes) -> bool:
        """Check the card's MAC from the Close Secure Session answer; False if it is wrong."""
        ...


class Sam(Protocol):
    """A SAM able to serve card sessions."""

    @property
    def serial(self) -> bytes:
        """SAM serial number (4 bytes)."""
        ...

    def session_crypto(self, card_serial: bytes, *, extended: bool = False) -> SessionCrypto:
        """Return the crypto for one session with the card of this serial (the diversifier)."""
        ...

    def prefetch(self) -> None:
        """Fetch the next session challenge ahead of time, off the passenger's time."""
        ...
