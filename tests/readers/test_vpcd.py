# SPDX-License-Identifier: Apache-2.0
"""VpcdCard against a stand-in for vpcd: the wire protocol, tearing and muting, socket level."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from readers.vpcd import VpcdCard

ATR = bytes.fromhex("3B8880010000000000000000")


class EchoCard:
    """An ApduHandler that answers every APDU with its INS byte and 9000, counting power cycles."""

    def __init__(self) -> None:
        self.processed: list[bytes] = []
        self.power_ons = 0
        self.power_offs = 0

    def power_on(self) -> bytes:
        """Count and give the ATR."""
        self.power_ons += 1
        return ATR

    def power_off(self) -> None:
        """Count."""
        self.power_offs += 1

    def process(self, apdu: bytes) -> bytes:
        """Echo the INS byte."""
        self.processed.append(apdu)
        return apdu[1:2] + b"\x90\x00"


class FakeVpcd:
    """The vpcd side of one slot: accepts the card and speaks the length-prefixed protocol."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        """Accept the card's connection."""
        self.server.settimeout(5.0)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(2.0)

    def send(self, payload: bytes) -> None:
        """Send one message."""
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)) + payload)

    def receive(self) -> bytes | None:
        """One message from the card, or None when it closed the connection."""
        assert self.conn is not None
        header = self.conn.recv(2, socket.MSG_WAITALL)
        if len(header) < 2:
            return None
        (size,) = struct.unpack(">H", header)
        return self.conn.recv(size, socket.MSG_WAITALL)

    def close(self) -> None:
        """Close both sockets."""
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    """A listening stand-in for vpcd."""
    fake = FakeVpcd()
    yield fake
    fake.close()


def inserted(vpcd: FakeVpcd, handler: EchoCard) -> VpcdCard:
    """A VpcdCard connected to the stand-in."""
    card = VpcdCard(vpcd.port)
    card.insert(handler)
    vpcd.accept()
    return card


class TestVpcdProtocol:
    """Messages as vpcd sends them, answers as vpcd expects them."""

    def test_atr_power_and_apdu(self, vpcd: FakeVpcd):
        """GET ATR is answered, power events are not, an APDU gets the handler's answer."""
        handler = EchoCard()
        card = inserted(vpcd, handler)
        vpcd.send(b"\x04")
        assert vpcd.receive() == ATR
        vpcd.send(b"\x01")
        vpcd.send(b"\x00")
        vpcd.send(bytes.fromhex("00A4040000"))
        assert vpcd.receive() == bytes.fromhex("A49000")
        assert card.apdu_count == 1 and card.atr_polls == 1
        assert card.events == [0x01, 0x00]
        card.remove()
        assert vpcd.receive() is None
        assert not card.present and handler.power_offs >= 2

    def test_tear_executes_but_never_answers(self, vpcd: FakeVpcd):
        """A torn APDU reaches the handler, then the connection closes without an answer."""
        handler = EchoCard()
        card = inserted(vpcd, handler)
        card.tear_on_next_apdu(after=1)
        vpcd.send(bytes.fromhex("00B2000000"))
        assert vpcd.receive() == bytes.fromhex("B29000")
        vpcd.send(bytes.fromhex("00E2000000"))
        assert vpcd.receive() is None
        assert card.wait_removed(2.0)
        assert handler.processed[-1] == bytes.fromhex("00E2000000")

    def test_mute_then_late_answer(self, vpcd: FakeVpcd):
        """A muted card answers after the delay when asked to."""
        card = inserted(vpcd, EchoCard())
        card.mute_on_next_apdu(0.2, answer=True)
        vpcd.send(bytes.fromhex("00B0000000"))
        assert vpcd.receive() == bytes.fromhex("B09000")
        card.remove()

    def test_mute_then_leave(self, vpcd: FakeVpcd):
        """A muted card that does not answer leaves after the delay, its APDU unexecuted."""
        handler = EchoCard()
        card = inserted(vpcd, handler)
        card.mute_on_next_apdu(0.1)
        vpcd.send(bytes.fromhex("00B0000000"))
        assert vpcd.receive() is None
        assert handler.processed == []
        assert card.wait_removed(2.0)

    def test_vpcd_closing_is_a_removal(self, vpcd: FakeVpcd):
        """When vpcd drops the connection (pcscd stopped), the card counts as removed."""
        handler = EchoCard()
        card = inserted(vpcd, handler)
        assert vpcd.conn is not None
        vpcd.conn.close()
        assert card.wait_removed(2.0)
        assert handler.power_offs == 1

    def test_insert_without_vpcd_fails_clearly(self):
        """No vpcd listening: ConnectionError after the timeout."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(ConnectionError, match="not listening"):
            VpcdCard(port).insert(EchoCard(), timeout=0.2)
