# SPDX-License-Identifier: Apache-2.0
"""SoftwareSam: an in-process SAM C1 look-alike answering the legacy SAM APDUs with CSIM1.

Commands and status words: calypso-protocol.md section 3; crypto: csim1.md 3.2-3.8. It is an
ApduHandler, so the validator drives it through LegacySam exactly like a hardware SAM. The
handlers live in ``digest`` (session MAC) and ``card_keys`` (PIN, keys, SV); this
module dispatches, keeps the lock, and answers Unlock and the SAM's own records. Our CSIM1
extensions (verification mode, unlock data, null key, record contents) are in docs/sam.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from calypso import crypto
from readers.apdu import SW, CommandApdu
from sam.atr import build_sam_atr
from sam.commands.admin import (
    CEILING_RECORD,
    EVENT_COUNTER_RECORD,
    KEY_BY_REFERENCE,
    KEY_RECORD_LENGTH,
    PARAMETERS_RECORD,
    RECORD_LENGTH,
    WORK_KEY_RECORDS,
)
from sam.commands.status import CLA_SAM, SamCommandRef
from sam.keys import KeySet, load_keys
from sam.software import card_keys as card
from sam.software import digest
from sam.software.state import Phase, Refusal, Rng, SamState, case3, params, sw_bytes

SOFTWARE_ISSUER = 0xF5  # distinctive software issuer byte (08 would read as an HSM C1)
SOFTWARE_SERIAL = bytes.fromhex("5AFE0001")
SOFTWARE_VERSION = 0x01
SOFTWARE_REVISION = 0x00
AES_ALGORITHM = 0xA0  # ALG byte of an AES key record (CNA test kit profile, csim1.md 1.5)
_UNLOCK_LABEL = b"CSIM1 UNLOCK"

_Handler = Callable[[SamState, CommandApdu], bytes]

# Commands allowed between Get Challenge and Digest Init (a new Get Challenge restarts the window).
_CHALLENGE_WINDOW = frozenset(
    ref.ins
    for ref in (
        SamCommandRef.SELECT_DIVERSIFIER,
        SamCommandRef.DIGEST_INIT,
        SamCommandRef.GET_CHALLENGE,
    )
)
# What a locked SAM still answers: Unlock, and Get Challenge for a dynamic Unlock.
_WHEN_LOCKED = frozenset((SamCommandRef.UNLOCK.ins, SamCommandRef.GET_CHALLENGE.ins))


class SoftwareSam:
    """A CSIM1 software SAM: every legacy SAM command of calypso-protocol.md section 3."""

    def __init__(
        self,
        keys: KeySet,
        *,
        rng: Rng | None = None,
        serial: bytes = SOFTWARE_SERIAL,
        issuer: int = SOFTWARE_ISSUER,
        version: int = SOFTWARE_VERSION,
        revision: int = SOFTWARE_REVISION,
        locked: bool | None = None,
        unlock_data: bytes | None = None,
        sv_transaction_number: int = 0,
    ) -> None:
        self.atr = build_sam_atr(serial, issuer=issuer, version=version, revision=revision)
        self.serial = serial
        self._unlock_data = unlock_data if unlock_data is not None else keys.unlock_secret()
        self._starts_locked = keys.locked if locked is None else locked
        if self._starts_locked and (self._unlock_data is None or len(self._unlock_data) != 16):
            raise ValueError("a locked software SAM needs 16 bytes of unlock data")
        self._state = SamState(
            keys=keys,
            rng=rng if rng is not None else secrets.token_bytes,
            serial=serial,
            locked=self._starts_locked,
            sv_transaction_number=sv_transaction_number,
        )
        self._handlers: dict[int, _Handler] = {
            SamCommandRef.SELECT_DIVERSIFIER.ins: digest.select_diversifier,
            SamCommandRef.GET_CHALLENGE.ins: digest.get_challenge,
            SamCommandRef.DIGEST_INIT.ins: digest.digest_init,
            SamCommandRef.DIGEST_UPDATE.ins: digest.digest_update,
            SamCommandRef.DIGEST_CLOSE.ins: digest.digest_close,
            SamCommandRef.DIGEST_AUTHENTICATE.ins: digest.digest_authenticate,
            SamCommandRef.DIGEST_INTERNAL_AUTHENTICATE.ins: digest.digest_internal_authenticate,
            SamCommandRef.GIVE_RANDOM.ins: card.give_random,
            SamCommandRef.CARD_CIPHER_PIN.ins: _card_cipher_pin_or_generate_key,
            SamCommandRef.SV_PREPARE_LOAD.ins: card.sv_prepare,
            SamCommandRef.SV_PREPARE_DEBIT.ins: card.sv_prepare,
            SamCommandRef.SV_PREPARE_UNDEBIT.ins: card.sv_prepare,
            SamCommandRef.SV_CHECK.ins: card.sv_check,
            SamCommandRef.UNLOCK.ins: self._unlock,
            SamCommandRef.READ_KEY_PARAMETERS.ins: _read_key_parameters,
            SamCommandRef.READ_PARAMETERS.ins: _read_record,
        }

    def __repr__(self) -> str:
        return f"SoftwareSam(serial={self.serial.hex().upper()}, keys={len(self._state.keys.keys)})"

    @classmethod
    def from_keys(
        cls, path: Path | str, rng: Rng | None = None, *, allow_simulation: bool = False
    ) -> SoftwareSam:
        """Load a key file (simulation keys need ``allow_simulation``) and build the SAM."""
        return cls(load_keys(path, allow_simulation=allow_simulation), rng=rng)

    @property
    def locked(self) -> bool:
        """Whether the SAM refuses everything but Unlock (and Get Challenge)."""
        return self._state.locked

    @property
    def sv_transaction_number(self) -> int:
        """The SAM transaction number the next SV Prepare will use."""
        return self._state.sv_transaction_number

    # --- ApduHandler ------------------------------------------------------------------------

    def power_on(self) -> bytes:
        """Reset the volatile state (a locked SAM locks again) and return the C1-shaped ATR."""
        self._state.reset()
        self._state.locked = self._starts_locked
        return self.atr

    def power_off(self) -> None:
        """Forget the diversifier, the challenges, any digest and any SV transaction."""
        self._state.reset()

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU (response data + SW)."""
        state = self._state
        try:
            command = CommandApdu.from_bytes(apdu)
        except ValueError:
            return sw_bytes(SW.WRONG_LENGTH)
        if state.phase is Phase.CHALLENGE and command.ins not in _CHALLENGE_WINDOW:
            state.end_session()  # csim1.md 3.3: anything else burns the challenge
        if command.cla != CLA_SAM:
            return sw_bytes(SW.CLA_NOT_SUPPORTED)
        handler = self._handlers.get(command.ins)
        if handler is None:
            return sw_bytes(SW.INS_NOT_SUPPORTED)
        if state.locked and command.ins not in _WHEN_LOCKED:
            return sw_bytes(SW.CONDITIONS_NOT_SATISFIED)
        try:
            return handler(state, command) + sw_bytes(SW.OK)
        except Refusal as refusal:
            return sw_bytes(refusal.sw)

    # --- Unlock -----------------------------------------------------------------------------

    def _unlock(self, state: SamState, command: CommandApdu) -> bytes:
        # 80 20 00 00 Lc: 16 bytes static unlock data, or 8 bytes dynamic
        # CMAC(unlock data, "CSIM1 UNLOCK" || last 8-byte challenge)[0:8] (docs/sam.md).
        params(command, 0x00, 0x00)
        data = case3(command, 8, 16)
        if not state.locked:
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        secret = self._unlock_data
        if secret is None:  # pragma: no cover - a locked SAM always has unlock data
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        if len(data) == 16:
            expected = secret
        else:
            challenge, state.last_challenge = state.last_challenge, None
            if challenge is None or len(challenge) != 8:
                raise Refusal(SW.INCORRECT_SIGNATURE)
            expected = crypto.cmac(secret, _UNLOCK_LABEL + challenge)[:8]
        if not crypto.macs_equal(data, expected):
            raise Refusal(SW.INCORRECT_SIGNATURE)
        state.locked = False
        return b""


def dynamic_unlock_data(unlock_data: bytes, challenge: bytes) -> bytes:
    """What a terminal sends to Unlock a CSIM1 SAM dynamically after an 8-byte Get Challenge."""
    return crypto.cmac(unlock_data, _UNLOCK_LABEL + challenge)[:8]


def _card_cipher_pin_or_generate_key(state: SamState, command: CommandApdu) -> bytes:
    # INS 12: P1 FF = Card Generate Key, P1 80/40 = Card Cipher PIN (section 3).
    if command.p1 == 0xFF:
        return card.card_generate_key(state, command)
    return card.card_cipher_pin(state, command)


def _read_key_parameters(state: SamState, command: CommandApdu) -> bytes:
    # 80 BC 00 P2 02 data -> 32 bytes: 8-byte header, KIF KVC ALG PAR1-10, zeros (section 3).
    if command.p1 != 0x00:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    if len(command.data) != 2:
        raise Refusal(SW.WRONG_LENGTH)
    keys = state.keys.keys
    if command.p2 == KEY_BY_REFERENCE:
        key = state.keys.lookup(command.data[0], command.data[1])
    elif command.p2 in WORK_KEY_RECORDS and command.p2 <= len(keys):
        key = keys[command.p2 - 1]
    else:
        key = None  # system keys (C1-C4) and empty records
    if key is None:
        raise Refusal(SW.RECORD_NOT_FOUND)
    body = bytes((key.kif, key.kvc, AES_ALGORITHM)) + bytes(10)
    return _header(command.p2) + body.ljust(KEY_RECORD_LENGTH - 8, b"\x00")


def _read_record(state: SamState, command: CommandApdu) -> bytes:
    # 80 BE 00 P2 00 -> 48 bytes: 8-byte header then the record (section 3). Event counters
    # E1: counter 0 = sessions signed, counter 1 = next SV transaction number; ceilings all
    # FFFFFF; parameters all zero (docs/sam.md).
    if command.p1 != 0x00:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    if command.data:
        raise Refusal(SW.WRONG_LENGTH)
    p2 = command.p2
    if p2 in range(EVENT_COUNTER_RECORD, EVENT_COUNTER_RECORD + 3):
        counters = [0] * 9
        if p2 == EVENT_COUNTER_RECORD:
            counters[0] = state.session_count & 0xFFFFFF
            counters[1] = state.sv_transaction_number & 0xFFFFFF
        body = b"".join(value.to_bytes(3, "big") for value in counters)
    elif p2 in range(CEILING_RECORD, CEILING_RECORD + 3):
        body = b"\xff" * 27
    elif p2 == PARAMETERS_RECORD:
        body = bytes(29)
    else:
        raise Refusal(SW.WRONG_P1_P2_6A00)
    return _header(p2) + body.ljust(RECORD_LENGTH - 8, b"\x00")


def _header(reference: int) -> bytes:
    """The 8-byte record header of the software SAM: the record reference, then zeros."""
    return bytes((reference,)) + bytes(7)
