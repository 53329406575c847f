# SPDX-License-Identifier: Apache-2.0
"""The secure session's parts on their own: prepared writes."""

from __future__ import annotations

from typing import cast

import pytest

from readers.apdu import CommandApdu, ResponseApdu
from readers.channel import ApduChannel
from sam.base import SessionCrypto
from validator.engine.prepared_writes import ANSWER_OK, PreparedWrites
from validator.engine.session_digest import SessionDigest
from validator.engine.session_types import SessionError

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
