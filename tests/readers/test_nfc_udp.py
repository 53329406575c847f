# SPDX-License-Identifier: Apache-2.0
"""A whole validation through nfcpy's Type 4A reader code over its udp driver."""

from __future__ import annotations

import datetime as dt
import random
import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nfc", reason="nfcpy is not installed (the nfc extra)")

from nfc_isodep import IsoDepCard, UdpIsoDepCard  # noqa: E402

from calypso.emulator.dispatch import CardEmulator  # noqa: E402
from calypso.layouts.demo import SFI_COUNTERS  # noqa: E402
from readers.nfc import NfcReader  # noqa: E402
from validator.engine.attempt import validate  # noqa: E402
from validator.engine.fares.decide import TapContext  # noqa: E402
from validator.engine.outcome import Outcome  # noqa: E402

CARDS = Path(__file__).resolve().parents[2] / "config" / "cards"
DEMO_AID = bytes.fromhex("315449432E49434131")


def free_udp_port() -> int:
    """A UDP port nobody uses on localhost."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestValidationOverNfcpy:
    """The validation procedure through nfcpy's own ISO-DEP initiator."""

    def test_multi_trip_granted_over_udp(self, station: Any, morning: dt.datetime):
        """A multi-trip card behind the udp driver is granted and debited once."""
        emulator = CardEmulator.from_profile(
            CARDS / "multi_trip.yaml", rng=random.Random(7).randbytes
        )
        start = emulator.counter(SFI_COUNTERS, 1)
        port = free_udp_port()
        card = UdpIsoDepCard(IsoDepCard(emulator), port)
        card.start()
        reader = NfcReader(f"udp:127.0.0.1:{port}")
        try:
            connection = reader.wait_for_card(5.0)
            assert connection is not None
            result = validate(
                connection,
                station.sam,
                station.rules,
                TapContext(morning, 101),
                aids=[DEMO_AID],
            )
        finally:
            reader.close()
            card.stop()
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.mac_verified
        assert emulator.counter(SFI_COUNTERS, 1) == start - 1
        assert card.card.frames[0] == "e080"
