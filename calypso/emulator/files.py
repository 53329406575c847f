# SPDX-License-Identifier: Apache-2.0
"""The card emulator's file model: EFs from the profile, their cells, pure record operations.

Every record is one non-volatile cell named ``EF<sfi>.<record>`` (a binary file is one cell);
the card's other persistent data are cells too (transaction counter, ratification flag, DF
status, PIN, key slots, stored value). See ``nv`` for how a set of cells changes
atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from calypso.commands.files import EfType
from calypso.commands.sv import SV_DEBIT_LOG_SFI, SV_LOAD_LOG_SFI
from calypso.emulator.profile import CardProfile, FileAccess, FileProfile, FileType

CELL_TC = "TC"  # transaction counter, 3 bytes
CELL_RATIFIED = "RATIFIED"  # 01 ratified, 00 not ratified
CELL_DF = "DF"  # DF status: bit 0 invalidated
CELL_PIN = "PIN"  # 4 bytes (empty when the card has no PIN)
CELL_PIN_TRIES = "PIN_TRIES"  # attempts left 0..3
CELL_SV = "SV"  # balance(3) SV TNum(2) signature lo(6)
KEY_CELLS = ("KEY1", "KEY2", "KEY3")  # empty = the profile key; else KIF KVC key(16)

EF_TYPE_CODES = {
    FileType.BINARY: EfType.BINARY,
    FileType.LINEAR: EfType.LINEAR,
    FileType.CYCLIC: EfType.CYCLIC,
    FileType.COUNTERS: EfType.COUNTERS,
    FileType.SIMULATED_COUNTER: EfType.SIMULATED_COUNTERS,
}


@dataclass(frozen=True, slots=True)
class CardImage:
    """The card's persistent state: records per SFI, transaction counter, ratification, and
    every other cell (PIN, keys, stored value: never shown in a repr)."""

    files: Mapping[int, tuple[bytes, ...]]
    transaction_counter: int
    ratified: bool
    cells: Mapping[str, bytes] = field(default_factory=dict, repr=False)


def record_cell(sfi: int, record: int) -> str:
    """The cell name of a record (record numbers from 1)."""
    return f"EF{sfi:02X}.{record}"


class ElementaryFile:
    """One EF of the profile: identity, structure and access conditions."""

    def __init__(self, profile: FileProfile) -> None:
        self.profile = profile

    @property
    def sfi(self) -> int:
        """Short file identifier."""
        return self.profile.sfi

    @property
    def lid(self) -> int:
        """Long file identifier."""
        return self.profile.lid

    @property
    def type(self) -> FileType:
        """Binary, linear, cyclic, counters or simulated counter."""
        return self.profile.type

    @property
    def access(self) -> FileAccess:
        """Access conditions per operation."""
        return self.profile.access

    @property
    def record_size(self) -> int:
        """Bytes per record (a binary file: its size)."""
        return self.profile.cell_size

    @property
    def record_count(self) -> int:
        """Number of records (1 for a binary file)."""
        return self.profile.record_count

    def header(self, *, legacy: bool) -> bytes:
        """Tag 85 proprietary information, 23 bytes (calypso-protocol 1.10).

        Access-condition bytes use this emulator's own codes (00 always, 01..03 session key,
        04 PIN, 0F never): the real encoding is not public.
        """
        codes = {"always": 0, "session1": 1, "session2": 2, "session3": 3, "pin": 4, "never": 15}
        access = self.access
        conditions = bytes(
            codes[c.value] for c in (access.read, access.update, access.write, access.append)
        )
        if self.type is FileType.BINARY:
            shape = self.record_size.to_bytes(2, "big")
        else:
            shape = bytes((self.record_size, self.record_count))
        reference = b"\x00\x00"
        view = self.profile.counter_view
        if view is not None:
            reference = bytes((view.sfi, view.counter))  # e.g. 19 02 (calypso-data-model 1.4)
        body = (
            bytes((self.sfi, 0x04, EF_TYPE_CODES[self.type]))
            + shape
            + conditions
            + b"\x01\x02\x03\x03"
            + b"\x00"
            + reference
        )
        lid = self.lid.to_bytes(2, "big")
        body = body.ljust(20 if legacy else 21, b"\x00") + lid
        return body.ljust(23, b"\x00")


def sv_log_files() -> list[FileProfile]:
    """The SV log files a stored-value card has: SFI 14h (1 record) and 15h (3 records)."""
    return [
        FileProfile.model_validate(
            {"name": "sv_load_log", "sfi": SV_LOAD_LOG_SFI, "lid": "1014", "type": "cyclic"}
        ),
        FileProfile.model_validate(
            {
                "name": "sv_debit_log",
                "sfi": SV_DEBIT_LOG_SFI,
                "lid": "1015",
                "type": "cyclic",
                "records": 3,
            }
        ),
    ]


def master_files(profile: CardProfile) -> list[FileProfile]:
    """The MF-level EFs: the profile's, else ICC 0002h (serial at 12..19) and ID 0003h.

    Real cards have both (calypso-data-model 1.3 C); readers such as cardpeek and Metrodroid
    read them. Both are read always and never written here.
    """
    if profile.mf_files is not None:
        return list(profile.mf_files)
    icc = bytes(12) + profile.serial + bytes(9)
    return [
        FileProfile.model_validate(
            {"name": "icc", "sfi": 0x02, "lid": "0002", "type": "linear", "content": [icc]}
        ),
        FileProfile.model_validate({"name": "id", "sfi": 0x03, "lid": "0003", "type": "linear"}),
    ]


class FileStore:
    """The EFs of a card by SFI and LID."""

    def __init__(self, files: Iterable[FileProfile]) -> None:
        self._files = {profile.sfi: ElementaryFile(profile) for profile in files}

    def get(self, sfi: int) -> ElementaryFile | None:
        """The EF with this SFI, or None."""
        return self._files.get(sfi)

    def by_lid(self, lid: int) -> ElementaryFile | None:
        """The EF with this LID, or None."""
        return next((ef for ef in self._files.values() if ef.lid == lid), None)

    def all(self) -> list[ElementaryFile]:
        """Every EF in SFI order."""
        return [self._files[sfi] for sfi in sorted(self._files)]

    def next_after(self, sfi: int | None) -> ElementaryFile | None:
        """The EF after ``sfi`` in SFI order (the first one for None)."""
        return next((ef for ef in self.all() if sfi is None or ef.sfi > sfi), None)


def initial_cells(profile: CardProfile, files: FileStore) -> dict[str, bytes]:
    """Every non-volatile cell at personalisation."""
    cells: dict[str, bytes] = {}
    for ef in files.all():
        for number, record in enumerate(ef.profile.initial_records(), start=1):
            cells[record_cell(ef.sfi, number)] = record
    cells[CELL_TC] = profile.transaction_counter.to_bytes(3, "big")
    cells[CELL_RATIFIED] = b"\x01" if profile.ratified else b"\x00"
    cells[CELL_DF] = b"\x01" if profile.invalidated else b"\x00"
    pin = profile.pin
    cells[CELL_PIN] = pin.value.get_secret_value() if pin is not None else b""
    cells[CELL_PIN_TRIES] = bytes((pin.attempts if pin is not None else 0,))
    for name in KEY_CELLS:
        cells[name] = b""
    sv = profile.sv
    if sv is not None:
        cells[CELL_SV] = (
            sv.balance.to_bytes(3, "big", signed=True)
            + sv.transaction_number.to_bytes(2, "big")
            + sv.signature_lo.ljust(6, b"\x00")
        )
        cells[record_cell(SV_LOAD_LOG_SFI, 1)] = sv.load_log.ljust(29, b"\x00")
        cells[record_cell(SV_DEBIT_LOG_SFI, 1)] = sv.debit_log.ljust(29, b"\x00")
    return cells


# --- record operations (pure) ----------------------------------------------------------------


def with_update(records: Sequence[bytes], index: int, data: bytes) -> list[bytes]:
    """Update Record: data replaces the first bytes of record index (calypso-protocol 1.5)."""
    out = list(records)
    out[index] = data + out[index][len(data) :]
    return out


def with_write(record: bytes, offset: int, data: bytes) -> bytes:
    """Write Record / Write Binary: data OR-ed into the bytes at offset (calypso-protocol 1.5)."""
    middle = bytes(a | b for a, b in zip(record[offset : offset + len(data)], data, strict=True))
    return record[:offset] + middle + record[offset + len(data) :]


def with_append(records: Sequence[bytes], data: bytes, record_size: int) -> list[bytes]:
    """Append Record: the new record becomes #1 and the oldest is dropped (calypso-protocol 1.6)."""
    return [data.ljust(record_size, b"\x00"), *records[:-1]]


def counter_value(record: bytes, number: int) -> int:
    """Counter n is bytes 3(n-1)..3n-1 of record 1, big-endian (calypso-protocol 1.7)."""
    return int.from_bytes(record[3 * (number - 1) : 3 * number], "big")


def with_counter(record: bytes, number: int, value: int) -> bytes:
    """Record 1 with counter n set to value."""
    start = 3 * (number - 1)
    return record[:start] + value.to_bytes(3, "big") + record[start + 3 :]
