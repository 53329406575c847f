# SPDX-License-Identifier: Apache-2.0
"""LegacySam driving the software SAM through every csim1 flow, and packing per SAM type."""

from __future__ import annotations

import pytest
from sam_vectors import (
    CARD_MAC,
    EXT_AUTH_CARD_MAC,
    EXT_AUTH_TERMINAL_MAC,
    EXT_CARD_MAC,
    EXT_OSS_DATA_OUT,
    EXT_READ3_CIPHERED,
    EXT_READ3_CMD,
    EXT_READ3_PLAIN,
    EXT_READ_CMD,
    EXT_READ_RSP,
    EXT_SAM_APDUS,
    EXT_TERMINAL_MAC,
    EXT_UPDATE_CIPHERED,
    EXT_UPDATE_PLAIN,
    ITEMS,
    KEY_BLOB,
    KEY_CARD_CHALLENGE,
    KIF_DEBIT,
    KIF_LOAD,
    KVC_SIM,
    NEW_PIN,
    OSS_DATA_OUT,
    PIN,
    PIN_BLOCK,
    PIN_CARD_CHALLENGE,
    PIN_CHANGE_BLOCK,
    SAM_CIPHER_PIN_CHANGE,
    SAM_CIPHER_PIN_VERIFY,
    SAM_DIGEST_UPDATE_MULTIPLE,
    SAM_GENERATE_KEY,
    SAM_GIVE_RANDOM_KEY,
    SAM_GIVE_RANDOM_PIN,
    SAM_SELECT_DIVERSIFIER,
    SAM_SV_CHECK,
    SAM_SV_PREPARE_DEBIT,
    SIM_KEYS,
    SN8,
    SV_CARD_DEBIT_DATA,
    SV_CARD_SIGNATURE,
    SV_CHALLENGE,
    SV_DEBIT_PARTIAL,
    SV_GET_HEADER,
    SV_GET_RESPONSE,
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
from readers.apdu import CommandApdu
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from readers.replay import ReplayConnection
from sam import commands as cmd
from sam.atr import build_sam_atr
from sam.base import FullSessionCrypto, SamError, SvOperation, SvRequest
from sam.client import LegacySam, LegacySessionCrypto
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam

OK = h("9000")


def _station(challenge: bytes = TC8, **options: object) -> tuple[LegacySam, ApduChannel]:
    """A LegacySam over an ApduChannel to a SoftwareSam in an EmulatedReader."""
    keys = load_keys(SIM_KEYS, allow_simulation=True)
    reader = EmulatedReader("sam")
    reader.insert(SoftwareSam(keys, rng=fixed_rng(challenge), **options))  # type: ignore[arg-type]
    channel = ApduChannel(reader.connect(), label="sam")
    return LegacySam(channel), channel


def _blank(apdu: bytes) -> bytes:
    """A secret command as the trace keeps it: header and Lc, data zeroed."""
    return apdu[:5] + bytes(apdu[4])


def _sent(channel: ApduChannel, start: int = 0) -> list[bytes]:
    return [exchange.command for exchange in channel.exchanges[start:]]


def _open_regular(sam: LegacySam) -> LegacySessionCrypto:
    session = sam.session_crypto(SN8)
    assert session.init_session() == TC
    session.init_session_mac(OSS_DATA_OUT, KIF_DEBIT, KVC_SIM)
    return session


class TestExtendedFlow:
    """The extended vector session: mutual authentication, then an encrypted session."""

    def test_exact_sam_apdus(self) -> None:
        """LegacySam sends exactly the vector's SAM APDUs and returns its processed items."""
        sam, channel = _station()
        sam.prefetch(extended=True)
        session: FullSessionCrypto = sam.session_crypto(SN8, extended=True)
        assert session.init_session() == TC8
        session.init_session_mac(EXT_OSS_DATA_OUT, KIF_LOAD, KVC_SIM)
        session.update_session_mac(EXT_READ_CMD)
        session.update_session_mac(EXT_READ_RSP)
        assert session.generate_terminal_session_mac() == EXT_AUTH_TERMINAL_MAC
        assert session.verify_card_session_mac(EXT_AUTH_CARD_MAC) is True
        session.activate_encryption()
        assert session.process_session_apdu(EXT_UPDATE_PLAIN) == EXT_UPDATE_CIPHERED
        assert session.process_session_apdu(OK) == OK
        assert session.process_session_apdu(EXT_READ3_CMD) == EXT_READ3_CMD
        assert session.process_session_apdu(EXT_READ3_CIPHERED) == EXT_READ3_PLAIN
        assert session.finalize_session_mac() == EXT_TERMINAL_MAC
        assert session.verify_card_session_mac(EXT_CARD_MAC) is True
        assert _sent(channel) == EXT_SAM_APDUS

    def test_encrypted_items_refused_by_update(self) -> None:
        """Once encryption is on, update_session_mac refuses (the result would be lost)."""
        sam, _ = _station()
        session = sam.session_crypto(SN8, extended=True)
        session.init_session()
        session.init_session_mac(EXT_OSS_DATA_OUT, KIF_LOAD, KVC_SIM)
        session.activate_encryption()
        with pytest.raises(SamError, match="process_session_apdu"):
            session.update_session_mac(EXT_READ_CMD)
        session.deactivate_encryption()
        assert session.process_session_apdu(EXT_READ_CMD) == EXT_READ_CMD  # plain: buffered
        assert session.pending_items == 1

    def test_regular_session_refuses_extended_calls(self) -> None:
        """Mutual authentication and encryption need an extended session."""
        sam, _ = _station(TC)
        session = _open_regular(sam)
        with pytest.raises(SamError, match="extended"):
            session.generate_terminal_session_mac()
        with pytest.raises(SamError, match="extended"):
            session.activate_encryption()


class TestPinAndChangeKey:
    """Give Random + Card Cipher PIN / Card Generate Key through LegacySam."""

    def test_pin_outside_session(self) -> None:
        """Presentation then modification with the PIN key 30/F0: the vector's blocks."""
        sam, channel = _station()
        session = sam.session_crypto(SN8)
        block = session.cipher_pin_for_presentation(PIN_CARD_CHALLENGE, PIN, KIF_DEBIT, KVC_SIM)
        assert block == PIN_BLOCK
        change = session.cipher_pin_for_modification(
            PIN_CARD_CHALLENGE, bytes(4), NEW_PIN, KIF_DEBIT, KVC_SIM
        )
        assert change == PIN_CHANGE_BLOCK
        assert _sent(channel) == [
            SAM_SELECT_DIVERSIFIER,
            SAM_GIVE_RANDOM_PIN,
            _blank(SAM_CIPHER_PIN_VERIFY),  # the PIN is kept out of the trace
            SAM_GIVE_RANDOM_PIN,
            _blank(SAM_CIPHER_PIN_CHANGE),
        ]

    def test_pin_outside_session_needs_key(self) -> None:
        """Outside a session the PIN ciphering KIF/KVC must be given."""
        sam, channel = _station()
        with pytest.raises(SamError, match="PIN ciphering"):
            sam.session_crypto(SN8).cipher_pin_for_presentation(PIN_CARD_CHALLENGE, PIN)
        assert channel.apdu_count == 0

    def test_pin_in_session_uses_session_key_after_flush(self) -> None:
        """In a session: buffered items go first, then the PIN is ciphered with 30/F0."""
        sam, channel = _station(TC)
        session = _open_regular(sam)
        for item in ITEMS:
            session.update_session_mac(item)
        start = channel.apdu_count
        assert session.cipher_pin_for_presentation(PIN_CARD_CHALLENGE, PIN) == PIN_BLOCK
        assert _sent(channel, start) == [
            SAM_DIGEST_UPDATE_MULTIPLE,
            SAM_GIVE_RANDOM_PIN,
            _blank(SAM_CIPHER_PIN_VERIFY),  # the PIN is kept out of the trace
        ]
        assert session.finalize_session_mac() == TERMINAL_MAC
        assert session.verify_card_session_mac(CARD_MAC) is True

    def test_change_key(self) -> None:
        """Card Generate Key of 27/F1 under the issuer key 21/F0: the vector's blob."""
        sam, channel = _station()
        session = sam.session_crypto(SN8)
        blob = session.generate_ciphered_card_key(KEY_CARD_CHALLENGE, 0x21, 0xF0, 0x27, 0xF1)
        assert blob == KEY_BLOB
        assert _sent(channel) == [SAM_SELECT_DIVERSIFIER, SAM_GIVE_RANDOM_KEY, SAM_GENERATE_KEY]

    def test_change_key_refused_in_session(self) -> None:
        """Change Key is an outside-session operation."""
        sam, _ = _station(TC)
        session = _open_regular(sam)
        with pytest.raises(SamError, match="outside"):
            session.generate_ciphered_card_key(KEY_CARD_CHALLENGE, 0x21, 0xF0, 0x27, 0xF1)


class TestStoredValue:
    """SV Prepare Debit and SV Check through LegacySam (the csim1 SV debit vector)."""

    REQUEST = SvRequest(SvOperation.DEBIT, SV_GET_HEADER, SV_GET_RESPONSE, SV_DEBIT_PARTIAL)

    def _sv_station(self) -> tuple[LegacySam, ApduChannel]:
        return _station(SV_CHALLENGE, serial=SV_SAM_SERIAL, sv_transaction_number=SV_TNUM)

    def test_debit_out_of_session(self) -> None:
        """SV Prepare Debit gives the card command's data; SV Check accepts the card's lo."""
        sam, channel = self._sv_station()
        session = sam.session_crypto(SN8)
        data = session.prepare_sv(self.REQUEST)
        assert data.serial == SV_SAM_SERIAL and data.challenge == SV_CHALLENGE
        assert data.complete(SV_DEBIT_PARTIAL) == (0xA1, 0xB2, SV_CARD_DEBIT_DATA)
        assert session.verify_card_sv_mac(SV_CARD_SIGNATURE) is True
        assert _sent(channel) == [SAM_SELECT_DIVERSIFIER, SAM_SV_PREPARE_DEBIT, SAM_SV_CHECK]

    def test_wrong_card_signature(self) -> None:
        """A wrong SV signature is False (6988), not an exception."""
        sam, _ = self._sv_station()
        session = sam.session_crypto(SN8)
        session.prepare_sv(self.REQUEST)
        assert session.verify_card_sv_mac(h("6C6853")) is False

    def test_check_without_prepare(self) -> None:
        """SV Check with no SV Prepare is a usage error, raised before any APDU."""
        sam, channel = self._sv_station()
        with pytest.raises(SamError, match="no SV operation"):
            sam.session_crypto(SN8).verify_card_sv_mac(SV_CARD_SIGNATURE)
        assert channel.apdu_count == 0

    def test_abort(self) -> None:
        """abort_sv sends SV Check with no data; the SAM then has no SV transaction."""
        sam, channel = self._sv_station()
        session = sam.session_crypto(SN8)
        session.prepare_sv(self.REQUEST)
        session.abort_sv()
        assert _sent(channel)[-1] == h("8058000000")


class TestMixedPair:
    """A card whose keys come from another master fails at Digest Authenticate."""

    def test_other_master_key(self) -> None:
        """The card MAC of a foreign key set: SAM 6988, verify returns False."""
        sam, channel = _station(TC)
        session = _open_regular(sam)
        for item in ITEMS:
            session.update_session_mac(item)
        assert session.finalize_session_mac() == TERMINAL_MAC
        foreign = crypto.diversify(bytes(range(0xA0, 0xB0)), KIF_DEBIT, KVC_SIM, SN8)
        card = crypto.SessionMac.start(
            foreign,
            extended=False,
            kif=KIF_DEBIT,
            kvc=KVC_SIM,
            open_data_out=OSS_DATA_OUT,
            terminal_challenge=TC,
        )
        for item in ITEMS:
            card.add(item)
        assert card.card_mac() != CARD_MAC
        assert session.verify_card_session_mac(card.card_mac()) is False
        assert channel.exchanges[-1].response == h("6988")


def _replay(subtype: int, items: list[bytes], updates: list[CommandApdu]) -> LegacySam:
    """A LegacySam of this SAM subtype over a recording of the whole expected session."""
    atr = build_sam_atr(h("00000042"), issuer=0x20, subtype=subtype)
    cla = 0x94 if 0xD0 <= subtype <= 0xD7 else 0x80
    pairs = [
        (bytes(cmd.select_diversifier(SN8, cla=cla)), OK),
        (bytes(cmd.get_challenge(4, cla=cla)), TC + OK),
        (bytes(cmd.digest_init(KIF_DEBIT, KVC_SIM, OSS_DATA_OUT, cla=cla)), OK),
        *((bytes(update), OK) for update in updates),
        (bytes(cmd.digest_close(cla=cla)), TERMINAL_MAC + OK),
        (bytes(cmd.digest_authenticate(CARD_MAC, cla=cla)), OK),
    ]
    return LegacySam(ApduChannel(ReplayConnection(pairs, atr=atr), label="sam"))


def _run(sam: LegacySam, items: list[bytes]) -> None:
    session = _open_regular(sam)
    for item in items:
        session.update_session_mac(item)
    assert session.finalize_session_mac() == TERMINAL_MAC
    assert session.verify_card_session_mac(CARD_MAC) is True


class TestPackingPerSamType:
    """Digest Update Multiple packing within 255 (C1), 240 (S1E1); single updates of 70 (S1Dx)."""

    ITEMS = [bytes([n]) * 40 for n in range(1, 7)]  # 41 bytes each once framed

    def test_c1_one_apdu_of_246_bytes(self) -> None:
        """A SAM C1 takes the six items in one Digest Update Multiple."""
        _run(_replay(0xC1, self.ITEMS, [cmd.digest_update_multiple(self.ITEMS)]), self.ITEMS)

    def test_s1e1_splits_at_240(self) -> None:
        """A SAM S1E1 takes five items (205 bytes), then the sixth."""
        updates = [
            cmd.digest_update_multiple(self.ITEMS[:5]),
            cmd.digest_update_multiple(self.ITEMS[5:]),
        ]
        _run(_replay(0xE1, self.ITEMS, updates), self.ITEMS)

    def test_s1dx_single_updates_class_94(self) -> None:
        """A SAM S1Dx has no Digest Update Multiple: one CLA 94 Digest Update per item."""
        updates = [cmd.digest_update(item, cla=0x94) for item in self.ITEMS]
        _run(_replay(0xD3, self.ITEMS, updates), self.ITEMS)

    def test_s1dx_item_limit(self) -> None:
        """An item over 70 bytes cannot go to an S1Dx; 70 bytes can."""
        session = _open_regular(_replay(0xD3, [], [cmd.digest_update(bytes(70), cla=0x94)]))
        session.update_session_mac(bytes(70))
        with pytest.raises(SamError, match="70"):
            session.update_session_mac(bytes(71))

    @pytest.mark.parametrize(("subtype", "limit"), [(0xC1, 255), (0xE1, 240)])
    def test_every_payload_within_limit(self, subtype: int, limit: int) -> None:
        """Items of many sizes: every Digest Update Multiple stays within the type's limit."""
        items = [bytes([n]) * (7 + 23 * n % 90) for n in range(1, 30)]
        identity_limit = limit
        updates = [
            cmd.digest_update_multiple(group)
            for group in cmd.pack_digest_items(items, identity_limit)
        ]
        assert all(len(update.data) <= limit for update in updates)
        assert sum(len(update.data) for update in updates) == sum(len(i) + 1 for i in items)
        _run(_replay(subtype, items, updates), items)


class TestFlush:
    """Pushing buffered items early (the overlap interface)."""

    def test_flush_complete_only_keeps_the_open_packet(self) -> None:
        """complete_only sends only full packets; a final flush sends the rest."""
        sam, channel = _station(TC)
        session = _open_regular(sam)
        items = [bytes([n]) * 100 for n in range(1, 6)]  # 101 bytes framed: two per packet
        for item in items:
            session.update_session_mac(item)
        start = channel.apdu_count
        assert session.flush(complete_only=True) == 2
        assert session.pending_items == 1
        assert session.flush(complete_only=True) == 0
        assert session.flush() == 1 and session.pending_items == 0
        assert [apdu[:4] for apdu in _sent(channel, start)] == [h("808C8000")] * 3

    def test_early_flush_same_mac(self) -> None:
        """Items flushed one pair at a time give the vector's MACs."""
        sam, _ = _station(TC)
        session = _open_regular(sam)
        for index, item in enumerate(ITEMS):
            session.update_session_mac(item)
            if index % 2:
                session.flush()
        assert session.finalize_session_mac() == TERMINAL_MAC
        assert session.verify_card_session_mac(CARD_MAC) is True


class TestSamManagement:
    """Unlock and records through LegacySam."""

    def test_unlock_then_session(self) -> None:
        """A locked software SAM serves a session once unlocked; unlocking twice is fine."""
        sam, channel = _station(TC, locked=True, unlock_data=UNLOCK_DATA)
        with pytest.raises(cmd.SamAccessForbiddenError, match="locked"):
            sam.session_crypto(SN8).init_session()
        sam.unlock(UNLOCK_DATA)
        sam.unlock(UNLOCK_DATA)  # 6985 "not locked" is accepted
        session = _open_regular(sam)
        for item in ITEMS:
            session.update_session_mac(item)
        assert session.finalize_session_mac() == TERMINAL_MAC
        with pytest.raises(cmd.SamSecurityDataError):
            locked, _ = _station(TC, locked=True, unlock_data=UNLOCK_DATA)
            locked.unlock(bytes(16))

    def test_records(self) -> None:
        """Key parameters of 30/F0 (never the key) and the event counters."""
        sam, _ = _station(TC)
        params = sam.read_key_parameters(KIF_DEBIT, KVC_SIM)
        assert (params.kif, params.kvc, params.algorithm) == (0x30, 0xF0, 0xA0)
        _open_regular(sam)
        assert sam.read_event_counters()[0] == 1


class TestCapacity:
    """The card payload a SAM type can digest."""

    @pytest.mark.parametrize(("subtype", "capacity"), [(0xC1, 250), (0xE1, 235), (0xD2, 65)])
    def test_card_payload_capacity(self, subtype: int, capacity: int) -> None:
        """SAM limit minus 5 bytes of header (calypso-protocol.md section 0)."""
        atr = build_sam_atr(h("00000001"), issuer=0x20, subtype=subtype)
        sam = LegacySam(ApduChannel(ReplayConnection([], atr=atr)))
        assert sam.card_payload_capacity == capacity
