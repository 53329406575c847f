# SPDX-License-Identifier: Apache-2.0
"""The software SAM beyond the regular session: every csim1-vectors.txt section, byte for byte,
mutual authentication, PIN, Change Key, SV, lock, records and verification mode."""

from __future__ import annotations

import pytest
from sam_vectors import (
    EXT_AUTH_CARD_MAC,
    EXT_AUTH_TERMINAL_MAC,
    EXT_CARD_MAC,
    EXT_DIGEST_INIT,
    EXT_OSS_DATA_OUT,
    EXT_READ3_CIPHERED,
    EXT_READ3_CMD,
    EXT_READ3_PLAIN,
    EXT_READ_CMD,
    EXT_READ_RSP,
    EXT_TERMINAL_MAC,
    EXT_UPDATE_CIPHERED,
    EXT_UPDATE_PLAIN,
    KEY_BLOB,
    KEY_CARD_CHALLENGE,
    OSS_DATA_OUT,
    PIN_BLOCK,
    PIN_CHANGE_BLOCK,
    SAM_CIPHER_PIN_CHANGE,
    SAM_CIPHER_PIN_VERIFY,
    SAM_DIGEST_AUTHENTICATE,
    SAM_DIGEST_CLOSE,
    SAM_DIGEST_UPDATE_MULTIPLE,
    SAM_GENERATE_KEY,
    SAM_GIVE_RANDOM_KEY,
    SAM_GIVE_RANDOM_PIN,
    SAM_SELECT_DIVERSIFIER,
    SAM_SV_CHECK,
    SAM_SV_PREPARE_DEBIT,
    SIM_KEYS,
    SV_CHALLENGE,
    SV_PREPARE_ANSWER,
    SV_SAM_SERIAL,
    SV_TNUM,
    TC,
    TC8,
    TERMINAL_MAC,
    UNLOCK_DATA,
    fixed_rng,
    h,
)

from calypso import crypto
from sam.keys import KeySet, load_keys
from sam.software.dispatch import SoftwareSam, dynamic_unlock_data

OK = h("9000")


def _sam(rng_bytes: bytes = TC8, **options: object) -> SoftwareSam:
    keys = load_keys(SIM_KEYS, allow_simulation=True)
    sam = SoftwareSam(keys, rng=fixed_rng(rng_bytes), **options)  # type: ignore[arg-type]
    sam.power_on()
    return sam


def _extended_open(sam: SoftwareSam) -> None:
    assert sam.process(h("8084000008")) == TC8 + OK
    assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
    assert sam.process(EXT_DIGEST_INIT) == OK


class TestExtendedVectorWithAuthentication:
    """The whole extended section of csim1-vectors.txt, Internal Authenticate included."""

    def test_full_session(self) -> None:
        """Internal Authenticate (purpose 02, seq 0), card check, encrypted items, close."""
        sam = _sam()
        _extended_open(sam)
        assert sam.process(h("808C000005") + EXT_READ_CMD) == OK
        assert sam.process(h("808C000003") + EXT_READ_RSP) == OK
        assert sam.process(h("8088800008")) == EXT_AUTH_TERMINAL_MAC + OK
        assert sam.process(h("8082000008") + EXT_AUTH_CARD_MAC) == OK
        assert sam.process(h("808C008006") + EXT_UPDATE_PLAIN) == EXT_UPDATE_CIPHERED + OK
        assert sam.process(h("808C0080029000")) == OK + OK
        assert sam.process(h("808C008005") + EXT_READ3_CMD) == EXT_READ3_CMD + OK
        assert sam.process(h("808C008003") + EXT_READ3_CIPHERED) == EXT_READ3_PLAIN + OK
        assert sam.process(h("808E000008")) == EXT_TERMINAL_MAC + OK
        assert sam.process(h("8082000008") + EXT_CARD_MAC) == OK

    def test_wrong_mid_session_card_mac(self) -> None:
        """A wrong card MAC after Internal Authenticate gives 6988 and ends the session."""
        sam = _sam()
        _extended_open(sam)
        sam.process(h("808C000005") + EXT_READ_CMD)
        sam.process(h("8088800008"))
        assert sam.process(h("8082000008") + bytes(8)) == h("6988")
        assert sam.process(h("808E000008")) == h("6985")

    def test_internal_authenticate_rules(self) -> None:
        """Internal Authenticate needs an extended digest, P1 80 and Le 08."""
        sam = _sam()
        assert sam.process(h("8088800008")) == h("6985")
        _extended_open(sam)
        assert sam.process(h("8088000008")) == h("6B00")
        assert sam.process(h("8088800004")) == h("6700")
        regular = _sam()
        regular.process(SAM_SELECT_DIVERSIFIER)
        regular.process(h("8084000004"))
        regular.process(h("808A00FF2730F0") + OSS_DATA_OUT)
        assert regular.process(h("8088800008")) == h("6985")

    def test_second_authentication_uses_next_sequence(self) -> None:
        """Each mutual authentication of a session uses the next sequence number."""
        sam = _sam()
        _extended_open(sam)
        sam.process(h("8088800008"))
        first_card = _session_mac(extended=True).card_mac(crypto.PURPOSE_MUTUAL_AUTH, 0)
        assert sam.process(h("8082000008") + first_card) == OK
        expected = _session_mac(extended=True).terminal_mac(crypto.PURPOSE_MUTUAL_AUTH, 1)
        assert sam.process(h("8088800008")) == expected + OK


def _session_mac(*, extended: bool) -> crypto.SessionMac:
    """The vector's session computed directly, nothing digested after the data-out."""
    keys = load_keys(SIM_KEYS, allow_simulation=True)
    kif, kvc = (0x27, 0xF0) if extended else (0x30, 0xF0)
    key = keys.lookup(kif, kvc)
    assert key is not None
    card_key = crypto.diversify(key.secret(), kif, kvc, h("0000000011223344"))
    return crypto.SessionMac.start(
        card_key,
        extended=extended,
        kif=kif,
        kvc=kvc,
        open_data_out=EXT_OSS_DATA_OUT if extended else OSS_DATA_OUT,
        terminal_challenge=TC8 if extended else TC,
    )


class TestPinAndChangeKeyVectors:
    """The PIN and Change Key sections of csim1-vectors.txt."""

    def test_pin_presentation_and_change(self) -> None:
        """Give Random then Card Cipher PIN, for Verify PIN and for Change PIN."""
        sam = _sam()
        assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
        assert sam.process(SAM_GIVE_RANDOM_PIN) == OK
        assert sam.process(SAM_CIPHER_PIN_VERIFY) == PIN_BLOCK + OK
        assert sam.process(SAM_GIVE_RANDOM_PIN) == OK
        assert sam.process(SAM_CIPHER_PIN_CHANGE) == PIN_CHANGE_BLOCK + OK

    def test_change_key(self) -> None:
        """Give Random then Card Generate Key gives the vector's AES-KW blob."""
        sam = _sam()
        sam.process(SAM_SELECT_DIVERSIFIER)
        assert sam.process(SAM_GIVE_RANDOM_KEY) == OK
        assert sam.process(SAM_GENERATE_KEY) == KEY_BLOB + OK

    def test_null_key_variant(self) -> None:
        """The null-key variant wraps the new key under a KEK from the all-zero issuer key."""
        sam = _sam()
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(SAM_GIVE_RANDOM_KEY)
        answer = sam.process(h("8012FF000327F190"))
        assert answer[-2:] == OK and len(answer) == 34
        kek = crypto.key_encryption_key(crypto.NULL_KEY, KEY_CARD_CHALLENGE, 0x27, 0xF1)
        unwrapped = crypto.unwrap_card_key(kek, answer[:-2])
        assert unwrapped is not None and unwrapped[:2] == (0x27, 0xF1)

    def test_refusals(self) -> None:
        """No Give Random 6985, unknown key 6A83, no diversifier 6985, bad ALG 6A80, bad P1."""
        sam = _sam()
        assert sam.process(SAM_GIVE_RANDOM_PIN) == OK
        assert sam.process(SAM_CIPHER_PIN_VERIFY) == h("6985")  # no diversifier yet
        sam.process(SAM_SELECT_DIVERSIFIER)
        assert sam.process(SAM_CIPHER_PIN_VERIFY) == h("6985")  # Give Random used up
        sam.process(SAM_GIVE_RANDOM_PIN)
        assert sam.process(h("801280FF063079") + b"1234") == h("6A83")
        sam.process(SAM_GIVE_RANDOM_KEY)
        assert sam.process(h("8012FFFF0521F027F191")) == h("6A80")
        assert sam.process(h("801200FF0630F031323334")) == h("6A00")
        assert sam.process(h("8086000004") + TC) == h("6700")

    def test_pin_in_session_keeps_the_digest(self) -> None:
        """Card Cipher PIN between Digest Updates leaves the session MAC untouched."""
        sam = _sam(TC)
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(h("8084000004"))
        sam.process(h("808A00FF2730F0") + OSS_DATA_OUT)
        sam.process(SAM_GIVE_RANDOM_PIN)
        assert sam.process(SAM_CIPHER_PIN_VERIFY) == PIN_BLOCK + OK
        assert sam.process(SAM_DIGEST_UPDATE_MULTIPLE) == OK
        assert sam.process(SAM_DIGEST_CLOSE) == TERMINAL_MAC + OK


class TestSvDebitVector:
    """The SV Debit section of csim1-vectors.txt."""

    def _sv_sam(self) -> SoftwareSam:
        sam = _sam(SV_CHALLENGE, serial=SV_SAM_SERIAL, sv_transaction_number=SV_TNUM)
        assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
        return sam

    def test_prepare_and_check(self) -> None:
        """SV Prepare Debit answers challenge, number and MAC; SV Check accepts the card's lo."""
        sam = self._sv_sam()
        assert sam.process(SAM_SV_PREPARE_DEBIT) == SV_PREPARE_ANSWER + OK
        assert sam.sv_transaction_number == SV_TNUM + 1
        assert sam.process(SAM_SV_CHECK) == OK
        assert sam.process(SAM_SV_CHECK) == h("6985")  # the transaction is over

    def test_wrong_signature(self) -> None:
        """A wrong card SV signature gives 6988; an abort (Lc 00) ends the transaction."""
        sam = self._sv_sam()
        sam.process(SAM_SV_PREPARE_DEBIT)
        assert sam.process(h("8058000003000000")) == h("6988")
        sam.process(SAM_SV_PREPARE_DEBIT)
        assert sam.process(h("8058000000")) == OK
        assert sam.process(SAM_SV_CHECK) == h("6985")

    def test_bad_input(self) -> None:
        """A partial command of another operation or a cut SV Get response gives 6A80."""
        sam = self._sv_sam()
        as_load = h("805601FF30") + SAM_SV_PREPARE_DEBIT[5:]
        assert sam.process(as_load) == h("6A80")
        cut = h("805401FF2F") + SAM_SV_PREPARE_DEBIT[5:9] + SAM_SV_PREPARE_DEBIT[10:]
        assert sam.process(cut) == h("6A80")
        assert sam.process(h("805400FF") + SAM_SV_PREPARE_DEBIT[4:]) == h("6B00")


class TestLockAndRecords:
    """Lock / Unlock, and the SAM's records."""

    def test_locked_sam_refuses_until_unlocked(self) -> None:
        """A locked SAM answers 6985 to everything but Unlock and Get Challenge."""
        sam = _sam(locked=True, unlock_data=UNLOCK_DATA)
        assert sam.locked
        assert sam.process(SAM_SELECT_DIVERSIFIER) == h("6985")
        assert sam.process(h("8020000010") + bytes(16)) == h("6988")
        assert sam.process(h("8020000010") + UNLOCK_DATA) == OK
        assert not sam.locked
        assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
        assert sam.process(h("8020000010") + UNLOCK_DATA) == h("6985")  # not locked
        sam.power_on()
        assert sam.locked  # locks again at the next power-on

    def test_dynamic_unlock(self) -> None:
        """Dynamic Unlock: CMAC of the unlock data over the last 8-byte challenge."""
        sam = _sam(locked=True, unlock_data=UNLOCK_DATA)
        assert sam.process(h("8084000008")) == TC8 + OK
        answer = dynamic_unlock_data(UNLOCK_DATA, TC8)
        assert sam.process(h("8020000008") + answer) == OK
        locked_again = _sam(locked=True, unlock_data=UNLOCK_DATA)
        assert locked_again.process(h("8020000008") + answer) == h("6988")  # no challenge

    def test_lock_from_key_file(self) -> None:
        """locked: true and unlock_data in the key file lock the SAM."""
        keys = load_keys(SIM_KEYS, allow_simulation=True)
        data = {**keys.model_dump(), "locked": True, "unlock_data": UNLOCK_DATA.hex()}
        data["keys"] = [
            {**k, "key": w.secret()} for k, w in zip(data["keys"], keys.keys, strict=True)
        ]
        sam = SoftwareSam(KeySet.model_validate(data))
        sam.power_on()
        assert sam.locked

    def test_lock_needs_unlock_data(self) -> None:
        """A locked SAM without 16 bytes of unlock data cannot be built."""
        with pytest.raises(ValueError, match="unlock data"):
            SoftwareSam(load_keys(SIM_KEYS, allow_simulation=True), locked=True)

    def test_records(self) -> None:
        """Key parameters by KIF/KVC and by record; counters; ceilings; parameters."""
        sam = _sam(TC)
        key = sam.process(h("80BC00F00230F000"))
        assert key[8:11] == h("30F0A0") and len(key) == 34 and key[-2:] == OK
        assert sam.process(h("80BC000103000000")) == h("6700")
        assert sam.process(h("80BC0001020000"))[8:10] == h("21F0")
        assert sam.process(h("80BC00C1020000")) == h("6A83")
        assert sam.process(h("80BC00F002307900")) == h("6A83")
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(h("8084000004"))
        sam.process(h("808A00FF2730F0") + OSS_DATA_OUT)
        counters = sam.process(h("80BE00E100"))
        assert len(counters) == 50 and counters[8:11] == h("000001")
        assert sam.process(h("80BE00B100"))[8:11] == h("FFFFFF")
        assert sam.process(h("80BE00A000"))[8:37] == bytes(29)
        assert sam.process(h("80BE00C000")) == h("6A00")


class TestVerificationMode:
    """Digest Init P1 bit0: the journaled terminal challenge in the data (docs/sam.md)."""

    def test_regular_session_recomputed(self) -> None:
        """No Get Challenge; Digest Close gives the terminal half, Authenticate checks the card."""
        sam = _sam(h("00000000"))
        sam.process(SAM_SELECT_DIVERSIFIER)
        assert sam.process(h("808A01FF2B30F0") + TC + OSS_DATA_OUT) == OK
        assert sam.process(SAM_DIGEST_UPDATE_MULTIPLE) == OK
        assert sam.process(SAM_DIGEST_CLOSE) == TERMINAL_MAC + OK
        assert sam.process(SAM_DIGEST_AUTHENTICATE) == OK

    def test_extended_ciphered_commands_deciphered(self) -> None:
        """In verification mode a journaled ciphered command comes back plain."""
        sam = _sam(bytes(8))
        sam.process(SAM_SELECT_DIVERSIFIER)
        assert sam.process(h("808A03FF1627F0") + TC8 + EXT_OSS_DATA_OUT) == OK
        sam.process(h("808C000005") + EXT_READ_CMD)
        sam.process(h("808C000003") + EXT_READ_RSP)
        assert sam.process(h("8088800008")) == EXT_AUTH_TERMINAL_MAC + OK
        assert sam.process(h("8082000008") + EXT_AUTH_CARD_MAC) == OK
        assert sam.process(h("808C008006") + EXT_UPDATE_CIPHERED) == EXT_UPDATE_PLAIN + OK
        assert sam.process(h("808C0080029000")) == OK + OK
        assert sam.process(h("808C008005") + EXT_READ3_CMD) == EXT_READ3_CMD + OK
        assert sam.process(h("808C008003") + EXT_READ3_CIPHERED) == EXT_READ3_PLAIN + OK
        assert sam.process(h("808E000008")) == EXT_TERMINAL_MAC + OK
        assert sam.process(h("8082000008") + EXT_CARD_MAC) == OK

    def test_verification_needs_diversifier_and_full_data(self) -> None:
        """Without a diversifier 6985; data shorter than KIF KVC TC data-out 6700."""
        sam = _sam()
        assert sam.process(h("808A01FF2B30F0") + TC + OSS_DATA_OUT) == h("6985")
        sam.process(SAM_SELECT_DIVERSIFIER)
        assert sam.process(h("808A01FF0630F0") + TC) == h("6700")

    def test_verification_does_not_count_a_session(self) -> None:
        """A replayed session is not a signed one: the session counter stays."""
        sam = _sam()
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(h("808A01FF2B30F0") + TC + OSS_DATA_OUT)
        assert sam.process(h("80BE00E100"))[8:11] == h("000000")
