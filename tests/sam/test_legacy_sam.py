# SPDX-License-Identifier: Apache-2.0
"""LegacySam: the exact SAM APDU sequences it sends, over the software SAM and Keyple's stub."""

from __future__ import annotations

import pytest
from sam_vectors import (
    CARD_MAC,
    ITEMS,
    KIF_DEBIT,
    KVC_SIM,
    OSS_DATA_OUT,
    SAM_DIGEST_AUTHENTICATE,
    SAM_DIGEST_CLOSE,
    SAM_DIGEST_INIT,
    SAM_DIGEST_UPDATE_MULTIPLE,
    SAM_GET_CHALLENGE,
    SAM_SELECT_DIVERSIFIER,
    SIM_KEYS,
    SN8,
    STUB_CARD_MAC,
    STUB_CARD_SERIAL,
    STUB_CHALLENGE,
    STUB_KIF,
    STUB_KVC,
    STUB_OSS_DATA_OUT,
    STUB_SAM_ATR,
    STUB_SAM_TABLE,
    STUB_TERMINAL_MAC,
    TC,
    TC8,
    TERMINAL_MAC,
    fixed_rng,
    h,
)

from calypso import crypto
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from readers.replay import ReplayConnection
from sam.atr import build_sam_atr, parse_sam_atr
from sam.base import Sam, SamError, SessionCrypto
from sam.client import LegacySam
from sam.commands import (
    SamAccessForbiddenError,
    SamCommandRef,
    SamKeyNotFoundError,
    digest_close,
)
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam

OTHER_CARD = h("00000000DEADBEEF")


def _software_sam(rng_challenge: bytes = TC8) -> tuple[LegacySam, ApduChannel]:
    """A LegacySam over an ApduChannel to a SoftwareSam in an EmulatedReader."""
    reader = EmulatedReader("sam")
    reader.insert(SoftwareSam.from_keys(SIM_KEYS, fixed_rng(rng_challenge), allow_simulation=True))
    channel = ApduChannel(reader.connect(), label="sam")
    return LegacySam(channel), channel


def _sent(channel: ApduChannel, start: int = 0) -> list[bytes]:
    return [exchange.command for exchange in channel.exchanges[start:]]


def _expected_mac(items: list[bytes], *, serial: bytes = SN8) -> crypto.SessionMac:
    """The CSIM1 session MAC computed directly (no APDUs) for the vector's keys and data-out."""
    key = load_keys(SIM_KEYS, allow_simulation=True).lookup(KIF_DEBIT, KVC_SIM)
    assert key is not None
    card_key = crypto.diversify(key.secret(), KIF_DEBIT, KVC_SIM, serial)
    session = crypto.SessionMac.start(
        card_key,
        extended=False,
        kif=KIF_DEBIT,
        kvc=KVC_SIM,
        open_data_out=OSS_DATA_OUT,
        terminal_challenge=TC,
    )
    for item in items:
        session.add(item)
    return session


def _run_vector(session: SessionCrypto, items: list[bytes] = ITEMS) -> bytes:
    assert session.init_session() == TC
    session.init_session_mac(OSS_DATA_OUT, KIF_DEBIT, KVC_SIM)
    for item in items:
        session.update_session_mac(item)
    return session.finalize_session_mac()


class TestVectorSession:
    """The regular-mode csim1 vector session driven through SAM APDUs."""

    def test_exact_sam_apdus(self) -> None:
        """LegacySam sends exactly the vector's SAM APDUs and gets its MACs."""
        sam, channel = _software_sam()
        session = sam.session_crypto(SN8)
        assert _run_vector(session) == TERMINAL_MAC
        assert session.verify_card_session_mac(CARD_MAC) is True
        assert _sent(channel) == [
            SAM_SELECT_DIVERSIFIER,
            SAM_GET_CHALLENGE,
            SAM_DIGEST_INIT,
            SAM_DIGEST_UPDATE_MULTIPLE,
            SAM_DIGEST_CLOSE,
            SAM_DIGEST_AUTHENTICATE,
        ]

    def test_wrong_card_mac_is_false(self) -> None:
        """A wrong card MAC gives False (SAM 6988), not an exception."""
        sam, _ = _software_sam()
        session = sam.session_crypto(SN8)
        _run_vector(session)
        assert session.verify_card_session_mac(h("CF42745C")) is False

    def test_wrong_length_card_mac_is_false(self) -> None:
        """A card MAC of the wrong length is not authentic and is not sent."""
        sam, channel = _software_sam()
        session = sam.session_crypto(SN8)
        _run_vector(session)
        count = channel.apdu_count
        assert session.verify_card_session_mac(h("CF42745BCF42745B")) is False
        assert channel.apdu_count == count

    def test_is_a_sam(self) -> None:
        """LegacySam satisfies the Sam protocol and reports the ATR serial."""
        sam, _ = _software_sam()
        checked: Sam = sam
        assert checked.serial == h("5AFE0001")

    def test_exchanges_recorded_and_reset(self) -> None:
        """The Sam's exchanges are its channel's since the last reset; a reset empties them."""
        sam, channel = _software_sam()
        checked: Sam = sam
        checked.prefetch()
        assert [ex.command for ex in checked.exchanges] == [SAM_GET_CHALLENGE]
        checked.reset_exchanges()
        assert checked.exchanges == ()
        _run_vector(checked.session_crypto(SN8))
        assert list(checked.exchanges) == list(channel.exchanges)
        assert [ex.command for ex in checked.exchanges] == [
            SAM_SELECT_DIVERSIFIER,
            SAM_DIGEST_INIT,
            SAM_DIGEST_UPDATE_MULTIPLE,
            SAM_DIGEST_CLOSE,
        ]
        checked.reset_exchanges()
        assert checked.exchanges == ()
        assert channel.apdu_count == 0


class TestKeypleStub:
    """Keyple's stub SAM C1 table, replayed command by command."""

    def test_exact_stub_commands(self) -> None:
        """The five stub SAM commands are sent in order and nothing else."""
        connection = ReplayConnection(STUB_SAM_TABLE, atr=STUB_SAM_ATR)
        sam = LegacySam(ApduChannel(connection, label="sam"))
        assert sam.serial == h("12345678")
        session = sam.session_crypto(STUB_CARD_SERIAL)
        assert session.init_session() == STUB_CHALLENGE
        session.init_session_mac(STUB_OSS_DATA_OUT, STUB_KIF, STUB_KVC)
        assert session.finalize_session_mac() == STUB_TERMINAL_MAC
        assert session.verify_card_session_mac(STUB_CARD_MAC) is True
        assert connection.exhausted
        assert connection.sent == [command for command, _ in STUB_SAM_TABLE]


class TestDiversifierAndPrefetch:
    """Select Diversifier only when it changes; prefetched challenges."""

    def test_diversifier_not_resent_for_same_card(self) -> None:
        """A second session with the same card starts with Get Challenge."""
        sam, channel = _software_sam()
        first = sam.session_crypto(SN8)
        _run_vector(first)
        first.verify_card_session_mac(CARD_MAC)
        start = channel.apdu_count
        second = sam.session_crypto(SN8)
        assert _run_vector(second) == TERMINAL_MAC
        assert second.verify_card_session_mac(CARD_MAC) is True
        assert _sent(channel, start)[:2] == [SAM_GET_CHALLENGE, SAM_DIGEST_INIT]

    def test_diversifier_resent_for_other_card(self) -> None:
        """A session with another card selects its diversifier first."""
        sam, channel = _software_sam()
        sam.session_crypto(SN8).init_session()
        start = channel.apdu_count
        sam.session_crypto(OTHER_CARD).init_session()
        assert _sent(channel, start) == [h("8014000008") + OTHER_CARD, SAM_GET_CHALLENGE]

    def test_prefetch_used_by_next_session(self) -> None:
        """prefetch() sends Get Challenge; the next session uses it without another one."""
        sam, channel = _software_sam()
        sam.prefetch()
        sam.prefetch()  # already prefetched: nothing sent
        assert _sent(channel) == [SAM_GET_CHALLENGE]
        session = sam.session_crypto(SN8)
        assert _run_vector(session) == TERMINAL_MAC
        assert session.verify_card_session_mac(CARD_MAC) is True
        assert _sent(channel) == [
            SAM_GET_CHALLENGE,
            SAM_SELECT_DIVERSIFIER,
            SAM_DIGEST_INIT,
            SAM_DIGEST_UPDATE_MULTIPLE,
            SAM_DIGEST_CLOSE,
            SAM_DIGEST_AUTHENTICATE,
        ]
        assert not sam.has_prefetched_challenge

    def test_prefetch_dropped_by_other_command(self) -> None:
        """A SAM command other than Select Diversifier invalidates the prefetched challenge."""
        sam, channel = _software_sam()
        sam.prefetch()
        sam.send(SamCommandRef.DIGEST_CLOSE, digest_close(), accept=(0x9000, 0x6985))
        assert not sam.has_prefetched_challenge
        session = sam.session_crypto(SN8)
        session.init_session()
        assert _sent(channel)[-1] == SAM_GET_CHALLENGE

    def test_eight_byte_prefetch_truncated(self) -> None:
        """An 8-byte prefetched challenge serves a regular session with its first 4 bytes."""
        sam, _ = _software_sam()
        sam.prefetch(extended=True)
        session = sam.session_crypto(SN8)
        assert _run_vector(session) == TERMINAL_MAC
        assert session.verify_card_session_mac(CARD_MAC) is True

    def test_extended_prefetch(self) -> None:
        """An extended session takes an 8-byte prefetched challenge."""
        sam, channel = _software_sam()
        sam.prefetch(extended=True)
        assert _sent(channel) == [h("8084000008")]
        assert sam.session_crypto(SN8, extended=True).init_session() == TC8


class TestDigestPacking:
    """Buffered items become Digest Update Multiple APDUs, or single Digest Updates."""

    def test_many_items_split_across_apdus(self) -> None:
        """Items over 255 bytes in total are split, each APDU within the limit, same MAC."""
        items = [bytes([i]) * 100 for i in range(1, 7)]
        sam, channel = _software_sam()
        session = sam.session_crypto(SN8)
        start = 3  # Select Diversifier, Get Challenge, Digest Init
        assert _run_vector(session, items) == _expected_mac(items).terminal_mac()
        updates = _sent(channel, start)[:-1]
        assert [apdu[:4] for apdu in updates] == [h("808C8000")] * 3
        assert all(apdu[4] <= 255 for apdu in updates)

    def test_sam_without_multiple_uses_single_updates(self) -> None:
        """A SAM type without Digest Update Multiple (HSM C1) gets one Digest Update per item."""
        sam, channel = _software_sam()
        hsm = LegacySam(channel, build_sam_atr(h("5AFE0001"), issuer=0x08))
        session = hsm.session_crypto(SN8)
        assert _run_vector(session) == TERMINAL_MAC
        updates = _sent(channel)[3:-1]
        assert updates == [h("808C0000") + bytes((len(i),)) + i for i in ITEMS]

    def test_no_items_no_update(self) -> None:
        """With nothing in session, Digest Init is followed by Digest Close."""
        sam, channel = _software_sam()
        session = sam.session_crypto(SN8)
        assert _run_vector(session, []) == _expected_mac([]).terminal_mac()
        assert _sent(channel)[2:] == [SAM_DIGEST_INIT, SAM_DIGEST_CLOSE]


class TestRefusals:
    """Errors raised before sending, and SAM status words surfacing as SamError."""

    def test_kif_or_kvc_zero_refused_before_sending(self) -> None:
        """Digest Init with KIF or KVC 00 raises SamError and sends nothing."""
        sam, channel = _software_sam()
        for kif, kvc in ((0x00, KVC_SIM), (KIF_DEBIT, 0x00)):
            session = sam.session_crypto(SN8)
            session.init_session()
            count = channel.apdu_count
            with pytest.raises(SamError, match="KIF"):
                session.init_session_mac(OSS_DATA_OUT, kif, kvc)
            assert channel.apdu_count == count

    def test_unknown_key(self) -> None:
        """SAM 6A83 at Digest Init is a SamKeyNotFoundError, and the diversifier is re-sent."""
        sam, channel = _software_sam()
        session = sam.session_crypto(SN8)
        session.init_session()
        with pytest.raises(SamKeyNotFoundError) as caught:
            session.init_session_mac(OSS_DATA_OUT, 0x30, 0x79)
        assert caught.value.sw == 0x6A83
        sam.session_crypto(SN8).init_session()
        assert _sent(channel)[-2:] == [SAM_SELECT_DIVERSIFIER, SAM_GET_CHALLENGE]

    def test_sam_out_of_sequence(self) -> None:
        """A Digest Init the SAM refuses (6985, another command in between) raises SamError."""
        sam, _ = _software_sam()
        session = sam.session_crypto(SN8)
        session.init_session()
        sam.send(SamCommandRef.DIGEST_CLOSE, digest_close(), accept=(0x9000, 0x6985))
        with pytest.raises(SamAccessForbiddenError):
            session.init_session_mac(OSS_DATA_OUT, KIF_DEBIT, KVC_SIM)

    def test_refusal_is_mapped_once_by_the_command_table(self) -> None:
        """A refused SAM command raises its table's typed ApduError, not a re-raised bare one."""
        sam, _ = _software_sam()
        with pytest.raises(SamAccessForbiddenError) as caught:
            sam.send(SamCommandRef.DIGEST_CLOSE, digest_close())
        assert caught.value.sw == 0x6985 and caught.value.command == digest_close()
        assert caught.value.__cause__ is None

    def test_calls_out_of_order(self) -> None:
        """Using the SessionCrypto out of order raises SamError before any APDU."""
        sam, channel = _software_sam()
        session = sam.session_crypto(SN8)
        with pytest.raises(SamError, match="out of order"):
            session.finalize_session_mac()
        assert channel.apdu_count == 0

    def test_extended_needs_c1(self) -> None:
        """An S1E1 SAM cannot serve an extended session."""
        atr = build_sam_atr(h("00000001"), issuer=0x20, subtype=0xE1)
        sam = LegacySam(ApduChannel(ReplayConnection([], atr=atr)))
        assert parse_sam_atr(atr).supports_extended is False
        with pytest.raises(SamError, match="extended"):
            sam.session_crypto(SN8, extended=True)
