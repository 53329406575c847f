# SPDX-License-Identifier: Apache-2.0
"""The ``shipping:`` section of validator.yaml, and the key-file rule for the client key.

The validator ships its journal files to the collector over HTTPS with mutual TLS: it presents
``client_cert_file`` / ``client_key_file`` (the certificate's subject CN is its validator id, the
collector binds the two) and trusts only the collector certificates ``ca_file`` signed.
"""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yamlconfig import ConfigError

_OTHERS_ACCESS = stat.S_IRWXG | stat.S_IRWXO  # the journal key's rule (validator.journal.keyfile)


class ShippingSettings(BaseModel):
    """Where and how journals are shipped; relative paths are relative to the config folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collector_url: str = Field(description="https://host:port of the collector.")
    client_cert_file: str = Field(description="PEM certificate of this validator (CN = its id).")
    client_key_file: str = Field(description="PEM private key of that certificate (mode 0600).")
    ca_file: str = Field(description="PEM CA certificate(s) that signed the collector's.")
    retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Acknowledged files are deleted once this old (by last change); 0: at once.",
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    attempts: int = Field(default=3, ge=1, le=20, description="Tries per request (backoff).")
    backoff_s: float = Field(default=2.0, ge=0, le=300, description="First retry delay.")
    warn_unshipped_mib: float = Field(
        default=256.0, gt=0, description="Doctor warns when more unacknowledged bytes wait."
    )

    @field_validator("collector_url")
    @classmethod
    def _https(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("collector_url must be https://host[:port] (mutual TLS only)")
        return url.rstrip("/")


def check_private_key_file(path: Path, what: str) -> Path:
    """``path`` if it exists and gives no group or other access; ConfigError otherwise.

    The message names the file and its mode, never a byte of the key.
    """
    if not path.exists():
        raise ConfigError(path, f"{what}: missing")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _OTHERS_ACCESS:
        raise ConfigError(
            path,
            f"{what}: mode {mode:04o} gives group or others access to the key; "
            f"run: chmod 600 {path}",
        )
    return path


def check_file(path: Path, what: str) -> Path:
    """``path`` if it is an existing file; ConfigError naming it otherwise."""
    if not path.is_file():
        raise ConfigError(path, f"{what}: missing")
    return path
