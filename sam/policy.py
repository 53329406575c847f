# SPDX-License-Identifier: Apache-2.0
"""Which card keys a validator accepts for a session or an SV operation.

Keyple's addAuthorizedSessionKey / addAuthorizedSvKey (csim1.md 2.2): a set of (KIF, KVC); an
empty set accepts every key. Simulation KVCs (F0h/F1h, csim1.md 3.2) are refused unless the
settings enable simulation, whatever the set says, so that a simulated card can never pass a
production validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sam.base import SamError
from sam.keys import SIMULATION_KVCS

_REFERENCE = re.compile(r"^\s*([0-9A-Fa-f]{2})\s*[/:\s]?\s*([0-9A-Fa-f]{2})\s*$")


class UnauthorizedKeyError(SamError):
    """The card opened its session (or SV operation) with a key this validator does not accept."""

    def __init__(self, kif: int, kvc: int, reason: str) -> None:
        self.kif = kif
        self.kvc = kvc
        self.reason = reason
        super().__init__(f"card key KIF {kif:02X} KVC {kvc:02X} refused: {reason}")


def parse_key_reference(text: str) -> tuple[int, int]:
    """Read 'KIF/KVC' as hex: '30/79', '30:79', '30 79' or '3079' give (0x30, 0x79)."""
    match = _REFERENCE.match(text)
    if match is None:
        raise ValueError(f"not a KIF/KVC pair such as 30/79: {text!r}")
    return int(match.group(1), 16), int(match.group(2), 16)


@dataclass(frozen=True, slots=True)
class AuthorizedKeys:
    """A set of accepted (KIF, KVC) pairs ("empty = all") and the simulation switch."""

    keys: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    allow_simulation: bool = False

    @classmethod
    def parse(cls, references: Iterable[str], *, allow_simulation: bool = False) -> AuthorizedKeys:
        """Build the policy from 'KIF/KVC' texts, as the validator settings hold them."""
        return cls(frozenset(parse_key_reference(r) for r in references), allow_simulation)

    def refusal(self, kif: int, kvc: int) -> str | None:
        """Why this key is refused, or None if it is accepted."""
        if kvc in SIMULATION_KVCS and not self.allow_simulation:
            return (
                f"KVC {kvc:02X} is reserved for CSIM1 simulation keys and simulation is not "
                "enabled (set simulation: true in the validator settings to accept it)"
            )
        if self.keys and (kif, kvc) not in self.keys:
            return "not among the authorised session keys of the validator settings"
        return None

    def allows(self, kif: int, kvc: int) -> bool:
        """Whether a session (or SV operation) with this key is accepted."""
        return self.refusal(kif, kvc) is None

    def check(self, kif: int, kvc: int) -> None:
        """Raise UnauthorizedKeyError, with a clear reason, unless the key is accepted."""
        reason = self.refusal(kif, kvc)
        if reason is not None:
            raise UnauthorizedKeyError(kif, kvc, reason)
