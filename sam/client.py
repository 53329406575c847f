# SPDX-License-Identifier: Apache-2.0
"""LegacySam: the SessionCrypto seam realised with legacy SAM APDUs over any ApduChannel.

Sequence (calypso-protocol.md 2.3, csim1.md 1.3-1.4 and 2.2): [Select Diversifier] + Get Challenge
(or a prefetched challenge), card Open Secure Session, Digest Init at once, in-session items
buffered, then at close Digest Update Multiple (or single Digest Updates) + Digest Close, and
Digest Authenticate of the card MAC. The per-card calls live in ``sam.session_crypto``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from readers.apdu import SW, CommandApdu, ResponseApdu
from readers.base import ReaderError
from readers.channel import ApduChannel, redacted
from readers.trace import Exchange
from sam import commands as cmd
from sam.atr import SamIdentity, parse_sam_atr
from sam.base import SamError, SamUnavailableError
from sam.commands import SamCommandRef
from sam.session_crypto import LegacySessionCrypto

__all__ = ["LegacySam", "LegacySessionCrypto"]


class LegacySam:
    """A legacy SAM (C1, HSM C1, S1E1, S1Dx; hardware or software) driven through its APDUs."""

    def __init__(self, channel: ApduChannel, identity: SamIdentity | bytes | None = None) -> None:
        self.channel = channel
        if identity is None:
            identity = channel.connection.atr
        self.identity = identity if isinstance(identity, SamIdentity) else parse_sam_atr(identity)
        self._diversifier: bytes | None = None  # last diversifier the SAM acknowledged
        self._challenge: bytes | None = None  # prefetched, not yet used

    @property
    def serial(self) -> bytes:
        """SAM serial number (4 bytes, from the ATR)."""
        return self.identity.serial

    @property
    def card_payload_capacity(self) -> int:
        """Largest card APDU data in a session this SAM can digest: its limit minus 5 (section 0).

        65 with an S1Dx, 235 with an S1E1, 250 with a C1 (Keyple getMaxCardApduLengthSupported).
        """
        return self.identity.max_digest_data - 5

    @property
    def exchanges(self) -> Sequence[Exchange]:
        """The SAM exchanges on the channel since the last ``reset_exchanges`` (the tap trace)."""
        return self.channel.exchanges

    def reset_exchanges(self) -> None:
        """Forget the channel's exchanges so far, so that they never pile up across taps."""
        self.channel.reset_trace()

    def close(self) -> None:
        """Let go of the SAM's connection: a PC/SC reader is held exclusively until then."""
        try:
            self.channel.connection.close()
        except ReaderError:
            pass  # gone with pcscd or the SAM already

    @property
    def has_prefetched_challenge(self) -> bool:
        """Whether the next session can skip Get Challenge."""
        return self._challenge is not None

    def prefetch(self, *, extended: bool = False) -> None:
        """Fetch the next session challenge ahead of time (between taps, off the passenger's time).

        Fetches 4 bytes for a regular session. Keyple's preInitTerminalSessionContext fetches 8
        and truncates to 4 in regular mode; the first 4 bytes are what the SAM then uses either
        way (csim1.md 1.3). A SAM command other than Select Diversifier drops the challenge.
        """
        if self._challenge is not None and len(self._challenge) >= (8 if extended else 4):
            return
        self._challenge = self._get_challenge(8 if extended else 4)

    def session_crypto(self, card_serial: bytes, *, extended: bool = False) -> LegacySessionCrypto:
        """Return the SessionCrypto for one session with the card of this serial number."""
        if extended and not self.identity.supports_extended:
            raise SamError(f"{self.identity.sam_type.value} does not support extended sessions")
        return LegacySessionCrypto(self, cmd.pad_diversifier(card_serial), extended=extended)

    # --- APDU plumbing, shared by the sessions ---------------------------------------------

    def send(
        self,
        ref: SamCommandRef,
        command: CommandApdu,
        *,
        accept: Collection[int] = (SW.OK,),
        secret: bool = False,
    ) -> ResponseApdu:
        """Send one SAM command; its status table turns a refused SW into a SamCommandError.

        ``secret`` keeps the command's data (PIN, unlock data) out of traces, logs and errors.
        """
        if ref is not SamCommandRef.SELECT_DIVERSIFIER:
            # Nothing but Select Diversifier may sit between Get Challenge and Digest Init.
            self._challenge = None
        try:
            response = self.channel.transmit(command, secret=secret)
            return cmd.check_status(
                ref, response, redacted(command) if secret else command, accept=accept
            )
        except ReaderError as exc:
            # Kept apart from card transport errors: a lost SAM is never a lost card.
            self._diversifier = None
            raise SamUnavailableError(f"SAM did not answer {ref.label}: {exc}") from exc
        except Exception:
            # A refusal too: the SAM state is uncertain, re-select the diversifier next time.
            self._diversifier = None
            raise

    def select_diversifier(self, diversifier: bytes) -> None:
        """Send Select Diversifier unless the SAM already holds this diversifier."""
        if diversifier == self._diversifier:
            return
        self.send(
            SamCommandRef.SELECT_DIVERSIFIER,
            cmd.select_diversifier(diversifier, cla=self.identity.cla),
        )
        self._diversifier = diversifier

    def take_challenge(self, length: int) -> bytes:
        """Return the prefetched challenge (first ``length`` bytes), or fetch a fresh one."""
        challenge, self._challenge = self._challenge, None
        if challenge is not None and len(challenge) >= length:
            return challenge[:length]
        return self._get_challenge(length)

    def _get_challenge(self, length: int) -> bytes:
        command = cmd.get_challenge(length, cla=self.identity.cla)
        response = self.send(SamCommandRef.GET_CHALLENGE, command)
        return cmd.parse_get_challenge(response, length)

    # --- SAM management ---------------------------------------------------------------------

    def unlock(self, unlock_data: bytes) -> None:
        """Unlock the SAM (static 16 bytes or dynamic 8 bytes); a SAM not locked is fine."""
        command = cmd.unlock(unlock_data, cla=self.identity.cla)
        response = self.send(
            SamCommandRef.UNLOCK,
            command,
            accept=(SW.OK, SW.CONDITIONS_NOT_SATISFIED),
            secret=True,
        )
        cmd.parse_unlock(response, accept_not_locked=True)

    def read_key_parameters(self, kif: int, kvc: int) -> cmd.KeyParameters:
        """Read the parameters of the work key KIF/KVC (never the key)."""
        command = cmd.read_key_parameters(kif, kvc, cla=self.identity.cla)
        response = self.send(
            SamCommandRef.READ_KEY_PARAMETERS, command, accept=(SW.OK, SW.WARNING_NO_INFO)
        )
        return cmd.parse_read_key_parameters(response)

    def read_event_counters(self, record: int = 0) -> list[int]:
        """The nine event counters of one record (0 to 2)."""
        command = cmd.read_event_counter(record, cla=self.identity.cla)
        response = self.send(
            SamCommandRef.READ_EVENT_COUNTER, command, accept=(SW.OK, SW.WARNING_NO_INFO)
        )
        return cmd.parse_read_event_counter(response)
