# SPDX-License-Identifier: Apache-2.0
"""An adversarial emulated card: a real CardEmulator behind layers that lie on purpose.

``HostileCard`` is an ApduHandler. Each command goes down a chain of ``Layer`` callables, the
last of which is the real card emulator; a layer may change the answer (flip, truncate, extend,
replace the status word), answer without asking the card (a replayed Close), sleep, or send the
command to another card altogether (a card whose serial changes mid-tap). The wrapped emulator
stays the source of truth: whatever the validator believes, its committed state says what was
really paid.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from readers.base import PassThroughHandler

Forward = Callable[[bytes], bytes]
# One layer: (APDU index from 1, command, the layer below) -> the answer sent to the reader.
Layer = Callable[[int, bytes, Forward], bytes]


class HostileCard(PassThroughHandler[CardEmulator]):
    """A card emulator wrapped in lying layers (outermost first); an ApduHandler."""

    def __init__(self, card: CardEmulator, *layers: Layer) -> None:
        super().__init__(card)
        self.layers = list(layers)
        self.index = 0  # APDUs since power-on

    def __repr__(self) -> str:
        return f"HostileCard({self.inner!r}, layers={len(self.layers)})"

    def power_on(self) -> bytes:
        """Power the real card up; the APDU count restarts."""
        self.index = 0
        return super().power_on()

    def process(self, apdu: bytes) -> bytes:
        """Send the command down the layers to the real card."""
        self.index += 1
        index = self.index
        card = super().process

        def down(depth: int) -> Forward:
            if depth == len(self.layers):
                return card
            layer = self.layers[depth]
            return lambda command: layer(index, command, down(depth + 1))

        return down(0)(apdu)


def ins(command: bytes) -> int:
    """The instruction byte (-1 for a command too short to have one)."""
    return command[1] if len(command) > 1 else -1


class Mutation(Enum):
    """How one answer is damaged."""

    FLIP = "flip"  # 1-3 random bytes of the answer XORed with a random non-zero value
    TRUNCATE = "truncate"  # data bytes dropped (the status word kept)
    EXTEND = "extend"  # random data bytes appended before the status word
    SW = "sw"  # the status word replaced by a random or adversarial one
    EMPTY = "empty"  # the data dropped, the status word kept
    GARBAGE = "garbage"  # random bytes of a random length (0-300), status word included


# Status words a lying card likes: success-like, warnings, 61xx/6Cxx chaining, errors.
ADVERSARIAL_SW = (
    0x9000, 0x6200, 0x6283, 0x6100, 0x61FF, 0x6C00, 0x6C1D, 0x6400, 0x6700, 0x6982,
    0x6985, 0x6988, 0x6A82, 0x6A83, 0x6B00, 0x6D00, 0x6E00, 0x6F00, 0x0000, 0xFFFF,
)  # fmt: skip


def mutate(raw: bytes, how: Mutation, rnd: random.Random) -> bytes:
    """``raw`` damaged in one way (deterministic for a given random state)."""
    data, sw = raw[:-2], raw[-2:]
    if how is Mutation.FLIP:
        out = bytearray(raw)
        if out:
            for _ in range(rnd.randint(1, 3)):
                out[rnd.randrange(len(out))] ^= rnd.randint(1, 255)
        return bytes(out)
    if how is Mutation.TRUNCATE:
        return data[: rnd.randrange(len(data))] + sw if data else raw[: rnd.randint(0, 1)]
    if how is Mutation.EXTEND:
        return data + rnd.randbytes(rnd.choice((1, 2, 8, 29, 200))) + sw
    if how is Mutation.SW:
        new_sw = rnd.choice(ADVERSARIAL_SW) if rnd.random() < 0.7 else rnd.getrandbits(16)
        return data + new_sw.to_bytes(2, "big")
    if how is Mutation.EMPTY:
        return sw
    return rnd.randbytes(rnd.randint(0, 300))


@dataclass
class MutateAt:
    """Damage the answer to APDU number ``index`` (the card did process the command)."""

    index: int
    how: Mutation
    rnd: random.Random

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        raw = forward(command)
        return mutate(raw, self.how, self.rnd) if index == self.index else raw


@dataclass
class RewriteAnswers:
    """Rewrite the answers to one instruction with ``rewrite``, from its ``first``-th
    occurrence to its ``last``-th (every one from ``first`` on when ``last`` is None)."""

    instruction: int
    rewrite: Callable[[bytes], bytes]
    first: int = 1
    last: int | None = None
    seen: int = 0

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        raw = forward(command)
        if ins(command) != self.instruction:
            return raw
        self.seen += 1
        if self.seen < self.first or (self.last is not None and self.seen > self.last):
            return raw
        return self.rewrite(raw)


def fci_startup_rewrite(offset: int, value: int) -> Callable[[bytes], bytes]:
    """An FCI rewrite that sets byte ``offset`` of the startup information (tag 53)."""

    def rewrite(raw: bytes) -> bytes:
        at = raw.find(b"\x53\x07")
        if at < 0:
            return raw
        out = bytearray(raw)
        out[at + 2 + offset] = value
        return bytes(out)

    return rewrite


def fci_serial_rewrite(serial: bytes) -> Callable[[bytes], bytes]:
    """An FCI rewrite that replaces the serial number (tag C7) by ``serial``."""

    def rewrite(raw: bytes) -> bytes:
        at = raw.find(b"\xc7\x08")
        if at < 0:
            return raw
        return raw[: at + 2] + serial + raw[at + 10 :]

    return rewrite


@dataclass
class ReplayClose:
    """Answer Close Secure Session with a Close answer recorded in an earlier session.

    ``deliver``: the real card gets the Close too (and commits, its own answer thrown away);
    otherwise the card never sees it and rolls back, as a forger's card would.
    """

    recorded: bytes
    deliver: bool

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        if ins(command) != CardIns.CLOSE_SECURE_SESSION:
            return forward(command)
        if self.deliver:
            forward(command)
        return self.recorded


@dataclass
class RecordClose:
    """Keep the real card's Close answers (to replay them later); changes nothing."""

    answers: list[bytes] = field(default_factory=list)

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        raw = forward(command)
        if ins(command) == CardIns.CLOSE_SECURE_SESSION:
            self.answers.append(raw)
        return raw


@dataclass
class Slow:
    """Sleep ``seconds`` before answering APDU ``at`` (every APDU when ``at`` is None)."""

    seconds: float
    at: int | None = None

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        if self.at is None or self.at == index:
            time.sleep(self.seconds)
        return forward(command)


@dataclass
class SwapAfterSelect:
    """From the ``selects``-th Select Application on, another real card answers everything.

    With ``selects=2`` the first attempt talks to the first card and a rerun (a second select in
    the same tap) to ``other``; with ``at_index`` the swap happens at that APDU, mid-session,
    and with ``back`` the first card answers again from the next select on.
    """

    other: CardEmulator
    selects: int = 2
    at_index: int | None = None
    back: bool = False
    seen: int = 0
    swapped: bool = False
    returned: bool = False

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        if ins(command) == CardIns.SELECT:
            self.seen += 1
            if self.swapped and self.back:
                self.returned = True
        if not self.swapped and (
            self.seen >= self.selects or (self.at_index is not None and index >= self.at_index)
        ):
            self.swapped = True
            self.other.power_on()
        if self.swapped and not self.returned:
            return self.other.process(command)
        return forward(command)


@dataclass
class FailOnce:
    """Damage the answer to the first command with instruction ``instruction`` (a rerun)."""

    instruction: int
    done: bool = False

    def __call__(self, index: int, command: bytes, forward: Forward) -> bytes:
        raw = forward(command)
        if not self.done and ins(command) == self.instruction:
            self.done = True
            return raw[:-2] + b"\x6f\x00"  # 6F00: no precise diagnosis; the engine reruns
        return raw
