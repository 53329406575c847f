# SPDX-License-Identifier: Apache-2.0
"""The seam between the session engine and whatever computes session MACs (a SAM, usually).

``SessionCrypto`` is the core of Keyple's SymmetricCryptoCardTransactionManagerSpi (csim1.md
2.2); the other protocols add its extended-mode, PIN, key-change, Stored Value and digest-flush
calls, so an engine asks only for what it uses. ``LegacySessionCrypto`` implements them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from calypso.commands import CardIns
from readers.trace import Exchange


class SamError(Exception):
    """The SAM failed or refused: the session cannot be trusted (the gate stays closed)."""


class SamUnavailableError(SamError):
    """The SAM did not answer (removed, reader gone, mute): a transport failure, not a refusal."""


class SvOperation(Enum):
    """A card Stored Value operation, by its card INS (calypso-protocol.md 1.20)."""

    RELOAD = CardIns.SV_RELOAD
    DEBIT = CardIns.SV_DEBIT
    UNDEBIT = CardIns.SV_UNDEBIT


@dataclass(frozen=True, slots=True)
class SvRequest:
    """What SV Prepare needs (Keyple SvCommandSecurityDataApi getters, csim1.md 2.2)."""

    operation: SvOperation
    sv_get_header: bytes  # SV Get INS P1 P2 Le (4 bytes)
    sv_get_response: bytes  # the full SV Get response, data then SW
    partial_command: bytes  # INS P1 P2 Lc data[0..10] (reload, 15) or data[0..7] (12)

    @property
    def extended(self) -> bool:
        """Whether the SV Get was the extended one (P1 = 01): 10-byte and 6-byte SV MACs."""
        return len(self.sv_get_header) > 1 and self.sv_get_header[1] == 0x01


@dataclass(frozen=True, slots=True)
class SvSecurityData:
    """What SV Prepare returns (Keyple SvCommandSecurityDataApi setters)."""

    serial: bytes  # SAM serial number (4)
    challenge: bytes  # SAM SV challenge (3): the card command's P1, P2 and data[0]
    transaction_number: bytes  # SAM transaction number (3)
    terminal_sv_mac: bytes  # signatureHi: 5 bytes regular, 10 extended

    def complete(self, partial_command: bytes) -> tuple[int, int, bytes]:
        """P1, P2 and data of the card SV command built from its partial form (section 1.20).

        P1, P2, data[0] = the SAM challenge; then the fixed fields of the partial command; then
        the SAM serial, the SAM transaction number and the terminal SV MAC.
        """
        fixed = partial_command[5:]  # after INS P1 P2 Lc and the data[0] placeholder
        data = (
            self.challenge[2:3]
            + fixed
            + self.serial
            + self.transaction_number
            + self.terminal_sv_mac
        )
        return self.challenge[0], self.challenge[1], data


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


class DigestFlush(Protocol):
    """Pushing buffered digest items to the SAM early, while the card works (docs/sam.md)."""

    @property
    def pending_items(self) -> int:
        """Digest items buffered and not yet sent to the SAM."""
        ...

    def flush(self, *, complete_only: bool = False) -> int:
        """Send buffered items now; with ``complete_only`` only full packets. Returns APDUs."""
        ...


class ExtendedSessionCrypto(SessionCrypto, Protocol):
    """Extended-mode calls: early mutual authentication and the confidential session."""

    def generate_terminal_session_mac(self) -> bytes:
        """Return the 8-byte terminal MAC for Manage Secure Session (mutual authentication).

        The card's answer is then checked with ``verify_card_session_mac``, and the session
        goes on.
        """
        ...

    def activate_encryption(self) -> None:
        """Encryption is on from the next item (Manage Secure Session P2 bit1 processed)."""
        ...

    def deactivate_encryption(self) -> None:
        """Encryption is off from the next item."""
        ...

    def process_session_apdu(self, apdu: bytes) -> bytes:
        """Digest one item and return it as it must travel (Keyple updateTerminalSessionMac).

        Encrypted mode: a plain command comes back ciphered, a ciphered response comes back
        plain. Plain mode: the item comes back unchanged.
        """
        ...


class PinCrypto(Protocol):
    """PIN ciphering: Give Random then Card Cipher PIN (calypso-protocol.md 2.10)."""

    def cipher_pin_for_presentation(
        self, card_challenge: bytes, pin: bytes, kif: int | None = None, kvc: int | None = None
    ) -> bytes:
        """The 8-byte Verify PIN block; inside a session the session KIF/KVC are the default."""
        ...

    def cipher_pin_for_modification(
        self,
        card_challenge: bytes,
        current_pin: bytes,
        new_pin: bytes,
        kif: int | None = None,
        kvc: int | None = None,
    ) -> bytes:
        """The 16-byte Change PIN block (Keyple passes 00000000 as the current PIN)."""
        ...


class KeyChangeCrypto(Protocol):
    """Change Key: Give Random then Card Generate Key (csim1.md 4)."""

    def generate_ciphered_card_key(
        self,
        card_challenge: bytes,
        issuer_kif: int | None,
        issuer_kvc: int | None,
        target_kif: int,
        target_kvc: int,
    ) -> bytes:
        """The 32-byte ciphered key; no issuer KIF/KVC means the null-key variant."""
        ...


@runtime_checkable
class SvCrypto(Protocol):
    """Stored Value: SV Prepare Load/Debit/Undebit and SV Check (calypso-protocol.md 2.9)."""

    def prepare_sv(self, request: SvRequest) -> SvSecurityData:
        """Compute the terminal SV data for an SV Reload, Debit or Undebit."""
        ...

    def verify_card_sv_mac(self, card_sv_mac: bytes) -> bool:
        """Check the card's SV signature (out of session, or postponed at Close)."""
        ...


class FullSessionCrypto(
    ExtendedSessionCrypto, PinCrypto, KeyChangeCrypto, SvCrypto, DigestFlush, Protocol
):
    """Everything of the Keyple symmetric SPI, plus the early digest flush."""


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

    @property
    def card_payload_capacity(self) -> int:
        """Largest card APDU data in a session this SAM can digest (65, 235 or 250 bytes)."""
        ...

    @property
    def exchanges(self) -> Sequence[Exchange]:
        """The SAM's APDU exchanges since the last ``reset_exchanges``, in order (the trace)."""
        ...

    def reset_exchanges(self) -> None:
        """Forget the exchanges so far (a tap's trace starts here; none is kept beyond it)."""
        ...
