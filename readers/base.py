# SPDX-License-Identifier: Apache-2.0
"""The reader seams: connection, reader and APDU-handler protocols, and transport errors.

Also ``PassThroughHandler``, the one base of the ApduHandler wrappers (bench, lab).
"""

from __future__ import annotations

import time
from typing import Generic, Protocol, Self, TypeVar, runtime_checkable

from readers.apdu import ResponseApdu


class ReaderError(Exception):
    """The reader or the link failed (not a status word: the card's answer was not obtained)."""


class CardRemovedError(ReaderError):
    """The card left the field (or lost power) before its answer was received."""


class ReaderTimeoutError(ReaderError):
    """The card or SAM did not answer in time (mute card, hung transmit)."""


class NoCardError(ReaderError):
    """An operation needed a card and none is present."""


@runtime_checkable
class CardConnection(Protocol):
    """A live link to one card or SAM."""

    @property
    def atr(self) -> bytes:
        """Answer to reset (or the reader's synthesised ATR for contactless cards)."""
        ...

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Send one command APDU; never raises on a status word, only on transport failure."""
        ...

    def close(self) -> None:
        """Release the link."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


# However late in a tap, a command gets at least this long to answer (a tap over its budget
# still completes a command that was sent, rather than cutting every one).
MIN_TRANSMIT_S = 0.02


@runtime_checkable
class Deadlined(Protocol):
    """A connection whose transmits can be cut at a tap's deadline (time.monotonic())."""

    def set_deadline(self, deadline: float | None) -> None:
        """From now on, give up on an answer at ``deadline`` (at least MIN_TRANSMIT_S later)."""
        ...


def transmit_timeout(default: float | None, deadline: float | None) -> float | None:
    """How long the next transmit may wait: ``default``, cut at ``deadline``."""
    if deadline is None:
        return default
    remaining = max(MIN_TRANSMIT_S, deadline - time.monotonic())
    return remaining if default is None else min(default, remaining)


class CardReader(Protocol):
    """A reader slot in which cards appear and disappear."""

    name: str

    def wait_for_card(self, timeout: float | None = None) -> CardConnection | None:
        """Block until a card is present and return a connection, or None on timeout."""
        ...

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """Block until the card is gone; False on timeout."""
        ...


class ApduHandler(Protocol):
    """Something that answers APDUs like a card: the card emulator, the software SAM."""

    def power_on(self) -> bytes:
        """Power the chip up and return its ATR."""
        ...

    def power_off(self) -> None:
        """Cut the power: volatile state (open session, buffered writes) is lost."""
        ...

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with a response APDU (data and SW)."""
        ...


HandlerT = TypeVar("HandlerT", bound=ApduHandler)


class PassThroughHandler(Generic[HandlerT]):
    """An ApduHandler in front of ``inner``, forwarding power and commands to it unchanged.

    A wrapper (a timer, a fault, a lying card) overrides ``process`` (or the power calls) and
    reaches the inner handler through ``super()``.
    """

    def __init__(self, inner: HandlerT) -> None:
        self.inner = inner

    def power_on(self) -> bytes:
        """Power the inner handler up and return its ATR."""
        return self.inner.power_on()

    def power_off(self) -> None:
        """Cut the inner handler's power."""
        self.inner.power_off()

    def process(self, apdu: bytes) -> bytes:
        """The inner handler's answer to the command."""
        return self.inner.process(apdu)
