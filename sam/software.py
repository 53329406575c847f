# SPDX-License-Identifier: Apache-2.0
"""SoftwareSam: an in-process SAM C1 look-alike answering the session APDUs with CSIM1.

Commands and status words: calypso-protocol.md section 3; crypto: csim1.md 3.2-3.5. It is an
ApduHandler, so the validator drives it through LegacySam exactly like a hardware SAM.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from calypso import crypto
from readers.apdu import SW, CommandApdu
from sam.atr import build_sam_atr
from sam.commands import CLA_SAM, SamCommandRef, parse_digest_items
from sam.keys import KeySet, load_keys

SOFTWARE_ISSUER = 0xF5  # distinctive software issuer byte (08 would read as an HSM C1)
SOFTWARE_SERIAL = bytes.fromhex("5AFE0001")
SOFTWARE_VERSION = 0x01
SOFTWARE_REVISION = 0x00

Rng = Callable[[int], bytes]

# Commands allowed between Get Challenge and Digest Init (a new Get Challenge restarts the window).
_CHALLENGE_WINDOW = frozenset(
    ref.ins
    for ref in (
        SamCommandRef.SELECT_DIVERSIFIER,
        SamCommandRef.DIGEST_INIT,
        SamCommandRef.GET_CHALLENGE,
    )
)


class _Phase(Enum):
    IDLE = "idle"
    CHALLENGE = "challenge"  # Get Challenge done: only Select Diversifier or Digest Init may follow
    DIGEST = "digest"
    CLOSED = "closed"  # Digest Close done: only Digest Authenticate may follow


class _Refusal(Exception):
    """Internal: answer this status word."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


class SoftwareSam:
    """A CSIM1 software SAM: Select Diversifier, Get Challenge, Digest Init/Update/Close/Auth."""

    _sn8: bytes | None
    _challenge: bytes | None
    _session: crypto.SessionMac | None
    _phase: _Phase

    def __init__(
        self,
        keys: KeySet,
        *,
        rng: Rng | None = None,
        serial: bytes = SOFTWARE_SERIAL,
        issuer: int = SOFTWARE_ISSUER,
        version: int = SOFTWARE_VERSION,
        revision: int = SOFTWARE_REVISION,
    ) -> None:
        self._keys = keys
        self._rng: Rng = rng if rng is not None else secrets.token_bytes
        self.atr = build_sam_atr(serial, issuer=issuer, version=version, revision=revision)
        self.serial = serial
        self._reset()

    def __repr__(self) -> str:
        return f"SoftwareSam(serial={self.serial.hex().upper()}, keys={len(self._keys.keys)})"

    @classmethod
    def from_keys(
        cls, path: Path | str, rng: Rng | None = None, *, allow_simulation: bool = False
    ) -> SoftwareSam:
        """Load a key file (simulation keys need ``allow_simulation``) and build the SAM."""
        return cls(load_keys(path, allow_simulation=allow_simulation), rng=rng)

    # --- ApduHandler ------------------------------------------------------------------------

    def power_on(self) -> bytes:
        """Reset the volatile state and return the SAM C1-shaped ATR."""
        self._reset()
        return self.atr

    def power_off(self) -> None:
        """Forget the diversifier, the challenge and any digest in progress."""
        self._reset()

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU (response data + SW)."""
        try:
            command = CommandApdu.from_bytes(apdu)
        except ValueError:
            return _sw(SW.WRONG_LENGTH)
        if self._phase is _Phase.CHALLENGE and command.ins not in _CHALLENGE_WINDOW:
            self._end_session()  # csim1.md 3.3: anything else burns the challenge
        if command.cla != CLA_SAM:
            return _sw(SW.CLA_NOT_SUPPORTED)
        handler = self._handlers.get(command.ins)
        if handler is None:
            return _sw(SW.INS_NOT_SUPPORTED)
        try:
            return handler(command) + SW.OK.to_bytes(2, "big")
        except _Refusal as refusal:
            return _sw(refusal.sw)

    # --- commands ---------------------------------------------------------------------------

    def _select_diversifier(self, command: CommandApdu) -> bytes:
        # 80 14 00 00 Lc diversifier(4|8) (section 3); sets SN8 (csim1.md 3.2).
        _params(command, 0x00, 0x00)
        if len(command.data) not in (4, 8) or command.le is not None:
            raise _Refusal(SW.WRONG_LENGTH)
        self._sn8 = crypto.diversifier8(command.data)
        return b""

    def _get_challenge(self, command: CommandApdu) -> bytes:
        # 80 84 00 00 Le(04|08); starts the Get Challenge -> Digest Init window (csim1.md 3.3).
        _params(command, 0x00, 0x00)
        if command.data or command.le is None or command.le not in (4, 8):
            raise _Refusal(SW.WRONG_LENGTH)
        challenge = self._rng(command.le)
        if len(challenge) != command.le:
            raise _Refusal(SW.NO_PRECISE_DIAGNOSIS)
        self._end_session()
        self._challenge = challenge
        self._phase = _Phase.CHALLENGE
        return challenge

    def _digest(self, command: CommandApdu) -> bytes:
        # INS 8A Digest Init; 8C 00 Digest Update; 8C 80 Digest Update Multiple.
        if command.ins == SamCommandRef.DIGEST_INIT.ins:
            return self._digest_init(command)
        if command.p1 == 0x80:
            return self._digest_update_multiple(command)
        return self._digest_update(command)

    def _digest_init(self, command: CommandApdu) -> bytes:
        # 80 8A P1 FF Lc KIF KVC <OSS data-out>; P1 bit1 = extended (section 3, csim1.md 3.3).
        if command.p2 != 0xFF:
            raise _Refusal(SW.WRONG_P1_P2_6A00)
        if command.p1 not in (0x00, 0x02):  # verification mode (bit0) not simulated
            raise _Refusal(SW.WRONG_P1_P2)
        extended = command.p1 == 0x02
        size = 8 if extended else 4
        if self._phase is not _Phase.CHALLENGE or self._challenge is None or self._sn8 is None:
            self._end_session()
            raise _Refusal(SW.CONDITIONS_NOT_SATISFIED)
        if len(command.data) < 2 + size or command.le is not None:
            raise _Refusal(SW.WRONG_LENGTH)
        if len(self._challenge) < size:
            raise _Refusal(SW.CONDITIONS_NOT_SATISFIED)
        kif, kvc = command.data[0], command.data[1]
        work_key = self._keys.lookup(kif, kvc)
        if work_key is None:
            raise _Refusal(SW.RECORD_NOT_FOUND)
        card_key = crypto.diversify(work_key.secret(), kif, kvc, self._sn8)
        self._session = crypto.SessionMac.start(
            card_key,
            extended=extended,
            kif=kif,
            kvc=kvc,
            open_data_out=command.data[2:],
            terminal_challenge=self._challenge[:size],  # first 4 bytes if 8 were fetched
        )
        self._challenge = None  # one challenge, one session
        self._phase = _Phase.DIGEST
        return b""

    def _digest_update(self, command: CommandApdu) -> bytes:
        # 80 8C 00 00|80 Lc item; P2 80 = confidential session (csim1.md 3.5).
        if command.p1 != 0x00 or command.p2 not in (0x00, 0x80):
            raise _Refusal(SW.WRONG_P1_P2)
        session = self._digesting()
        if not command.data or command.le is not None:
            raise _Refusal(SW.WRONG_LENGTH)
        if command.p2 == 0x00:
            session.add(command.data)
            return b""
        if not session.extended:
            raise _Refusal(SW.CONDITIONS_NOT_SATISFIED)
        return self._digest_encrypted(session, command.data)

    def _digest_encrypted(self, session: crypto.SessionMac, item: bytes) -> bytes:
        # Item n (OSS data-out = 0): odd = command (data field ciphered, returned ciphered),
        # even = response (all but SW ciphered, returned plain); X holds plaintext (csim1.md 3.5).
        index = session.items
        if index % 2 == 1:
            if len(item) < 5:
                raise _Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
            if len(item) == 5:  # case 1/2: nothing to cipher
                session.add(item)
                return item
            end = 5 + item[4]
            if end > len(item):
                raise _Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
            ciphered = crypto.ctr_transform(session.sk_enc, index, item[5:end])
            session.add(item)
            return item[:5] + ciphered + item[end:]
        if len(item) < 2:
            raise _Refusal(SW.INCORRECT_PARAMETERS_IN_DATA)
        plain = crypto.ctr_transform(session.sk_enc, index, item[:-2]) + item[-2:]
        session.add(plain)
        return plain

    def _digest_update_multiple(self, command: CommandApdu) -> bytes:
        # 80 8C 80 00 Lc [len item]... (section 3; csim1.md 3.1 frame()).
        if command.p2 != 0x00:
            raise _Refusal(SW.WRONG_P1_P2)
        session = self._digesting()
        if not command.data or command.le is not None:
            raise _Refusal(SW.WRONG_LENGTH)
        try:
            items = parse_digest_items(command.data)
        except ValueError:
            raise _Refusal(SW.INCORRECT_PARAMETERS_IN_DATA) from None
        for item in items:
            session.add(item)
        return b""

    def _digest_close(self, command: CommandApdu) -> bytes:
        # 80 8E 00 00 Le(04 regular | 08 extended) -> terminal half M[0:Le] (csim1.md 3.4).
        _params(command, 0x00, 0x00)
        session = self._digesting()
        if command.data or command.le != session.half:
            raise _Refusal(SW.WRONG_LENGTH)
        self._phase = _Phase.CLOSED
        return session.terminal_mac()

    def _digest_authenticate(self, command: CommandApdu) -> bytes:
        # 80 82 00 00 Lc card-half; 6988 if wrong; the session ends either way (csim1.md 3.4).
        _params(command, 0x00, 0x00)
        session = self._session
        if self._phase is not _Phase.CLOSED or session is None:
            raise _Refusal(SW.CONDITIONS_NOT_SATISFIED)
        if len(command.data) != session.half or command.le is not None:
            raise _Refusal(SW.WRONG_LENGTH)
        self._end_session()
        if not crypto.macs_equal(command.data, session.card_mac()):
            raise _Refusal(SW.INCORRECT_SIGNATURE)
        return b""

    # --- state ------------------------------------------------------------------------------

    def _digesting(self) -> crypto.SessionMac:
        if self._phase is not _Phase.DIGEST or self._session is None:
            raise _Refusal(SW.CONDITIONS_NOT_SATISFIED)
        return self._session

    def _end_session(self) -> None:
        self._session = None
        self._challenge = None
        self._phase = _Phase.IDLE

    def _reset(self) -> None:
        self._sn8 = None
        self._challenge = None
        self._session = None
        self._phase = _Phase.IDLE

    @property
    def _handlers(self) -> dict[int, Callable[[CommandApdu], bytes]]:
        return {
            SamCommandRef.SELECT_DIVERSIFIER.ins: self._select_diversifier,
            SamCommandRef.GET_CHALLENGE.ins: self._get_challenge,
            SamCommandRef.DIGEST_INIT.ins: self._digest,
            SamCommandRef.DIGEST_UPDATE.ins: self._digest,
            SamCommandRef.DIGEST_CLOSE.ins: self._digest_close,
            SamCommandRef.DIGEST_AUTHENTICATE.ins: self._digest_authenticate,
        }


def _params(command: CommandApdu, p1: int, p2: int) -> None:
    if (command.p1, command.p2) != (p1, p2):
        raise _Refusal(SW.WRONG_P1_P2)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
