# SPDX-License-Identifier: Apache-2.0
"""The journal HMAC key file (``journal_key_file``): loaded and checked by one function.

``validator run``, ``check-config``, ``doctor``, ``replay``, ``export`` and ``journal-head`` all
read the file through :func:`read_journal_key`, so that a file one of them refuses is refused by
the others for the same reason (issue 15.5). The file
holds the key as hex text (whitespace ignored). Messages name the file and the reason, never a
byte of the key.
"""

from __future__ import annotations

import stat
from pathlib import Path

from yamlconfig import ConfigError, read_config_text

MIN_KEY_BYTES = 16  # 128 bits, the HMAC-SHA256 key length the journal needs at least
MAX_KEY_FILE_BYTES = 4096  # a hex key is tens of bytes: anything bigger is not a key file
# The rule of the production SAM key files (sam.keys.check_permissions): no group or world bit.
_OTHERS_ACCESS = stat.S_IRWXG | stat.S_IRWXO


class JournalKeyError(ConfigError):
    """The journal key file is missing, readable by others, or not a usable hex key."""

    what = "journal key file"


def read_journal_key(path: Path) -> bytes:
    """Check and read one journal key file; JournalKeyError (file and reason) if unusable."""
    return read_hex_key(path, "journal_key_file", MIN_KEY_BYTES, JournalKeyError)


def read_hex_key(path: Path, label: str, min_bytes: int, error: type[ConfigError]) -> bytes:
    """Check and read a hex key file (``label`` names it in messages, ``error`` is raised).

    Refused: missing, group or world access, empty, not hex, shorter than ``min_bytes``. The
    messages name the file and the reason, never a byte of the key.
    """
    if not path.exists():
        raise error(path, f"{label}: missing (create it, mode 0600)")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise error(path, f"{label}: cannot stat: {exc.strerror}") from None
    if mode & _OTHERS_ACCESS:
        raise error(
            path,
            f"{label}: mode {mode:04o} gives group or others access to the key; "
            f"run: chmod 600 {path}",
        )
    try:
        raw = read_config_text(path, MAX_KEY_FILE_BYTES)
    except ConfigError as exc:
        raise error(path, f"{label}: {exc.problem}") from None
    text = b"".join(raw.split())
    if not text:
        raise error(path, f"{label}: empty (expected the key as hex)")
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise error(path, f"{label}: not hex text") from None
    if len(key) < min_bytes:
        raise error(path, f"{label}: the key must be at least {min_bytes} bytes")
    return key
