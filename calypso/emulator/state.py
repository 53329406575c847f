# SPDX-License-Identifier: Apache-2.0
"""The card emulator's state and the checks every command shares: files, access conditions,
the session modification buffer, the session overlay of buffered writes, key slots.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from calypso.constants import ProductType, session_buffer_size
from calypso.crypto import SessionMac
from calypso.emulator.files import (
    CELL_DF,
    CELL_PIN_TRIES,
    KEY_CELLS,
    ElementaryFile,
    FileStore,
    initial_cells,
    record_cell,
    sv_log_files,
)
from calypso.emulator.nv import NonVolatileMemory
from calypso.emulator.profile import AccessCondition, CardProfile
from calypso.pki.session import SignedStream
from readers.apdu import SW, CommandApdu

Rng = Callable[[int], bytes]
LEGACY = (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2)


class StatusError(Exception):
    """Internal: stop the command with this status word and no data."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass(slots=True)
class Session:
    """A secure session in progress (volatile): key, MAC, buffer, buffered writes.

    A PKI session has no MAC but the signed stream its Close signs (calypso.emulator.pki).
    """

    key_index: int
    mac: SessionMac | None
    extended: bool
    overlay: dict[str, bytes] = field(default_factory=dict, repr=False)
    buffer_used: int = 0
    generic_commands: int = 0
    counter_commands: int = 0
    encrypting: bool = False
    sv_done: bool = False
    postponed: list[bytes] = field(default_factory=list)
    stream: SignedStream | None = None


@dataclass(frozen=True, slots=True)
class SvContext:
    """The last SV Get: what the SV operation that follows it is checked against (CSIM1 3.8)."""

    reload: bool
    extended: bool
    header: bytes
    response: bytes
    kvc: int


class CardCore:
    """State and shared checks of an emulated card; command handlers work on it."""

    def __init__(
        self, profile: CardProfile, rng: Rng | None = None, *, image_path: Path | str | None = None
    ) -> None:
        self.profile = profile
        self.product = profile.product_type
        self.rng: Rng = rng if rng is not None else os.urandom
        declared = {f.sfi for f in profile.files}
        extra = [f for f in sv_log_files() if f.sfi not in declared] if profile.sv else []
        self.files = FileStore([*profile.files, *extra])
        self.image_path = Path(image_path) if image_path is not None else None
        self.nv = NonVolatileMemory(
            initial_cells(profile, self.files), profile.serial, self.image_path
        )
        self.session: Session | None = None
        self.current_sfi: int | None = None
        self.pin_verified = False
        self.challenge: bytes | None = None
        self.ratification_pending = False
        self.sv_context: SvContext | None = None
        self.pre_open: tuple[int, bytes] | None = None  # (key index, random) of a pre-open
        self.needs_recovery = False

    # --- cells ------------------------------------------------------------------------------

    def cell(self, name: str) -> bytes:
        """A cell as the card sees it now: the session's buffered writes included."""
        if self.session is not None and name in self.session.overlay:
            return self.session.overlay[name]
        return self.nv.cells[name]

    def write(self, changes: Mapping[str, bytes]) -> None:
        """Buffer the changes in the session, or commit them atomically outside one."""
        if self.session is not None:
            self.session.overlay.update(changes)
        else:
            self.nv.commit(changes)

    def records(self, ef: ElementaryFile) -> list[bytes]:
        """The records of an EF as the card sees them now."""
        return [self.cell(record_cell(ef.sfi, n)) for n in range(1, ef.record_count + 1)]

    def record_changes(self, ef: ElementaryFile, records: list[bytes]) -> dict[str, bytes]:
        """The cells to write for new records of an EF."""
        return {record_cell(ef.sfi, n): r for n, r in enumerate(records, start=1)}

    @property
    def invalidated(self) -> bool:
        """DF status bit 0 as the card sees it now."""
        return bool(self.cell(CELL_DF)[0] & 0x01)

    @property
    def pin_attempts(self) -> int:
        """PIN attempts left."""
        return self.nv.cells[CELL_PIN_TRIES][0]

    @property
    def legacy(self) -> bool:
        """Rev1 or Rev2 (CLA 94h, commands counted in the buffer, postponed counters)."""
        return self.product in LEGACY

    @property
    def extended_capable(self) -> bool:
        """Rev3 with the extended-mode bit of the application type."""
        return self.profile.extended

    @property
    def payload_capacity(self) -> int:
        """Largest data field: 128 on Rev1/Rev2, 235 on platform 3C version 10, else 250."""
        if self.legacy:
            return 128
        startup = self.profile.startup_info
        return 235 if startup[1] == 0x3C and startup[5] == 0x10 else 250

    # --- keys -------------------------------------------------------------------------------

    def key_slot(self, index: int) -> tuple[int, int, bytes]:
        """(KIF, KVC, card key) of slot 1..3, after any Change Key."""
        changed = self.nv.cells[KEY_CELLS[index - 1]]
        if changed:
            return changed[0], changed[1], changed[2:]
        slot = self.profile.keys.slot(index)
        return slot.kif, slot.kvc, slot.card_key(self.profile.serial)

    # --- files and access -------------------------------------------------------------------

    def file(self, sfi: int) -> ElementaryFile:
        """Resolve an SFI (0 = current EF) and make it the current EF."""
        if sfi == 0:
            if self.current_sfi is None:
                raise StatusError(SW.NO_CURRENT_EF)
            sfi = self.current_sfi
        ef = self.files.get(sfi)
        if ef is None:
            raise StatusError(SW.FILE_NOT_FOUND)
        self.current_sfi = sfi
        return ef

    def key_level(self) -> int | None:
        """The session's key index, or None outside a session."""
        return self.session.key_index if self.session is not None else None

    def check(self, condition: AccessCondition, key_level: int | None = None) -> None:
        """6985 for a never condition, 6982 for any other unmet condition."""
        level = self.key_level() if key_level is None else key_level
        if condition.allows(level, pin_verified=self.pin_verified):
            return
        if condition is AccessCondition.NEVER:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        raise StatusError(SW.SECURITY_NOT_SATISFIED)

    def check_write(
        self, condition: AccessCondition, command: CommandApdu, *, counter: bool = False
    ) -> None:
        """Access condition, DF status, then the session modification buffer (section 2.2)."""
        self.check(condition)
        if self.invalidated:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        self.consume_buffer(command, counter=counter)

    def consume_buffer(self, command: CommandApdu, *, counter: bool = False) -> None:
        """Account one modifying command: bytes on Rev3/Light, commands on Rev1/Rev2/Basic."""
        session = self.session
        if session is None:
            return
        if self.product in (ProductType.PRIME_REVISION_3, ProductType.LIGHT):
            # Cost in bytes: Lc + 6 for case 1/3, Lc + 7 for case 4 (section 2.2).
            cost = len(command.data) + 6 + (1 if command.le is not None and command.data else 0)
            if session.buffer_used + cost > session_buffer_size(self.profile.startup_info[0]):
                raise StatusError(SW.SESSION_BUFFER_OVERFLOW)
            session.buffer_used += cost
            return
        if self.product is ProductType.BASIC:
            # 4 modifications: 3 generic + 1 counter (calypso-data-model 1.2).
            if counter and session.counter_commands >= 1:
                raise StatusError(SW.SESSION_BUFFER_OVERFLOW)
            if not counter and session.generic_commands >= 3:
                raise StatusError(SW.SESSION_BUFFER_OVERFLOW)
        else:
            limit = 6 if self.product is ProductType.PRIME_REVISION_2 else 3
            if session.generic_commands + session.counter_commands >= limit:
                raise StatusError(SW.SESSION_BUFFER_OVERFLOW)
        if counter:
            session.counter_commands += 1
        else:
            session.generic_commands += 1

    def lose_volatile_state(self) -> None:
        """Reset, deselection or power loss: the session and its buffered writes are gone."""
        self.session = None
        self.ratification_pending = False
        self.current_sfi = None
        self.pin_verified = False
        self.challenge = None
        self.sv_context = None
        self.pre_open = None
