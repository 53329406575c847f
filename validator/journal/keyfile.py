# SPDX-License-Identifier: Apache-2.0
"""The journal HMAC key file (``journal_key_file``): loaded and checked by one function.

``validator run``, ``check-config`` and ``doctor`` all call :func:`load_journal_key`, so that a
file one of them refuses is refused by the others for the same reason (issue 15.5). The file
holds the key as hex text (whitespace ignored). Messages name the file and the reason, never a
byte of the key.
"""

from __future__ import annotations

import stat
from pathlib import Path

from validator.app.doctor.report import Check, Identity, Status
from validator.app.settings import ValidatorSettings
from yamlconfig import ConfigError, read_config_text

MIN_KEY_BYTES = 16  # 128 bits, the HMAC-SHA256 key length the journal needs at least
MAX_KEY_FILE_BYTES = 4096  # a hex key is tens of bytes: anything bigger is not a key file
# The rule of the production SAM key files (sam.keys.check_permissions): no group or world bit.
_OTHERS_ACCESS = stat.S_IRWXG | stat.S_IRWXO


class JournalKeyError(ConfigError):
    """The journal key file is missing, readable by others, or not a usable hex key."""

    what = "journal key file"


def journal_key_path(config_dir: Path, settings: ValidatorSettings) -> Path | None:
    """Where ``journal_key_file`` points (relative to the configuration folder), if set."""
    if settings.journal_key_file is None:
        return None
    return config_dir / settings.journal_key_file


def load_journal_key(config_dir: Path, settings: ValidatorSettings) -> bytes | None:
    """The journal HMAC key from ``journal_key_file`` (hex, at least 16 bytes), if set."""
    path = journal_key_path(config_dir, settings)
    return None if path is None else read_journal_key(path)


def read_journal_key(path: Path) -> bytes:
    """Check and read one journal key file; JournalKeyError (file and reason) if unusable."""
    if not path.exists():
        raise JournalKeyError(path, "journal_key_file: missing (create it, mode 0600)")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise JournalKeyError(path, f"journal_key_file: cannot stat: {exc.strerror}") from None
    if mode & _OTHERS_ACCESS:
        raise JournalKeyError(
            path,
            f"journal_key_file: mode {mode:04o} gives group or others access to the key; "
            f"run: chmod 600 {path}",
        )
    try:
        raw = read_config_text(path, MAX_KEY_FILE_BYTES)
    except ConfigError as exc:
        raise JournalKeyError(path, f"journal_key_file: {exc.problem}") from None
    text = b"".join(raw.split())
    if not text:
        raise JournalKeyError(path, "journal_key_file: empty (expected the key as hex)")
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise JournalKeyError(path, "journal_key_file: not hex text") from None
    if len(key) < MIN_KEY_BYTES:
        raise JournalKeyError(
            path, f"journal_key_file: the key must be at least {MIN_KEY_BYTES} bytes"
        )
    return key


def journal_key_check(config_dir: Path, settings: ValidatorSettings, who: Identity) -> Check:
    """The doctor's ``journal_key`` check: :func:`load_journal_key`, then the service may read."""
    path = journal_key_path(config_dir, settings)
    if path is None:
        return Check("journal_key", Status.PASS, "not set: journal entries are chained, not MACed")
    try:
        key = read_journal_key(path)
    except ConfigError as exc:
        return Check(
            "journal_key",
            Status.FAIL,
            "; ".join(exc.details()),
            f"write the key as hex (at least {MIN_KEY_BYTES} bytes) in {path}; chmod 600 {path}",
        )
    info = path.stat()
    if not who.may(info, 4):
        return Check(
            "journal_key",
            Status.FAIL,
            f"{path}: the service user {who.name} cannot read it (owner uid {info.st_uid})",
            f"chown {who.name} {path}; chmod 600 {path}",
        )
    return Check("journal_key", Status.PASS, f"{path}: {len(key)}-byte key, readable by {who.name}")
