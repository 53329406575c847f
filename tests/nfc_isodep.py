# SPDX-License-Identifier: Apache-2.0
"""Card side of ISO-DEP for nfcpy tests: a frame-level Type 4A card, over udp or a fake device.

nfcpy ships card emulation for Type 3 only; its Type 4 *reader* code (Type4ATag, IsoDepInitiator)
is what we test, so the card answers its frames here (reference/pcsc-nfc-testing.md 8.3-8.6).
No chaining (PCB bit 0x10): Calypso APDUs fit in one frame with FSC 256.
"""

from __future__ import annotations

import threading
from typing import Any

import nfc
import nfc.clf
import nfc.clf.device

from readers.base import ApduHandler

SENS_RES = bytes.fromhex("4400")
SDD_RES = bytes.fromhex("08B0B1B2")
SEL_RES = bytes.fromhex("20")  # ISO 14443-4 compliant
# TL T0(FSCI=8: 256 bytes; TA TB TC follow) TA TB(FWI=10: FWT ~309 ms) TC; nfcpy reads FWI
# from the 4th byte, and a Python peer needs a generous FWT.
ATS = bytes.fromhex("057880A002")


class IsoDepCard:
    """Answers ISO-DEP frames: RATS, I-blocks (the APDUs), R(NAK) presence checks, DESELECT."""

    def __init__(self, handler: ApduHandler) -> None:
        self.handler = handler
        self.frames: list[str] = []
        handler.power_on()

    def answer(self, frame: bytes) -> bytes:
        """The response frame to one command frame."""
        self.frames.append(frame.hex())
        pcb = frame[0]
        if pcb == 0xE0:  # RATS
            return ATS
        if pcb & 0xE2 == 0x02:  # I-block: block number in bit 0
            return bytes((0x02 | pcb & 1,)) + self.handler.process(frame[1:])
        if pcb & 0xF6 == 0xB2:  # R(NAK): presence check, answered with R(ACK)
            return bytes((0xA2 | pcb & 1,))
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            return frame[:1]
        raise nfc.clf.ProtocolError(f"unexpected frame {frame.hex()}")


class UdpIsoDepCard:
    """An IsoDepCard listening on nfcpy's udp driver in a background thread."""

    def __init__(self, card: IsoDepCard, port: int) -> None:
        self.card = card
        self.port = port
        self.torn = threading.Event()
        self._clf: Any = None
        self._thread = threading.Thread(target=self._run, name="nfc-card", daemon=True)
        self._ready = threading.Event()

    def start(self) -> None:
        """Open the udp device and start listening."""
        self._clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{self.port}")
        self._thread.start()

    def _run(self) -> None:
        target = nfc.clf.LocalTarget("106A", sens_res=SENS_RES, sdd_res=SDD_RES, sel_res=SEL_RES)
        try:
            activated = self._clf.listen(target, 5.0)
            if activated is None:
                return
            command = activated.tt4_cmd
            while command is not None and not self.torn.is_set():
                command = self._clf.exchange(self.card.answer(bytes(command)), 5.0)
        except nfc.clf.CommunicationError:
            pass  # the reader switched its field off (RFOFF), or went quiet

    def stop(self) -> None:
        """Stop answering and close the device."""
        self.torn.set()
        self._thread.join(6.0)
        self._clf.close()


class FakeIsoDepDevice(nfc.clf.device.Device):  # type: ignore[misc]
    """An nfcpy device with a Type 4A card in its field, no socket, no USB."""

    def __init__(self, card: IsoDepCard | None) -> None:  # Device.__init__ refuses to run
        self._vendor_name = "Fake"
        self._device_name = "ISO-DEP field"
        self._chipset_name = "none"
        self._path = "fake"
        self.card = card
        self.error: Exception | None = None  # raised by the next exchanges

    def sense_tta(self, target: Any) -> Any:
        """A Type 4A card answers when one is in the field."""
        if self.card is None:
            return None
        return nfc.clf.RemoteTarget("106A", sens_res=SENS_RES, sdd_res=SDD_RES, sel_res=SEL_RES)

    def sense_ttb(self, target: Any) -> None:
        """No Type B card."""

    def sense_ttf(self, target: Any) -> None:
        """No FeliCa card."""

    def sense_dep(self, target: Any) -> None:
        """No NFC-DEP peer."""

    def send_cmd_recv_rsp(self, target: Any, data: bytearray, timeout: float) -> bytearray:
        """The card's answer; a timeout once the card has left the field."""
        if self.error is not None:
            raise self.error
        if self.card is None:
            raise nfc.clf.TimeoutError("no card")
        return bytearray(self.card.answer(bytes(data)))

    def get_max_send_data_size(self, target: Any) -> int:
        """Frame size limit."""
        return 256

    def get_max_recv_data_size(self, target: Any) -> int:
        """Frame size limit."""
        return 256

    def mute(self) -> None:
        """Field off: nothing to do."""

    def close(self) -> None:
        """Nothing to release."""

    def turn_on_led_and_buzzer(self) -> None:
        """No LED."""

    def turn_off_led_and_buzzer(self) -> None:
        """No LED."""


def fake_frontend(device: FakeIsoDepDevice) -> Any:
    """A ContactlessFrontend driving the fake device."""
    clf = nfc.ContactlessFrontend()
    clf.device = device
    return clf
