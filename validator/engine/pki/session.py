# SPDX-License-Identifier: Apache-2.0
"""A PKI secure session: the card signs the session with its own key; no SAM is asked anything.

The session's reads and writes are the symmetric session's (validator.engine.session, which
the card layouts drive): only what opens, closes and cancels the session differs, and what
checks the card at the end. Here (reference/calypso-pki.md "Session", docs/pki.md):

- Open Secure Session in PKI mode (P2 low bits 3) with an 8-byte terminal challenge, reading
  the layout's first record as in symmetric mode; the answer must name the selected serial.
- Each command and answer of the session goes into the signed stream through the session's
  ``crypto`` seam (``PkiSessionCrypto``, the shape of Keyple's asymmetric SPI: init, update,
  verify), so the reads and writes feed it exactly where they feed a SAM's digest.
- Close ``CLA 8E P1 00 00`` (once the closing intent is durable, as in symmetric mode) answers
  the 64-byte ECDSA P-256 signature, verified with the key of the card's verified certificate:
  the gate opens only then. A Close sent and not answered is
  an unknown outcome, settled at the card's next tap as for a symmetric session.
- Cancel re-selects the application: PKI mode has no abort of its own, and the symmetric abort
  ``CLA 8E 00 00 00`` is the PKI Close (the card would sign and commit the writes).
- No stored value (the card refuses it in PKI mode) and no multiple-session mode.
"""

from __future__ import annotations

from collections.abc import Callable

from calypso.card_image import CalypsoCard
from calypso.commands.pki import (
    TERMINAL_CHALLENGE_SIZE,
    close_pki_secure_session,
    open_pki_secure_session,
    parse_close_pki_secure_session,
    parse_open_pki_secure_session,
)
from calypso.commands.select import select_application
from calypso.commands.session import OpenSessionData, ratification
from calypso.commands.sv import SvGetData
from calypso.constants import WriteAccessLevel
from calypso.errors import CardCommandError, CardResponseError
from calypso.pki.session import (
    CardPublicKey,
    SignedStream,
    stream_item,
    verify_session_signature,
)
from readers.base import ReaderError
from readers.channel import ApduChannel
from validator.engine.session import SecureSession
from validator.engine.session_types import (
    CloseOutcomeUnknownError,
    InvalidCardMacError,
    Ratification,
    SessionError,
    SessionState,
    SessionStateError,
)

NO_KEY = 0xFF  # no KIF/KVC in PKI mode: the card's certificate names its key


class InvalidCardSignatureError(InvalidCardMacError):
    """The card's session signature does not verify with its certified key: the gate stays
    shut (the card committed: its writes are journaled as for a wrong symmetric card MAC)."""

    reason = "card_signature_invalid"


class PkiSessionCrypto:
    """The signed stream of one PKI session and the check of the card's signature over it.

    It stands where a SAM's SessionCrypto stands (the session feeds it each command, without
    its Le when case 4, and each answer with its SW), and computes nothing secret: there is no
    terminal MAC in PKI mode.
    """

    def __init__(self, public_key: CardPublicKey, rng: Callable[[int], bytes]) -> None:
        self.public_key = public_key
        self.rng = rng
        self.stream = SignedStream()

    def init_session(self) -> bytes:
        """The terminal challenge of the PKI Open (8 bytes)."""
        challenge = self.rng(TERMINAL_CHALLENGE_SIZE)
        if len(challenge) != TERMINAL_CHALLENGE_SIZE:
            raise SessionError("the terminal challenge source gave the wrong size")
        return challenge

    def start(self, command: bytes, response: bytes) -> None:
        """A new stream from the Open command (its Le dropped) and the card's whole answer."""
        self.stream = SignedStream()
        self.update_session_mac(stream_item(command, command=True))
        self.update_session_mac(response)

    def init_session_mac(self, open_data_out: bytes, kif: int, kvc: int) -> None:
        """Not used: the PKI stream starts with the Open command itself (``start``)."""
        raise SessionStateError("a PKI session starts its stream with start()")

    def update_session_mac(self, apdu: bytes) -> None:
        """Add one item to the signed stream (SessionError for one no length byte can hold)."""
        try:
            self.stream.add(apdu)
        except ValueError as exc:
            raise SessionError(f"PKI session: {exc}") from None

    def finalize_session_mac(self) -> bytes:
        """Not used: a PKI Close carries no terminal MAC."""
        raise SessionStateError("no terminal MAC in a PKI session")

    def verify_card_session_mac(self, card_mac: bytes) -> bool:
        """Whether the Close answer is the card's ECDSA signature over the stream."""
        return verify_session_signature(self.public_key, self.stream, card_mac)


class PkiSecureSession(SecureSession):
    """A secure session in PKI mode over the card channel alone (see the module docstring)."""

    def __init__(
        self,
        card: ApduChannel,
        image: CalypsoCard,
        public_key: CardPublicKey,
        *,
        rng: Callable[[int], bytes],
    ) -> None:
        """``public_key`` is the card's, from its verified certificate (or the cache)."""
        self.pki = PkiSessionCrypto(public_key, rng)
        super().__init__(card, self.pki, image, overlap=False)
        self.signature: bytes | None = None

    def open(
        self, level: WriteAccessLevel, *, read: tuple[int, int] | None = None
    ) -> OpenSessionData:
        """Open in PKI mode, reading one record (SFI, record) in the same command.

        The access level is the card's choice in PKI mode (its profile's session key slot,
        debit on the cards this house issues): ``level`` is kept for the buffer accounting.
        """
        if self.state is not SessionState.IDLE:
            raise SessionStateError(f"cannot open a PKI session in state {self.state.value}")
        sfi, record = read if read is not None else (0, 0)
        command = open_pki_secure_session(self.pki.init_session(), sfi=sfi, record=record)
        response = self.card.transmit(command)
        data = parse_open_pki_secure_session(response, command)
        application = self.image.application
        if data.serial != application.serial:
            # Not the card that was selected (and whose certificate was checked): leave it
            # there, re-selecting cancels its session.
            self.state = SessionState.OPEN
            raise SessionError(
                f"the PKI Open answer names serial {data.serial.hex().upper()}, "
                f"not {application.serial.hex().upper()}"
            )
        self._snapshot = self.image.snapshot()
        self.image.transaction_counter = data.transaction_counter
        self.image.ratified = data.ratified
        if read is not None:
            self.image.set_record(sfi, record, data.record_data)
        self.pki.start(bytes(command), bytes(response))
        self.open_data = OpenSessionData(
            data.data_out,
            data.transaction_counter,
            data.card_challenge,
            data.ratified,
            NO_KEY,
            NO_KEY,
            data.record_data,
        )
        self.state = SessionState.OPEN
        self._multiple.opened(level)
        return self.open_data

    def prepare_writes(self) -> None:
        """Nothing to prepare: with no SAM there is no work to overlap with the card's, so
        each write goes at once (and the stream holds the card's real answers)."""
        self._require_open()

    def sv_get(self) -> SvGetData:
        """Refused: stored value is not available in a PKI session (docs/pki.md)."""
        raise SessionStateError("no stored value in a PKI session")

    def sv_debit(self, amount: int, *, date: bytes, time: bytes) -> None:
        """Refused: stored value is not available in a PKI session (docs/pki.md)."""
        raise SessionStateError("no stored value in a PKI session")

    def close(self, ratification_mode: Ratification = Ratification.COMMAND) -> None:
        """Close the session and verify the card's signature with its certified key.

        Raises:
            CloseOutcomeUnknownError: the card was lost, or answered other than a signature,
                after Close was sent: it may have committed.
            InvalidCardSignatureError: the card committed but its signature does not verify.
            JournalError: from ``on_close``: the closing intent is not durable, Close not sent.
        """
        self._require_open()
        # DESIGN section 6: the closing intent is on disk before a Close that may commit writes
        # is sent, as in symmetric mode (SecureSession.on_close); else the session is dropped.
        if self.on_close is not None and self.writes:
            self.on_close(list(self.writes))()
        command = close_pki_secure_session(
            ratify_now=ratification_mode is Ratification.IMMEDIATE, cla=self.cla
        )
        self.state = SessionState.CLOSING
        try:
            response = self.card.transmit(command)
        except ReaderError as exc:
            self.state = SessionState.UNKNOWN
            raise CloseOutcomeUnknownError(self.image.transaction_counter) from exc
        try:
            signature = parse_close_pki_secure_session(response, command)
        except (CardCommandError, CardResponseError) as exc:
            # Any answer but a signature, once Close was sent, may come from a card that
            # committed: never rerun; settled from its event log at its next tap.
            self.state = SessionState.UNKNOWN
            raise CloseOutcomeUnknownError(self.image.transaction_counter) from exc
        self.state = SessionState.CLOSED
        self.card_mac = self.signature = signature
        verified = self.pki.verify_card_session_mac(signature)
        if ratification_mode is Ratification.COMMAND:
            try:
                self.card.transmit(ratification(cla=self.cla))  # its status word is ignored
                self.ratification_sent = True
            except ReaderError:
                pass  # the card keeps the new data, marked not ratified (DESIGN section 5)
        if not verified:
            raise InvalidCardSignatureError("the card's session signature does not verify")
        self.mac_verified = True

    def cancel(self) -> None:
        """Drop the card's session by selecting the application again, and restore the image.

        Never the symmetric abort: in PKI mode those bytes close the session (docs/pki.md).
        """
        if self.state is not SessionState.OPEN:
            return
        try:
            self.card.transmit(select_application(self.image.application.df_name))
        except ReaderError:
            pass  # a card that left the field drops its session by itself
        self._rolled_back()
