# SPDX-License-Identifier: Apache-2.0
"""NfcReader on a fake nfcpy device: nfcpy's real Type 4A reader code, no socket, no USB."""

from __future__ import annotations

from pathlib import Path

import pytest

nfc = pytest.importorskip("nfc", reason="nfcpy is not installed (the nfc extra)")

from nfc_isodep import FakeIsoDepDevice, IsoDepCard, fake_frontend  # noqa: E402

from calypso.emulator.dispatch import CardEmulator  # noqa: E402
from readers.base import CardRemovedError, ReaderError  # noqa: E402
from readers.nfc import NfcReader, contactless_atr, map_error  # noqa: E402
from readers.spec import open_reader  # noqa: E402

CARDS = Path(__file__).resolve().parents[2] / "config" / "cards"
SELECT = bytes.fromhex("00A4040009315449432E4943413100")


def reader_with_card() -> tuple[NfcReader, FakeIsoDepDevice]:
    """An NfcReader whose fake device holds a multi-trip card."""
    card = IsoDepCard(CardEmulator.from_profile(CARDS / "multi_trip.yaml"))
    device = FakeIsoDepDevice(card)
    return NfcReader("fake", clf=fake_frontend(device)), device


class TestNfcReader:
    """Activation, APDUs, presence and removal through nfcpy's Type4ATag."""

    def test_select_goes_through_iso_dep(self):
        """A SELECT is carried in an I-block after RATS, and its answer comes back whole."""
        reader, device = reader_with_card()
        connection = reader.wait_for_card(1.0)
        assert connection is not None
        assert connection.atr == contactless_atr(b"")
        response = connection.transmit(SELECT)
        assert response.ok and response.data[:2] == b"\x6f\x23"
        assert device.card is not None
        assert device.card.frames == ["e080", "02" + SELECT.hex()]

    def test_status_words_do_not_raise(self):
        """An unknown instruction comes back as a status word, not an exception."""
        reader, _ = reader_with_card()
        connection = reader.wait_for_card(1.0)
        assert connection is not None
        assert connection.transmit(bytes.fromhex("00FF000000")).sw == 0x6D00

    def test_no_card_times_out(self):
        """An empty field gives None after the timeout."""
        reader = NfcReader("fake", clf=fake_frontend(FakeIsoDepDevice(None)))
        assert reader.wait_for_card(0.3) is None

    def test_removal_is_detected(self):
        """The presence check sees the card leave; a transmit then is CardRemovedError."""
        reader, device = reader_with_card()
        connection = reader.wait_for_card(1.0)
        assert connection is not None
        assert not reader.wait_for_removal(0.2)
        device.card = None
        assert reader.wait_for_removal(1.0)
        with pytest.raises(CardRemovedError):
            connection.transmit(SELECT)

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (nfc.clf.BrokenLinkError("gone"), CardRemovedError),
            (nfc.clf.TimeoutError("mute"), CardRemovedError),
            (nfc.clf.TransmissionError("crc"), CardRemovedError),
            (nfc.clf.ProtocolError("bad frame"), ReaderError),
            (OSError(19, "No such device"), ReaderError),
        ],
    )
    def test_link_errors_are_mapped(self, error: Exception, expected: type[Exception]):
        """Lost links and timeouts are a removed card; anything else is a reader error."""
        reader, device = reader_with_card()
        connection = reader.wait_for_card(1.0)
        assert connection is not None
        device.error = error
        with pytest.raises(expected) as caught:
            connection.transmit(SELECT)
        assert type(caught.value) is expected or expected is ReaderError

    def test_map_error_directly(self):
        """nfcpy's exception classes map to ours without a device."""
        assert isinstance(map_error(nfc.clf.BrokenLinkError(), "x"), CardRemovedError)
        protocol = nfc.tag.tt4.Type4TagCommandError(nfc.tag.PROTOCOL_ERROR)
        mapped = map_error(protocol, "x")
        assert isinstance(mapped, ReaderError) and not isinstance(mapped, CardRemovedError)

    def test_missing_device_is_a_reader_error(self):
        """Opening a device that is not there is ReaderError, not OSError."""
        with pytest.raises(ReaderError):
            NfcReader("usb:ffff:ffff").open()


class TestContactlessAtr:
    """The PC/SC part 3 pseudo-ATR."""

    def test_known_atr(self):
        """Eight historical bytes give 3B 88 80 01 ... with the right TCK."""
        atr = contactless_atr(bytes.fromhex("0000000033818100"))
        assert atr.hex().upper() == "3B88800100000000338181003A"


class TestOpenReader:
    """Reader specifications."""

    def test_specs(self):
        """pcsc: and nfc: specs build readers without touching any device."""
        assert open_reader("pcsc:Gemalto|ACS").name == "pcsc:Gemalto|ACS"
        assert open_reader("nfc:usb:072f:2200").name == "nfc:usb:072f:2200"

    @pytest.mark.parametrize("spec", ["emulated", "pcsc:", "bluetooth:x", "pcsc:([", "usb"])
    def test_bad_specs(self, spec: str):
        """Anything else is a ValueError that says what is expected."""
        with pytest.raises(ValueError, match="pcsc|reader"):
            open_reader(spec)
