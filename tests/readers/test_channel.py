# SPDX-License-Identifier: Apache-2.0
"""ApduChannel: T=0 response chaining, wrong-Le replay, status checks, the exchange list."""

from __future__ import annotations

import pytest

from readers.apdu import SW, CommandApdu
from readers.channel import ApduChannel
from readers.replay import ReplayConnection, ReplayMismatchError


def _replay(*pairs: tuple[str, str]) -> ReplayConnection:
    return ReplayConnection([(bytes.fromhex(c), bytes.fromhex(r)) for c, r in pairs])


class TestApduChannel:
    """The one place that sends."""

    def test_61xx_is_followed_by_get_response(self) -> None:
        """SW 6104 makes the channel send Get Response `00 C0 00 00 04` (class 00h always)."""
        link = _replay(("8084000004", "6104"), ("00C0000004", "C1C2C3C49000"))
        channel = ApduChannel(link, label="sam")
        response = channel.transmit(CommandApdu(0x80, 0x84, 0, 0, le=4))
        assert response.data == bytes.fromhex("C1C2C3C4")
        assert response.sw == SW.OK
        assert channel.apdu_count == 2
        assert [ex.label for ex in channel.exchanges] == ["sam", "sam"]

    @pytest.mark.parametrize("cla", [0x94, 0xFA, 0x80, 0x00])
    def test_61xx_get_response_is_class_00_whatever_the_command_class(self, cla: int) -> None:
        """Get Response completing a 94h/FAh/80h command is still sent with CLA 00h (issue 16.3)."""
        command = CommandApdu(cla, 0xB2, 1, 0x3C, le=0)
        link = _replay((command.hex(), "6103"), ("00C0000003", "0102039000"))
        response = ApduChannel(link).transmit(command)
        assert (response.data, response.sw) == (bytes.fromhex("010203"), SW.OK)

    def test_case4_answered_9000_without_data_gets_the_data(self) -> None:
        """A case-4 command answered a bare 9000 is followed by `00 C0 00 00 Le` (issue 16.3)."""
        open_session = "948A8B3804C1C2C3C400"  # Rev2 Open Secure Session, case 4, Le 00
        link = _replay((open_session, "9000"), ("00C0000000", "0A" + "11" * 4 + "9000"))
        channel = ApduChannel(link)
        response = channel.transmit(CommandApdu.from_bytes(bytes.fromhex(open_session)))
        assert response.data == bytes.fromhex("0A11111111")
        assert response.sw == SW.OK
        assert [ex.command.hex().upper() for ex in channel.exchanges] == [
            open_session,
            "00C0000000",
        ]

    def test_case4_get_response_takes_the_original_le(self) -> None:
        """The Get Response Le is the Le of the command it completes (here 03h)."""
        increase = "0032010803000064" + "03"
        link = _replay((increase, "9000"), ("00C0000003", "0010BE9000"))
        response = ApduChannel(link).transmit(CommandApdu.from_bytes(bytes.fromhex(increase)))
        assert response.data == bytes.fromhex("0010BE")

    def test_case2_and_case3_answered_9000_are_left_alone(self) -> None:
        """Only case 4 is completed: a bare 9000 to a case-2 or case-3 command is the answer."""
        link = _replay(("00B2013C00", "9000"), ("00E20040020102", "9000"))
        channel = ApduChannel(link)
        assert channel.transmit(CommandApdu(0x00, 0xB2, 1, 0x3C, le=0)).sw == SW.OK
        assert channel.transmit(CommandApdu(0x00, 0xE2, 0, 0x40, b"\x01\x02")).sw == SW.OK
        assert channel.apdu_count == 2

    def test_6cxx_replays_with_the_right_le(self) -> None:
        """SW 6C1D without data makes the channel resend the command with Le=1D."""
        record = "11" * 29
        link = _replay(("00B2013C00", "6C1D"), ("00B2013C1D", record + "9000"))
        response = ApduChannel(link).transmit(CommandApdu(0x00, 0xB2, 1, 0x3C, le=0))
        assert response.data == bytes.fromhex(record)

    def test_transmit_never_raises_on_a_status_word(self) -> None:
        """transmit() returns an error status word as it came; only parsers raise on it."""
        link = _replay(("00B2013C00", "6A82"))
        response = ApduChannel(link).transmit(CommandApdu(0x00, 0xB2, 1, 0x3C, le=0))
        assert response.sw == SW.FILE_NOT_FOUND
        assert response.data == b""

    def test_failed_exchange_is_kept_in_the_trail(self) -> None:
        """A transport failure is still recorded, with an empty response, then re-raised."""
        channel = ApduChannel(_replay(("8084000004", "9000")))
        with pytest.raises(ReplayMismatchError):
            channel.transmit(CommandApdu(0x80, 0x84, 0, 0, le=8))
        assert channel.exchanges[0].response == b""
        assert channel.exchanges[0].command == bytes.fromhex("8084000008")
