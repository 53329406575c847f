# SPDX-License-Identifier: Apache-2.0
"""The card emulator's non-volatile memory: named cells, an anti-tearing journal, image files.

How a card makes a multi-cell update atomic (DESIGN 6, calypso-protocol 2.7), as modelled here:

1. each new cell value is written to the journal (one internal write each);
2. the commit flag is set (one write): from here on the update counts as done;
3. each cell is written in place (one write each);
4. the commit flag is cleared and the journal emptied (one write).

At power-on the card replays a journal whose commit flag is set, and drops one whose flag is
clear. A single-cell update is one write, atomic by itself (an EEPROM page write). A power loss
can be injected before any internal write with ``power_fail_at(n)``; with an image path, the
whole memory (cells, journal, flag) is saved atomically (temporary file, fsync, rename) after
every internal write, so reloading the file after a power loss sees exactly what the chip held.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from readers.base import CardRemovedError

IMAGE_FORMAT = 2


class PowerLostError(CardRemovedError):
    """The card lost power (an injected tear): the command got no answer."""


class NonVolatileMemory:
    """Named cells of bytes with the journal/commit-flag scheme and optional persistence."""

    def __init__(self, cells: Mapping[str, bytes], serial: bytes, path: Path | None = None):
        self.cells: dict[str, bytes] = dict(cells)
        self.journal: list[tuple[str, bytes]] = []
        self.commit_flag = False
        self.serial = serial
        self.path = path
        self.writes = 0  # internal write steps so far
        self._fail_in: int | None = None
        if path is not None and path.exists():
            self._load(path)
            self.recover()

    def __repr__(self) -> str:
        # Cells may hold keys and the PIN: never show them.
        return f"NonVolatileMemory({len(self.cells)} cells, journal={len(self.journal)})"

    # --- tearing ----------------------------------------------------------------------------

    def power_fail_at(self, n: int | None) -> None:
        """Lose power just before the n-th internal write from now (1 = the next); None disarms."""
        if n is not None and n < 1:
            raise ValueError("n counts internal writes from 1")
        self._fail_in = n

    def _step(self) -> None:
        """One internal write is about to happen: the injected power loss strikes here."""
        if self._fail_in is not None:
            self._fail_in -= 1
            if self._fail_in == 0:
                self._fail_in = None
                raise PowerLostError(f"power lost before internal write #{self.writes + 1}")
        self.writes += 1

    def _done(self) -> None:
        if self.path is not None:
            self.save(self.path)

    # --- updates ----------------------------------------------------------------------------

    def commit(self, changes: Mapping[str, bytes]) -> None:
        """Apply changes atomically: one write for one cell, else the journal scheme."""
        items = [(name, value) for name, value in changes.items() if self.cells.get(name) != value]
        if not items:
            return
        if len(items) == 1:
            self._step()
            self.cells[items[0][0]] = items[0][1]
            self._done()
            return
        for item in items:
            self._step()
            self.journal.append(item)
            self._done()
        self._step()
        self.commit_flag = True
        self._done()
        for name, value in items:
            self._step()
            self.cells[name] = value
            self._done()
        self._step()
        self.commit_flag = False
        self.journal.clear()
        self._done()

    def recover(self) -> None:
        """Power-on recovery: replay a committed journal, drop an uncommitted one."""
        if self.commit_flag:
            for name, value in self.journal:
                self.cells[name] = value
        if self.commit_flag or self.journal:
            self.commit_flag = False
            self.journal.clear()
            self._done()

    # --- files ------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the memory atomically: temporary file in the same directory, fsync, rename."""
        document = {
            "format": IMAGE_FORMAT,
            "serial": self.serial.hex().upper(),
            "cells": {name: value.hex().upper() for name, value in sorted(self.cells.items())},
            "journal": [[name, value.hex().upper()] for name, value in self.journal],
            "commit_flag": self.commit_flag,
        }
        write_json_atomically(path, document)

    def _load(self, path: Path) -> None:
        serial, cells, journal, flag = read_nv_image(path)
        if serial != self.serial:
            raise ValueError(f"image {path} belongs to another card")
        unknown = set(cells) - set(self.cells)
        if unknown:
            raise ValueError(f"image {path} has cells unknown to the profile")
        self.cells.update(cells)
        self.journal = journal
        self.commit_flag = flag


def write_json_atomically(path: Path, document: object) -> None:
    """Write JSON to a temporary file beside ``path``, fsync it, rename it, fsync the folder."""
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


def read_nv_image(
    path: Path,
) -> tuple[bytes, dict[str, bytes], list[tuple[str, bytes]], bool]:
    """Read an image file: (serial, cells, journal, commit flag); ValueError when malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != IMAGE_FORMAT:
            raise ValueError(f"unsupported image format {document.get('format')!r}")
        cells = {str(k): bytes.fromhex(v) for k, v in document["cells"].items()}
        journal = [(str(k), bytes.fromhex(v)) for k, v in document["journal"]]
        return bytes.fromhex(document["serial"]), cells, journal, bool(document["commit_flag"])
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed card image {path}: {type(exc).__name__}") from None
