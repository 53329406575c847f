# SPDX-License-Identifier: Apache-2.0
"""ApduChannel: T=0 response chaining, wrong-Le replay, status checks, the exchange list."""

from __future__ import annotations

import pytest

from readers.apdu import SW, ApduError, CommandApdu
from readers.channel import ApduChannel
from readers.replay import ReplayConnection, ReplayMismatchError


def _replay(*pairs: tuple[str, str]) -> ReplayConnection:
    return ReplayConnection([(bytes.fromhex(c), bytes.fromhex(r)) for c, r in pairs])


class TestApduChannel:
    """The one place that sends."""

    def test_61xx_is_followed_by_get_response(self) -> None:
        """SW 6104 makes the channel send Get Response with Le=04 and return its data."""
        link = _replay(("8084000004", "6104"), ("80C0000004", "C1C2C3C49000"))
        channel = ApduChannel(link, label="sam")
        response = channel.transmit(CommandApdu(0x80, 0x84, 0, 0, le=4))
        assert response.data == bytes.fromhex("C1C2C3C4")
        assert response.sw == SW.OK
        assert channel.apdu_count == 2
        assert [ex.label for ex in channel.exchanges] == ["sam", "sam"]

    def test_6cxx_replays_with_the_right_le(self) -> None:
        """SW 6C1D without data makes the channel resend the command with Le=1D."""
        record = "11" * 29
        link = _replay(("00B2013C00", "6C1D"), ("00B2013C1D", record + "9000"))
        response = ApduChannel(link).transmit(CommandApdu(0x00, 0xB2, 1, 0x3C, le=0))
        assert response.data == bytes.fromhex(record)

    def test_send_raises_on_unexpected_status(self) -> None:
        """send() raises ApduError unless the status word is accepted."""
        link = _replay(("00B2013C00", "6A82"), ("00B2013C00", "6A82"))
        channel = ApduChannel(link)
        command = CommandApdu(0x00, 0xB2, 1, 0x3C, le=0)
        with pytest.raises(ApduError) as caught:
            channel.send(command)
        assert caught.value.sw == 0x6A82
        assert channel.send(command, accept=(SW.OK, SW.FILE_NOT_FOUND)).sw == 0x6A82

    def test_failed_exchange_is_kept_in_the_trail(self) -> None:
        """A transport failure is still recorded, with an empty response, then re-raised."""
        channel = ApduChannel(_replay(("8084000004", "9000")))
        with pytest.raises(ReplayMismatchError):
            channel.transmit(CommandApdu(0x80, 0x84, 0, 0, le=8))
        assert channel.exchanges[0].response == b""
        assert channel.exchanges[0].command == bytes.fromhex("8084000008")
