# SPDX-License-Identifier: Apache-2.0
"""Secret command data (unlock data, PINs) never reaches traces, logs or error messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from readers.channel import TRAFFIC, ApduChannel
from readers.emulated import EmulatedReader
from sam.base import SamError
from sam.client import LegacySam
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam

KEYS = Path(__file__).resolve().parents[2] / "config" / "keys.sim.yaml"
UNLOCK = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")


def locked_sam() -> tuple[LegacySam, ApduChannel]:
    """A locked software SAM behind an APDU channel."""
    software = SoftwareSam(load_keys(KEYS, allow_simulation=True), locked=True, unlock_data=UNLOCK)
    reader = EmulatedReader("sam")
    reader.insert(software)
    channel = ApduChannel(reader.connect(), label="sam")
    return LegacySam(channel), channel


class TestSecretCommands:
    """Unlock data is sent to the SAM but kept out of everything the validator records."""

    def test_unlock_is_redacted(self, caplog: pytest.LogCaptureFixture) -> None:
        """The exchange list and the TRAFFIC log show the Unlock header and zeros only."""
        sam, channel = locked_sam()
        with caplog.at_level(TRAFFIC, logger="readers.channel"):
            sam.unlock(UNLOCK)
        sam.prefetch()  # unlocked: the SAM answers
        unlock = channel.exchanges[0]
        assert unlock.command == bytes.fromhex("8020000010") + bytes(16)
        assert UNLOCK.hex().upper() not in caplog.text.upper()
        assert "8020000010" + "00" * 16 in caplog.text.upper()

    def test_refused_unlock_error_has_no_secret(self) -> None:
        """A wrong unlock value: the SamError names the command without its data."""
        sam, _ = locked_sam()
        wrong = bytes(range(16))
        with pytest.raises(SamError) as caught:
            sam.unlock(wrong)
        text = str(caught.value) + repr(caught.value) + str(caught.value.__cause__)
        assert wrong.hex().upper() not in text.upper()
        assert logging.getLogger("readers.channel")  # the logger exists (used above)
