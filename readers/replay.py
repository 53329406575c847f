# SPDX-License-Identifier: Apache-2.0
"""A connection that plays back a recorded exchange list and checks every command sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from readers.apdu import ResponseApdu
from readers.base import ReaderError


class ReplayMismatchError(ReaderError):
    """The command sent is not the one the recording expects at this point."""


class ReplayConnection:
    """Answers each command with the recorded response, if the command is the recorded one."""

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]], *, atr: bytes = b"") -> None:
        self._pairs = list(pairs)
        self._position = 0
        self._atr = atr
        self.sent: list[bytes] = []

    @property
    def atr(self) -> bytes:
        """The recorded ATR."""
        return self._atr

    @property
    def exhausted(self) -> bool:
        """Whether every recorded exchange was played."""
        return self._position == len(self._pairs)

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Return the recorded answer, or raise ReplayMismatchError on an unexpected command."""
        self.sent.append(apdu)
        if self._position >= len(self._pairs):
            raise ReplayMismatchError(f"unexpected extra command {apdu.hex().upper()}")
        expected, response = self._pairs[self._position]
        if apdu != expected:
            raise ReplayMismatchError(
                f"command #{self._position + 1}: sent {apdu.hex().upper()}, "
                f"recording has {expected.hex().upper()}"
            )
        self._position += 1
        return ResponseApdu.from_bytes(response)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
