# SPDX-License-Identifier: Apache-2.0
"""The journal key of a station: where validator.yaml's ``journal_key_file`` points, and its key.

The file itself is checked and read by validator.journal.keyfile.read_journal_key, the one
reader every command uses.
"""

from __future__ import annotations

from pathlib import Path

from validator.app.settings import ValidatorSettings
from validator.journal.keyfile import read_journal_key

__all__ = ["journal_key_path", "load_journal_key"]


def journal_key_path(config_dir: Path, settings: ValidatorSettings) -> Path | None:
    """Where ``journal_key_file`` points (relative to the configuration folder), if set."""
    if settings.journal_key_file is None:
        return None
    return config_dir / settings.journal_key_file


def load_journal_key(config_dir: Path, settings: ValidatorSettings) -> bytes | None:
    """The journal HMAC key from ``journal_key_file`` (hex, at least 16 bytes), if set."""
    path = journal_key_path(config_dir, settings)
    return None if path is None else read_journal_key(path)
