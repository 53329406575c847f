# SPDX-License-Identifier: Apache-2.0
"""The card emulator's EEPROM: record files, the session's copy-on-write overlay, image files.

Writes made inside a secure session go to an overlay that the card's own reads see; a valid Close
commits the overlay in one step, anything else (abort, bad MAC, power loss) drops it
(calypso-protocol 2.7, DESIGN 6).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from calypso.profile import FileProfile, FileType

IMAGE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CardImage:
    """The card's persistent state: committed records per SFI, transaction counter, ratification."""

    files: Mapping[int, tuple[bytes, ...]]
    transaction_counter: int
    ratified: bool


class ElementaryFile:
    """One record EF: its profile (structure, access) and its committed records (index 0 = #1)."""

    def __init__(self, profile: FileProfile) -> None:
        self.profile = profile
        self.records: list[bytes] = profile.initial_records()

    @property
    def sfi(self) -> int:
        """Short file identifier."""
        return self.profile.sfi

    @property
    def type(self) -> FileType:
        """Linear, cyclic or counters."""
        return self.profile.type

    @property
    def record_size(self) -> int:
        """Bytes per record."""
        return self.profile.record_size

    @property
    def record_count(self) -> int:
        """Number of records."""
        return self.profile.records


class FileStore:
    """Committed records of every EF, plus the overlay of writes buffered by an open session."""

    def __init__(self, files: Iterable[FileProfile]) -> None:
        self._files = {profile.sfi: ElementaryFile(profile) for profile in files}
        self._overlay: dict[int, list[bytes]] | None = None

    def get(self, sfi: int) -> ElementaryFile | None:
        """The EF with this SFI, or None."""
        return self._files.get(sfi)

    @property
    def buffering(self) -> bool:
        """Whether writes currently go to a session overlay."""
        return self._overlay is not None

    def records(self, sfi: int) -> list[bytes]:
        """The records as the card sees them now: the session's writes included (a copy)."""
        if self._overlay is not None and sfi in self._overlay:
            return list(self._overlay[sfi])
        return list(self._files[sfi].records)

    def committed(self, sfi: int) -> list[bytes]:
        """The committed records, ignoring any open session (a copy)."""
        return list(self._files[sfi].records)

    def put(self, sfi: int, records: Sequence[bytes]) -> None:
        """Store new records: into the overlay inside a session, else straight to EEPROM."""
        ef = self._files[sfi]
        if len(records) != ef.record_count or any(len(r) != ef.record_size for r in records):
            raise ValueError(f"records do not fit SFI {sfi:02X}")
        if self._overlay is not None:
            self._overlay[sfi] = list(records)
        else:
            ef.records = list(records)

    def begin(self) -> None:
        """Start buffering writes (Open Secure Session)."""
        self._overlay = {}

    def commit(self) -> None:
        """Apply every buffered write at once and stop buffering (valid Close)."""
        overlay, self._overlay = self._overlay or {}, None
        for sfi, records in overlay.items():
            self._files[sfi].records = records

    def rollback(self) -> None:
        """Drop every buffered write and stop buffering (abort, bad MAC, power loss)."""
        self._overlay = None

    def snapshot(self) -> dict[int, tuple[bytes, ...]]:
        """The committed records of every EF."""
        return {sfi: tuple(ef.records) for sfi, ef in sorted(self._files.items())}

    def restore(self, files: Mapping[int, Sequence[bytes]]) -> None:
        """Replace committed records from an image (each SFI must exist with the same shape)."""
        self._overlay = None
        for sfi, records in files.items():
            if sfi not in self._files:
                raise ValueError(f"image has SFI {sfi:02X}, unknown to the profile")
            self.put(sfi, records)


# --- record operations (pure) ----------------------------------------------------------------


def with_update(records: Sequence[bytes], index: int, data: bytes) -> list[bytes]:
    """Update Record: data replaces the first bytes of record index (calypso-protocol 1.5)."""
    out = list(records)
    out[index] = data + out[index][len(data) :]
    return out


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


# --- image files -------------------------------------------------------------------------------


def write_image(path: Path, serial: bytes, image: CardImage) -> None:
    """Write the image atomically: temporary file in the same directory, fsync, rename."""
    document = {
        "format": IMAGE_FORMAT,
        "serial": serial.hex().upper(),
        "transaction_counter": image.transaction_counter,
        "ratified": image.ratified,
        "files": {
            f"{sfi:02X}": [record.hex().upper() for record in records]
            for sfi, records in image.files.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_image(path: Path) -> tuple[bytes, CardImage]:
    """Read an image written by write_image: (serial, image); ValueError when malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != IMAGE_FORMAT:
            raise ValueError(f"unsupported image format {document.get('format')!r}")
        files = {
            int(sfi, 16): tuple(bytes.fromhex(record) for record in records)
            for sfi, records in document["files"].items()
        }
        image = CardImage(files, int(document["transaction_counter"]), bool(document["ratified"]))
        return bytes.fromhex(document["serial"]), image
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed card image {path}: {exc}") from None
