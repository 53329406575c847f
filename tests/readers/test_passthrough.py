# SPDX-License-Identifier: Apache-2.0
"""PassThroughHandler: the one base of the ApduHandler wrappers that forward to an inner one."""

from __future__ import annotations

from readers.base import ApduHandler, PassThroughHandler


class _Chip:
    """A minimal ApduHandler that remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def power_on(self) -> bytes:
        """Answer an ATR."""
        self.calls.append("on")
        return b"\x3b\x00"

    def power_off(self) -> None:
        """Note the power cut."""
        self.calls.append("off")

    def process(self, apdu: bytes) -> bytes:
        """Echo the command, then 9000."""
        self.calls.append(apdu.hex())
        return apdu + b"\x90\x00"


class _Upper(PassThroughHandler[_Chip]):
    """A wrapper that overrides only process."""

    def process(self, apdu: bytes) -> bytes:
        """Forward, then rewrite the status word."""
        return super().process(apdu)[:-2] + b"\x6a\x82"


def test_pass_through_forwards_power_and_commands() -> None:
    """Power on, commands and power off reach the inner handler unchanged."""
    chip = _Chip()
    handler: ApduHandler = PassThroughHandler(chip)
    assert handler.power_on() == b"\x3b\x00"
    assert handler.process(b"\x00\xa4") == b"\x00\xa4\x90\x00"
    handler.power_off()
    assert chip.calls == ["on", "00a4", "off"]


def test_a_subclass_overrides_only_its_hook() -> None:
    """A subclass changes what it overrides; power still goes straight through to ``inner``."""
    chip = _Chip()
    handler = _Upper(chip)
    assert handler.inner is chip
    assert handler.power_on() == b"\x3b\x00"
    assert handler.process(b"\x00\xb2") == b"\x00\xb2\x6a\x82"
