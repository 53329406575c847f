# SPDX-License-Identifier: Apache-2.0
"""LegacySam: the SessionCrypto seam realised with legacy SAM APDUs over any ApduChannel.

Sequence (calypso-protocol.md 2.3, csim1.md 1.3-1.4 and 2.2): [Select Diversifier] + Get Challenge
(or a prefetched challenge), card Open Secure Session, Digest Init at once, in-session items
buffered, then at close Digest Update Multiple (or single Digest Updates) + Digest Close, and
Digest Authenticate of the card MAC.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum

from readers.apdu import SW, ApduError, CommandApdu, ResponseApdu
from readers.base import ReaderError
from readers.channel import ApduChannel
from sam import commands as cmd
from sam.atr import SamIdentity, parse_sam_atr
from sam.base import SamError, SamUnavailableError
from sam.commands import SamCommandRef


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
    ) -> ResponseApdu:
        """Send one SAM command; a refused SW becomes the command's typed SamCommandError."""
        if ref is not SamCommandRef.SELECT_DIVERSIFIER:
            # Nothing but Select Diversifier may sit between Get Challenge and Digest Init.
            self._challenge = None
        try:
            return self.channel.send(command, accept=accept)
        except ApduError as exc:
            # The SAM state is now uncertain: re-select the diversifier next time.
            self._diversifier = None
            raise cmd.status_error(ref, exc) from exc
        except ReaderError as exc:
            # Kept apart from card transport errors: a lost SAM is never a lost card.
            self._diversifier = None
            raise SamUnavailableError(f"SAM did not answer {ref.label}: {exc}") from exc
        except Exception:
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


class _State(Enum):
    NEW = "new"
    OPENING = "opening"  # challenge given, waiting for the Open Secure Session data-out
    DIGESTING = "digesting"
    CLOSED = "closed"  # terminal MAC given, waiting for the card MAC
    DONE = "done"


class LegacySessionCrypto:
    """SessionCrypto for one card session, over a LegacySam."""

    def __init__(self, sam: LegacySam, diversifier: bytes, *, extended: bool) -> None:
        self._sam = sam
        self._diversifier = diversifier
        self.extended = extended
        self._items: list[bytes] = []
        self._state = _State.NEW

    @property
    def _cla(self) -> int:
        return self._sam.identity.cla

    @property
    def _half(self) -> int:
        return 8 if self.extended else 4

    def init_session(self) -> bytes:
        """Select the diversifier if it changed, then return the SAM challenge (4 or 8 bytes)."""
        self._expect(_State.NEW)
        self._sam.select_diversifier(self._diversifier)
        challenge = self._sam.take_challenge(self._half)
        self._state = _State.OPENING
        return challenge

    def init_session_mac(self, open_data_out: bytes, kif: int, kvc: int) -> None:
        """Send Digest Init with the KIF/KVC and the Open Secure Session data-out (no SW)."""
        self._expect(_State.OPENING)
        if kif == 0x00 or kvc == 0x00:
            raise SamError(f"refusing Digest Init with KIF {kif:02X} / KVC {kvc:02X}")
        command = cmd.digest_init(kif, kvc, open_data_out, extended=self.extended, cla=self._cla)
        self._sam.send(SamCommandRef.DIGEST_INIT, command)
        self._state = _State.DIGESTING

    def update_session_mac(self, apdu: bytes) -> None:
        """Buffer one in-session command (Le stripped if case 4) or response (with SW)."""
        self._expect(_State.DIGESTING)
        if not 1 <= len(apdu) <= cmd.MAX_DIGEST_ITEM:
            raise SamError(f"a digest item must be 1 to 255 bytes, got {len(apdu)}")
        self._items.append(bytes(apdu))

    def finalize_session_mac(self) -> bytes:
        """Send the buffered items then Digest Close; return the terminal MAC for Close."""
        self._expect(_State.DIGESTING)
        identity = self._sam.identity
        if identity.supports_digest_multiple:
            for group in cmd.pack_digest_items(self._items, identity.max_digest_data):
                if sum(len(item) + 1 for item in group) <= identity.max_digest_data:
                    command = cmd.digest_update_multiple(group, cla=self._cla)
                    self._sam.send(SamCommandRef.DIGEST_UPDATE_MULTIPLE, command)
                else:  # one item too large to be framed within the limit
                    self._send_single(group[0])
        else:
            for item in self._items:
                self._send_single(item)
        self._items.clear()
        command = cmd.digest_close(extended=self.extended, cla=self._cla)
        response = self._sam.send(SamCommandRef.DIGEST_CLOSE, command)
        mac = cmd.parse_digest_close(response, extended=self.extended)
        self._state = _State.CLOSED
        return mac

    def verify_card_session_mac(self, card_mac: bytes) -> bool:
        """Send Digest Authenticate: True on 9000, False on 6988 or a MAC of the wrong length."""
        self._expect(_State.CLOSED)
        self._state = _State.DONE
        if len(card_mac) != self._half:
            return False
        command = cmd.digest_authenticate(card_mac, cla=self._cla)
        response = self._sam.send(
            SamCommandRef.DIGEST_AUTHENTICATE, command, accept=(SW.OK, SW.INCORRECT_SIGNATURE)
        )
        return cmd.parse_digest_authenticate(response)

    def _send_single(self, item: bytes) -> None:
        command = cmd.digest_update(item, cla=self._cla)
        self._sam.send(SamCommandRef.DIGEST_UPDATE, command)

    def _expect(self, state: _State) -> None:
        if self._state is not state:
            raise SamError(f"session crypto used out of order: {self._state.value}")
