# SPDX-License-Identifier: Apache-2.0
"""Offline re-verification of journaled sessions with the SAM in verification mode."""

from __future__ import annotations

import pytest
from sam_vectors import (
    CARD_EXTENDED_JOURNAL,
    CARD_REGULAR_JOURNAL,
    EXT_AUTH_CARD_MAC,
    EXT_AUTH_TERMINAL_MAC,
    EXT_OSS_DATA_OUT,
    EXT_UPDATE_CIPHERED,
    ITEMS,
    OSS_DATA_OUT,
    SIM_KEYS,
    SN8,
    TC,
    TC8,
    TERMINAL_MAC,
    fixed_rng,
    h,
)

from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam
from sam.verify import (
    AuthenticationStep,
    DigestStep,
    TranscriptError,
    recompute_session,
    session_transcript,
)


def _sam() -> tuple[LegacySam, ApduChannel]:
    """A LegacySam over a software SAM whose rng would give other challenges than the journal."""
    reader = EmulatedReader("sam")
    keys = load_keys(SIM_KEYS, allow_simulation=True)
    reader.insert(SoftwareSam(keys, rng=fixed_rng(bytes(8))))
    channel = ApduChannel(reader.connect(), label="sam")
    return LegacySam(channel), channel


class TestTranscript:
    """Rebuilding the digest items from card APDUs (pure)."""

    def test_regular(self) -> None:
        """OSS gives TC, data-out and KIF/KVC; items lose case-4 Le; Close gives both MACs."""
        transcript = session_transcript(CARD_REGULAR_JOURNAL)
        assert not transcript.extended
        assert transcript.terminal_challenge == TC
        assert transcript.open_data_out == OSS_DATA_OUT
        assert (transcript.kif, transcript.kvc) == (0x30, 0xF0)
        assert [step.item for step in transcript.steps if isinstance(step, DigestStep)] == ITEMS
        assert transcript.terminal_mac == TERMINAL_MAC
        assert transcript.card_mac == h("CF42745B")

    def test_extended(self) -> None:
        """Manage Secure Session is not digested: it becomes an authentication step."""
        transcript = session_transcript(CARD_EXTENDED_JOURNAL)
        assert transcript.extended and transcript.terminal_challenge == TC8
        assert transcript.open_data_out == EXT_OSS_DATA_OUT
        assert (transcript.kif, transcript.kvc) == (0x27, 0xF0)
        assert transcript.steps[2] == AuthenticationStep(EXT_AUTH_TERMINAL_MAC, EXT_AUTH_CARD_MAC)
        assert transcript.steps[3] == DigestStep(EXT_UPDATE_CIPHERED, encrypted=True)
        assert len(transcript.steps) == 1 + 2 + 4

    def test_not_a_session(self) -> None:
        """A journal that does not start with Open Secure Session is refused."""
        with pytest.raises(TranscriptError, match="Open Secure Session"):
            session_transcript(CARD_REGULAR_JOURNAL[1:])
        with pytest.raises(TranscriptError):
            session_transcript([])

    def test_card_lost_during_close(self) -> None:
        """A Close without answer leaves the card MAC unknown."""
        journal = [*CARD_REGULAR_JOURNAL[:4], (CARD_REGULAR_JOURNAL[4][0], b"")]
        assert session_transcript(journal).card_mac is None


class TestRecompute:
    """recompute_session drives the SAM in verification mode."""

    def test_regular_journal_verifies(self) -> None:
        """Both MACs of the regular vector session check out, with no Get Challenge."""
        sam, channel = _sam()
        result = recompute_session(sam, SN8, CARD_REGULAR_JOURNAL)
        assert result.ok
        sent = [exchange.command for exchange in channel.exchanges]
        assert sent[1][:4] == h("808A01FF")  # verification-mode Digest Init
        assert h("8084000004") not in sent

    def test_extended_journal_verifies(self) -> None:
        """Mutual authentication and ciphered items of the extended vector check out."""
        sam, _ = _sam()
        assert recompute_session(sam, SN8, CARD_EXTENDED_JOURNAL).ok

    def test_tampered_response(self) -> None:
        """A journaled response changed after the fact fails both MACs."""
        journal = list(CARD_REGULAR_JOURNAL)
        journal[3] = (journal[3][0], h("0000649000"))  # more units left than the card said
        sam, _ = _sam()
        result = recompute_session(sam, SN8, journal)
        assert not result.terminal_mac_ok and not result.card_mac_ok and not result.ok

    def test_wrong_card(self) -> None:
        """Replayed against another card serial, nothing verifies."""
        sam, _ = _sam()
        assert not recompute_session(sam, h("00000000DEADBEEF"), CARD_REGULAR_JOURNAL).ok

    def test_tampered_authentication(self) -> None:
        """A wrong card MAC in Manage Secure Session fails the authentications."""
        journal = list(CARD_EXTENDED_JOURNAL)
        journal[2] = (journal[2][0], bytes(8) + h("9000"))
        sam, _ = _sam()
        result = recompute_session(sam, SN8, journal)
        assert not result.authentications_ok and not result.ok
