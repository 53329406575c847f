# SPDX-License-Identifier: Apache-2.0
"""The card's session modifications buffer, accounted by the terminal (calypso-protocol 2.2).

Rev3 and Light count bytes: a modifying APDU costs its length minus the 5-byte header plus 6,
that is Lc + 6 for case 3 and Lc + 7 for case 4 (the Le byte counts). Rev2 counts commands
(6 per session), Basic 4, Rev1 3. The engine checks before sending, so an overflow is raised
by the terminal before the card would refuse with 6400.
"""

from __future__ import annotations

from dataclasses import dataclass

from calypso.commands.select import StartupInfo
from calypso.constants import ProductType


@dataclass
class ModificationBuffer:
    """What is left of the card's buffer in the current session."""

    size: int
    in_bytes: bool
    used: int = 0

    @classmethod
    def for_card(
        cls, startup: StartupInfo, product: ProductType | None = None
    ) -> ModificationBuffer:
        """The buffer a card's startup information announces."""
        product = product or startup.product_type
        if product is ProductType.PRIME_REVISION_1:
            return cls(3, in_bytes=False)
        size = startup.session_buffer_bytes
        if size is not None:
            return cls(size, in_bytes=True)
        commands = startup.session_buffer_commands
        return cls(commands if commands is not None else 6, in_bytes=False)

    def cost(self, apdu: bytes) -> int:
        """What one modifying APDU takes from the buffer."""
        return len(apdu) - 5 + 6 if self.in_bytes else 1

    def fits(self, apdu: bytes) -> bool:
        """Whether the APDU still fits in this session."""
        return self.used + self.cost(apdu) <= self.size

    def take(self, apdu: bytes) -> None:
        """Account one modifying APDU."""
        self.used += self.cost(apdu)

    def reset(self) -> None:
        """A new session starts with an empty buffer."""
        self.used = 0
