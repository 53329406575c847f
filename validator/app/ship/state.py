# SPDX-License-Identifier: Apache-2.0
"""What the collector acknowledged, kept beside the journal (``ship-state.json``).

Per file: how many bytes from its start were acknowledged, their SHA-256 and last seq; and the
validator's anchor as the collector last answered it (seq and line hash). A file is deleted only
when every byte of it is acknowledged (validator.app.ship.run). Written atomically (temporary
file, fsync, rename), as the pending-taps checkpoint is: a crash leaves the old state or the new.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from validator.journal.files import fsync_dir

STATE_NAME = "ship-state.json"


@dataclass
class Acked:
    """The acknowledged start of one journal file."""

    size: int
    sha256: str
    last_seq: int
    at: str  # when the collector acknowledged it (UTC, ISO 8601)


@dataclass
class ShipState:
    """The acknowledged files and the last anchor the collector gave."""

    anchor_seq: int = 0
    anchor_hash: str | None = None
    files: dict[str, Acked] = field(default_factory=dict)
    problem: str | None = None  # set when the file could not be read (then treated as empty)

    @classmethod
    def load(cls, directory: Path) -> ShipState:
        """The state of ``directory``; an empty one (nothing acknowledged) if none or unreadable.

        Unreadable means nothing is known to be acknowledged: nothing is deleted, everything is
        shipped again (the collector takes a file twice without adding anything).
        """
        path = directory / STATE_NAME
        try:
            raw: Any = json.loads(path.read_bytes())
            files = {name: Acked(**value) for name, value in raw["files"].items()}
            return cls(int(raw["anchor_seq"]), raw["anchor_hash"], files)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return cls(problem=f"{path}: unreadable ({type(exc).__name__}): shipping all again")

    def save(self, directory: Path) -> None:
        """Write the state atomically."""
        path = directory / STATE_NAME
        temporary = directory / f".{STATE_NAME}.tmp"
        document = {
            "anchor_seq": self.anchor_seq,
            "anchor_hash": self.anchor_hash,
            "files": {name: asdict(acked) for name, acked in sorted(self.files.items())},
        }
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        fsync_dir(directory)
