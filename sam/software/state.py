# SPDX-License-Identifier: Apache-2.0
"""The software SAM's volatile state and the helpers its command handlers share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from calypso import crypto
from readers.apdu import SW, CommandApdu
from sam.keys import KeySet

Rng = Callable[[int], bytes]


class Phase(Enum):
    """Where the digest state machine stands (csim1.md 3.3-3.4)."""

    IDLE = "idle"
    CHALLENGE = "challenge"  # Get Challenge done: only Select Diversifier or Digest Init may follow
    DIGEST = "digest"
    AUTHENTICATING = "authenticating"  # Internal Authenticate done: Digest Authenticate expected
    CLOSED = "closed"  # Digest Close done: only Digest Authenticate may follow


class Refusal(Exception):
    """Internal: answer this status word."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass(eq=False)
class SvTransaction:
    """An SV Prepare waiting for its SV Check: the expected card signature-lo."""

    expected_lo: bytes = field(repr=False)


@dataclass(eq=False)
class SamState:
    """Everything a software SAM remembers; ``reset`` forgets what a power cycle forgets."""

    keys: KeySet = field(repr=False)
    rng: Rng = field(repr=False)
    serial: bytes
    locked: bool = False
    sv_transaction_number: int = 0
    session_count: int = 0
    sn8: bytes | None = None
    challenge: bytes | None = field(default=None, repr=False)
    last_challenge: bytes | None = field(default=None, repr=False)  # for a dynamic Unlock
    card_challenge: bytes | None = field(default=None, repr=False)  # from Give Random
    session: crypto.SessionMac | None = field(default=None, repr=False)
    verification: bool = False
    phase: Phase = Phase.IDLE
    sv: SvTransaction | None = field(default=None, repr=False)

    def reset(self) -> None:
        """Forget the diversifier, challenges, digest and SV transaction (power cycle)."""
        self.sn8 = None
        self.last_challenge = None
        self.card_challenge = None
        self.sv = None
        self.end_session()

    def end_session(self) -> None:
        """Drop the digest in progress and the session challenge."""
        self.session = None
        self.challenge = None
        self.verification = False
        self.phase = Phase.IDLE

    def card_key(self, kif: int, kvc: int) -> bytes:
        """K_card of the selected diversifier (6985 without one; 6A83 for an unknown key)."""
        if self.sn8 is None:
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        work_key = self.keys.lookup(kif, kvc)
        if work_key is None:
            raise Refusal(SW.RECORD_NOT_FOUND)
        return crypto.diversify(work_key.secret(), kif, kvc, self.sn8)

    def digesting(self) -> crypto.SessionMac:
        """The digest in progress, or 6985."""
        if self.phase is not Phase.DIGEST or self.session is None:
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        return self.session

    def take_card_challenge(self) -> bytes:
        """The card challenge of the last Give Random, used once (6985 without one)."""
        challenge, self.card_challenge = self.card_challenge, None
        if challenge is None:
            raise Refusal(SW.CONDITIONS_NOT_SATISFIED)
        return challenge


def params(command: CommandApdu, p1: int, p2: int) -> None:
    """6B00 unless P1 and P2 are the expected ones."""
    if (command.p1, command.p2) != (p1, p2):
        raise Refusal(SW.WRONG_P1_P2)


def case3(command: CommandApdu, *lengths: int) -> bytes:
    """The data of a case-3 command of one of these lengths (6700 otherwise)."""
    if len(command.data) not in lengths or command.le is not None:
        raise Refusal(SW.WRONG_LENGTH)
    return command.data


def sw_bytes(sw: int) -> bytes:
    """A status word as two bytes."""
    return sw.to_bytes(2, "big")
