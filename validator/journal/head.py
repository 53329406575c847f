# SPDX-License-Identifier: Apache-2.0
"""The head of a journal's chain, for anchoring it outside the host (DESIGN section 6).

The head is the last entry that was written whole: its validator, sequence number, the SHA-256
of its line (what the next entry's ``prev`` will carry), its time and its file. Published to a
collector (the custody issue builds on it), it lets ``validator replay --anchor`` and ``validator
export --anchor`` see a removed tail (``truncated``) or a recomputed chain (``anchor_mismatch``),
which no check inside the host can see without a journal key (issue 15.3).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from validator.journal.jsonline import loads
from validator.journal.reading import JournalSource, ReplayInputError, read_journal
from validator.journal.writer import entry_mac, journal_files


class HeadError(ReplayInputError):
    """The journal has no entry to anchor (exit code 2)."""


def _entry(data: bytes) -> dict[str, Any] | None:
    try:
        entry = loads(data)
        if isinstance(entry, dict) and isinstance(entry.get("seq"), int):
            return entry
    except ValueError:
        pass
    return None


def _authentic(entry: dict[str, Any], key: bytes) -> bool:
    mac = entry.get("hmac")
    return isinstance(mac, str) and hmac.compare_digest(mac, entry_mac(key, entry))


def journal_head(where: Path, key: bytes | None = None) -> dict[str, Any]:
    """The last whole entry of a journal directory, or of one file (the last one shipped).

    With the journal key, a head whose HMAC does not verify is refused: a forged head must
    never be anchored.
    """
    files = [where] if where.is_file() else journal_files(where)
    for path in reversed(files):  # the newest file with an entry holds the head
        source = JournalSource(0, path.parent, (path,), ())
        head: dict[str, Any] | None = None
        last: dict[str, Any] = {}
        for raw in read_journal(source):
            entry = _entry(raw.data) if raw.terminated else None  # a torn tail is no head
            if entry is not None:
                last = entry
                head = {
                    "validator": str(entry.get("validator", "")),
                    "seq": entry["seq"],
                    "hash": hashlib.sha256(raw.data).hexdigest(),
                    "time": entry.get("time"),
                    "file": str(path),
                }
        if head is not None:
            if key is not None and not _authentic(last, key):
                raise HeadError(f"{path}: seq {head['seq']}: HMAC missing or wrong: not anchored")
            return head
    raise HeadError(f"{where}: no journal entry to anchor")
