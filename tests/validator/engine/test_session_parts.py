# SPDX-License-Identifier: Apache-2.0
"""The secure session's parts on their own: prepared writes and the buffer accounting."""

from __future__ import annotations

from typing import cast

import pytest

from calypso.constants import WriteAccessLevel
from readers.apdu import CommandApdu, ResponseApdu
from readers.channel import ApduChannel
from sam.base import SessionCrypto
from validator.engine.multiple_session import MultipleSession
from validator.engine.prepared_writes import ANSWER_OK, PreparedWrites
from validator.engine.session import SecureSession
from validator.engine.session_buffer import ModificationBuffer
from validator.engine.session_digest import SessionDigest
from validator.engine.session_types import ModificationBufferOverflowError, SessionError

TERMINAL_MAC = bytes.fromhex("01020304")
APPEND = CommandApdu.from_bytes(bytes.fromhex("00E200401D") + bytes(29))
DECREASE = CommandApdu.from_bytes(bytes.fromhex("003001480300000100"))


class FakeCard:
    """A card channel that records the commands and gives the answers it was handed."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []

    def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Record the command and answer the next scripted answer."""
        self.sent.append(bytes(command))
        return ResponseApdu.from_bytes(self.answers.pop(0))


class FakeCrypto:
    """The session MAC calls the digest makes, recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def update_session_mac(self, apdu: bytes) -> None:
        """Record a digested item."""
        self.calls.append(f"update {apdu.hex()}")

    def finalize_session_mac(self) -> bytes:
        """Record Digest Close and give a fixed terminal MAC."""
        self.calls.append("finalize")
        return TERMINAL_MAC


class Refused(Exception):
    """The typed error a write's parser raises on a refusal."""


def refuse(response: ResponseApdu, command: CommandApdu) -> None:
    """A write's parser: a status word other than success raises its typed error."""
    if not response.ok:
        raise Refused(response.hex())


def parts(*answers: bytes) -> tuple[FakeCard, FakeCrypto, ApduChannel, SessionDigest]:
    """A scripted card and an inline digest over a recording crypto."""
    card, crypto = FakeCard(*answers), FakeCrypto()
    digest = SessionDigest(cast(SessionCrypto, crypto), overlap=False)
    return card, crypto, cast(ApduChannel, card), digest


class TestPreparedWrites:
    """Prepared writes wait for the Close and are checked against their anticipated answers."""

    def test_queued_writes_go_in_order_before_the_terminal_mac_is_read(self) -> None:
        """Nothing is sent when a write is queued; both go, in order, at the Close."""
        card, crypto, channel, digest = parts(ANSWER_OK, bytes.fromhex("0000049000"))
        prepared = PreparedWrites()
        prepared.start()
        assert prepared.add(APPEND, ANSWER_OK, refuse).ok
        prepared.add(DECREASE, bytes.fromhex("0000049000"), refuse)
        assert card.sent == []
        assert prepared.terminal_mac(channel, digest) == TERMINAL_MAC
        assert card.sent == [bytes(APPEND), bytes(DECREASE)]
        assert crypto.calls == ["finalize"] and not prepared.active

    def test_without_prepared_writes_the_close_only_asks_the_sam(self) -> None:
        """No write prepared: the terminal MAC comes from the SAM and the card gets nothing."""
        card, crypto, channel, digest = parts()
        prepared = PreparedWrites()
        prepared.start()
        assert prepared.terminal_mac(channel, digest) == TERMINAL_MAC
        assert card.sent == [] and not prepared.active

    def test_a_refused_write_raises_its_typed_error(self) -> None:
        """A refusal is reported by the write's own parser, not as a mere mismatch."""
        _, _, channel, digest = parts(bytes.fromhex("6400"))
        prepared = PreparedWrites()
        prepared.start()
        prepared.add(APPEND, ANSWER_OK, refuse)
        with pytest.raises(Refused):
            prepared.terminal_mac(channel, digest)

    def test_another_success_than_anticipated_ends_the_session(self) -> None:
        """A counter value other than the anticipated one: the MACs would not match."""
        _, _, channel, digest = parts(bytes.fromhex("0000039000"))
        prepared = PreparedWrites()
        prepared.start()
        prepared.add(DECREASE, bytes.fromhex("0000049000"), refuse)
        with pytest.raises(SessionError, match="0000039000 where 0000049000 was anticipated"):
            prepared.terminal_mac(channel, digest)

    def test_a_read_sends_what_was_prepared_first(self) -> None:
        """``send_before`` empties the queue and stays in prepared mode."""
        card, _, channel, _ = parts(ANSWER_OK)
        prepared = PreparedWrites()
        prepared.start()
        prepared.add(APPEND, ANSWER_OK, refuse)
        prepared.send_before(channel)
        assert card.sent == [bytes(APPEND)] and prepared.active


class TestMultipleSession:
    """The buffer is accounted per session; without the multiple mode an overflow is refused."""

    def test_overflow_without_the_multiple_mode_is_refused_before_sending(self) -> None:
        """The write that does not fit raises and is not accounted."""
        multiple = MultipleSession(ModificationBuffer(70, in_bytes=True), new_crypto=None)
        session = cast(SecureSession, object())  # never touched: nothing is closed
        multiple.take(session, bytes(APPEND))  # 29 + 6 = 35 bytes
        multiple.take(session, bytes(APPEND))
        with pytest.raises(ModificationBufferOverflowError, match="70 \\+ 35 exceeds .* 70 bytes"):
            multiple.take(session, bytes(APPEND))
        assert multiple.buffer.used == 70

    def test_a_new_session_starts_with_an_empty_buffer(self) -> None:
        """``opened`` counts the sessions and empties the buffer."""
        multiple = MultipleSession(ModificationBuffer(3, in_bytes=False), new_crypto=None)
        multiple.take(cast(SecureSession, object()), bytes(APPEND))
        multiple.opened(WriteAccessLevel.DEBIT)
        assert multiple.sessions == 1 and multiple.buffer.used == 0
        assert multiple.level is WriteAccessLevel.DEBIT
