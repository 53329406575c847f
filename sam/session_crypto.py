# SPDX-License-Identifier: Apache-2.0
"""LegacySessionCrypto: every call of the Keyple symmetric SPI (csim1.md 2.2) as SAM APDUs.

Digest items are buffered and sent packed in Digest Update Multiple (or single Digest Updates)
at ``finalize_session_mac``, before any other SAM command of the session, or earlier when the
engine calls ``flush`` while the card works (docs/sam.md, "Overlapping SAM and card work").
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum
from typing import Protocol

from readers.apdu import SW, CommandApdu, ResponseApdu
from sam import commands as cmd
from sam.atr import SamIdentity
from sam.base import SamError, SvRequest, SvSecurityData
from sam.commands import SamCommandRef
from sam.commands.sv import parse_sv_prepare, sv_prepare_ref


class SamLink(Protocol):
    """What a session's crypto asks of its SAM client (sam.client.LegacySam is the one).

    A protocol rather than the client's class: the client builds the session crypto, so the
    crypto naming the client would make the two modules import each other.
    """

    identity: SamIdentity

    @property
    def serial(self) -> bytes:
        """SAM serial number (4 bytes)."""
        ...

    @property
    def has_prefetched_challenge(self) -> bool:
        """Whether the next session can skip Get Challenge."""
        ...

    def select_diversifier(self, diversifier: bytes) -> None:
        """Send Select Diversifier unless the SAM already holds this diversifier."""
        ...

    def take_challenge(self, length: int) -> bytes:
        """The prefetched challenge, or a fresh one."""
        ...

    def send(
        self,
        ref: cmd.SamCommandRef,
        command: CommandApdu,
        *,
        accept: Collection[int] = (SW.OK,),
        secret: bool = False,
    ) -> ResponseApdu:
        """Send one SAM command; a refused status word raises its SamCommandError."""
        ...


class _State(Enum):
    NEW = "new"  # no session yet: PIN, Change Key and SV outside a session are allowed
    OPENING = "opening"  # challenge given, waiting for the Open Secure Session data-out
    DIGESTING = "digesting"
    AUTHENTICATING = "authenticating"  # mid-session terminal MAC given, card MAC expected
    CLOSED = "closed"  # terminal MAC given, waiting for the card MAC
    DONE = "done"


class LegacySessionCrypto:
    """SessionCrypto (and the rest of the SPI: FullSessionCrypto) for one card, over a LegacySam."""

    def __init__(self, sam: SamLink, diversifier: bytes, *, extended: bool) -> None:
        self._sam = sam
        self._diversifier = diversifier
        self.extended = extended
        self._items: list[bytes] = []
        self._state = _State.NEW
        self._key: tuple[int, int] | None = None  # session KIF/KVC
        self._encrypted = False
        self._sv_pending = False
        self._select_pending = False  # Select Diversifier deferred to Digest Init

    def __repr__(self) -> str:
        mode = "extended" if self.extended else "regular"
        return f"LegacySessionCrypto({mode}, {self._state.value}, {len(self._items)} pending)"

    @property
    def _cla(self) -> int:
        return self._sam.identity.cla

    @property
    def _half(self) -> int:
        return 8 if self.extended else 4

    @property
    def encrypted(self) -> bool:
        """Whether items now travel through Digest Update P2=80."""
        return self._encrypted

    @property
    def pending_items(self) -> int:
        """Digest items buffered and not yet sent to the SAM."""
        return len(self._items)

    # --- SessionCrypto ----------------------------------------------------------------------

    def init_session(self) -> bytes:
        """Select the diversifier if it changed, then return the SAM challenge (4 or 8 bytes)."""
        self._expect(_State.NEW)
        if self._sam.has_prefetched_challenge:
            # Select Diversifier may follow Get Challenge (csim1.md 3.3): with a pre-fetched
            # challenge it goes with Digest Init, after the card's Open, off the passenger's
            # path. Without one, Keyple's order: Select Diversifier, then Get Challenge.
            self._select_pending = True
        else:
            self._sam.select_diversifier(self._diversifier)
        challenge = self._sam.take_challenge(self._half)
        self._state = _State.OPENING
        return challenge

    def init_session_mac(self, open_data_out: bytes, kif: int, kvc: int) -> None:
        """Send Digest Init with the KIF/KVC and the Open Secure Session data-out (no SW)."""
        self._expect(_State.OPENING)
        if kif == 0x00 or kvc == 0x00:
            raise SamError(f"refusing Digest Init with KIF {kif:02X} / KVC {kvc:02X}")
        if self._select_pending:
            self._select_pending = False
            self._sam.select_diversifier(self._diversifier)
        command = cmd.digest_init(kif, kvc, open_data_out, extended=self.extended, cla=self._cla)
        self._sam.send(SamCommandRef.DIGEST_INIT, command)
        self._key = (kif, kvc)
        self._state = _State.DIGESTING

    def init_verification(
        self, terminal_challenge: bytes, open_data_out: bytes, kif: int, kvc: int
    ) -> None:
        """Digest Init in verification mode (P1 bit0, CSIM1 extension): replay a past session.

        No Get Challenge: the journaled terminal challenge travels in the Digest Init data.
        """
        self._expect(_State.NEW)
        self._sam.select_diversifier(self._diversifier)
        command = cmd.digest_init(
            kif,
            kvc,
            open_data_out,
            extended=self.extended,
            verification=True,
            terminal_challenge=terminal_challenge,
            cla=self._cla,
        )
        self._sam.send(SamCommandRef.DIGEST_INIT, command)
        self._key = (kif, kvc)
        self._state = _State.DIGESTING

    def update_session_mac(self, apdu: bytes) -> None:
        """Buffer one in-session command (Le stripped if case 4) or response (with SW)."""
        self._expect(_State.DIGESTING)
        if self._encrypted:
            raise SamError("encrypted session: items go through process_session_apdu")
        self._buffer(apdu)

    def finalize_session_mac(self) -> bytes:
        """Send the buffered items then Digest Close; return the terminal MAC for Close."""
        self._expect(_State.DIGESTING)
        self.flush()
        command = cmd.digest_close(extended=self.extended, cla=self._cla)
        response = self._sam.send(SamCommandRef.DIGEST_CLOSE, command)
        mac = cmd.parse_digest_close(response, extended=self.extended)
        self._state = _State.CLOSED
        return mac

    def verify_card_session_mac(self, card_mac: bytes) -> bool:
        """Digest Authenticate of the card MAC (Close, or Manage Secure Session): False on 6988.

        After Close the session is over; after a mid-session authentication it goes on if the
        MAC is right. A MAC of the wrong length is not authentic and is not sent.
        """
        if self._state is not _State.AUTHENTICATING:
            self._expect(_State.CLOSED)
        mid_session = self._state is _State.AUTHENTICATING
        self._state = _State.DONE
        if len(card_mac) != self._half:
            return False
        command = cmd.digest_authenticate(card_mac, cla=self._cla)
        response = self._sam.send(
            SamCommandRef.DIGEST_AUTHENTICATE, command, accept=(SW.OK, SW.INCORRECT_SIGNATURE)
        )
        valid = cmd.parse_digest_authenticate(response)
        if valid and mid_session:
            self._state = _State.DIGESTING
        return valid

    # --- DigestFlush ------------------------------------------------------------------------

    def flush(self, *, complete_only: bool = False) -> int:
        """Send buffered items now; returns how many APDUs went to the SAM.

        With ``complete_only`` a packing SAM keeps the last, not yet full, Digest Update
        Multiple for later, so early flushing never costs an extra APDU.
        """
        if not self._items:
            return 0
        identity = self._sam.identity
        if not identity.supports_digest_multiple:
            sent = len(self._items)
            for item in self._items:
                self._send_single(item)
            self._items.clear()
            return sent
        groups = cmd.pack_digest_items(self._items, identity.max_digest_data)
        if complete_only:
            groups = groups[:-1]
        sent = 0
        for group in groups:
            if sum(len(item) + 1 for item in group) <= identity.max_digest_data:
                command = cmd.digest_update_multiple(group, cla=self._cla)
                self._sam.send(SamCommandRef.DIGEST_UPDATE_MULTIPLE, command)
            else:  # one item too large to be framed within the limit
                self._send_single(group[0])
            sent += 1
            del self._items[: len(group)]
        return sent

    # --- ExtendedSessionCrypto --------------------------------------------------------------

    def generate_terminal_session_mac(self) -> bytes:
        """Flush, then Digest Internal Authenticate: the 8-byte MAC for Manage Secure Session."""
        self._expect(_State.DIGESTING)
        if not self.extended:
            raise SamError("mutual authentication needs an extended session")
        self.flush()
        command = cmd.digest_internal_authenticate(cla=self._cla)
        response = self._sam.send(SamCommandRef.DIGEST_INTERNAL_AUTHENTICATE, command)
        mac = cmd.parse_digest_internal_authenticate(response)
        self._state = _State.AUTHENTICATING
        return mac

    def activate_encryption(self) -> None:
        """From the next item on, items go through Digest Update P2=80 (csim1.md 3.5)."""
        self._expect(_State.DIGESTING)
        if not self.extended:
            raise SamError("encryption needs an extended session")
        self.flush()
        self._encrypted = True

    def deactivate_encryption(self) -> None:
        """From the next item on, items are buffered in plain again."""
        self._expect(_State.DIGESTING)
        self._encrypted = False

    def process_session_apdu(self, apdu: bytes) -> bytes:
        """Digest one item and return it as it travels (ciphered command / plain response)."""
        self._expect(_State.DIGESTING)
        if not self._encrypted:
            self._buffer(apdu)
            return bytes(apdu)
        self._check_item(apdu)
        self.flush()
        command = cmd.digest_update(apdu, encrypted=True, cla=self._cla)
        response = self._sam.send(SamCommandRef.DIGEST_UPDATE, command)
        processed = cmd.parse_digest_update(response)
        if len(processed) != len(apdu):
            raise cmd.SamResponseLengthError(
                f"SAM Digest Update: expected {len(apdu)} bytes, got {len(processed)}"
            )
        return processed

    # --- PinCrypto, KeyChangeCrypto ---------------------------------------------------------

    def cipher_pin_for_presentation(
        self, card_challenge: bytes, pin: bytes, kif: int | None = None, kvc: int | None = None
    ) -> bytes:
        """Give Random + Card Cipher PIN (80 12 80 FF): the 8-byte Verify PIN block."""
        kif, kvc = self._pin_key(kif, kvc)
        command = cmd.card_cipher_pin(kif, kvc, pin, cla=self._cla)
        self._give_random(card_challenge)
        response = self._sam.send(SamCommandRef.CARD_CIPHER_PIN, command, secret=True)
        return cmd.parse_card_cipher_pin(response)

    def cipher_pin_for_modification(
        self,
        card_challenge: bytes,
        current_pin: bytes,
        new_pin: bytes,
        kif: int | None = None,
        kvc: int | None = None,
    ) -> bytes:
        """Give Random + Card Cipher PIN (80 12 40 FF): the 16-byte Change PIN block."""
        kif, kvc = self._pin_key(kif, kvc)
        command = cmd.card_cipher_pin(kif, kvc, current_pin, new_pin, cla=self._cla)
        self._give_random(card_challenge)
        response = self._sam.send(SamCommandRef.CARD_CIPHER_PIN, command, secret=True)
        return cmd.parse_card_cipher_pin(response, change=True)

    def generate_ciphered_card_key(
        self,
        card_challenge: bytes,
        issuer_kif: int | None,
        issuer_kvc: int | None,
        target_kif: int,
        target_kvc: int,
    ) -> bytes:
        """Give Random + Card Generate Key: the 32-byte Change Key cryptogram (outside session)."""
        if self._state not in (_State.NEW, _State.DONE):
            raise SamError("Change Key is only done outside a secure session")
        self._prepare_card_key_command()
        command = cmd.card_generate_key(
            target_kif, target_kvc, issuer_kif, issuer_kvc, cla=self._cla
        )
        self._give_random(card_challenge)
        response = self._sam.send(SamCommandRef.CARD_GENERATE_KEY, command)
        return cmd.parse_card_generate_key(response)

    # --- SvCrypto ---------------------------------------------------------------------------

    def prepare_sv(self, request: SvRequest) -> SvSecurityData:
        """SV Prepare Load/Debit/Undebit (after flushing the digest, in a session)."""
        self._prepare_card_key_command()
        command = cmd.sv_prepare(
            request.operation,
            request.sv_get_header,
            request.sv_get_response,
            request.partial_command,
            cla=self._cla,
        )
        response = self._sam.send(sv_prepare_ref(request.operation), command)
        prepared = parse_sv_prepare(response, request.operation, extended=request.extended)
        self._sv_pending = True
        return SvSecurityData(
            serial=self._sam.serial,
            challenge=prepared.challenge,
            transaction_number=prepared.transaction_number,
            terminal_sv_mac=prepared.terminal_sv_mac,
        )

    def verify_card_sv_mac(self, card_sv_mac: bytes) -> bool:
        """SV Check of the card's SV signature: False on 6988 or a signature of the wrong size."""
        if not self._sv_pending:
            raise SamError("no SV operation prepared")
        self._sv_pending = False
        if len(card_sv_mac) not in (3, 6):
            self._sam.send(SamCommandRef.SV_CHECK, cmd.sv_check(None, cla=self._cla))
            return False
        command = cmd.sv_check(card_sv_mac, cla=self._cla)
        response = self._sam.send(
            SamCommandRef.SV_CHECK, command, accept=(SW.OK, SW.INCORRECT_SIGNATURE)
        )
        return cmd.parse_sv_check(response)

    def abort_sv(self) -> None:
        """Cancel a prepared SV operation on the SAM (SV Check with no data)."""
        if self._sv_pending:
            self._sv_pending = False
            self._sam.send(SamCommandRef.SV_CHECK, cmd.sv_check(None, cla=self._cla))

    # --- plumbing ---------------------------------------------------------------------------

    def _buffer(self, apdu: bytes) -> None:
        self._check_item(apdu)
        self._items.append(bytes(apdu))

    def _check_item(self, apdu: bytes) -> None:
        limit = min(cmd.MAX_DIGEST_ITEM, self._sam.identity.max_digest_data)
        if not 1 <= len(apdu) <= limit:
            raise SamError(
                f"a digest item must be 1 to {limit} bytes for this SAM, got {len(apdu)}"
            )

    def _send_single(self, item: bytes) -> None:
        command = cmd.digest_update(item, cla=self._cla)
        self._sam.send(SamCommandRef.DIGEST_UPDATE, command)

    def _pin_key(self, kif: int | None, kvc: int | None) -> tuple[int, int]:
        if kif is None or kvc is None:
            if self._state is not _State.DIGESTING or self._key is None:
                raise SamError("PIN ciphering outside a session needs the PIN ciphering KIF/KVC")
            kif, kvc = self._key  # inside a session: the session key (2.10)
        self._prepare_card_key_command()
        return kif, kvc

    def _give_random(self, card_challenge: bytes) -> None:
        command = cmd.give_random(card_challenge, cla=self._cla)
        self._sam.send(SamCommandRef.GIVE_RANDOM, command)

    def _prepare_card_key_command(self) -> None:
        # Inside a session the buffered digest goes first (csim1.md 1.4); outside, the card's
        # diversifier must be selected. Never between Get Challenge and Digest Init.
        if self._state is _State.OPENING or self._state is _State.AUTHENTICATING:
            raise SamError(f"no SAM command allowed while the session is {self._state.value}")
        if self._state is _State.DIGESTING:
            self.flush()
        else:
            self._sam.select_diversifier(self._diversifier)

    def _expect(self, state: _State) -> None:
        if self._state is not state:
            raise SamError(f"session crypto used out of order: {self._state.value}")
