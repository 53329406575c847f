# SPDX-License-Identifier: Apache-2.0
"""The collector's settings file (``collector.yaml``) and its TLS context.

The collector requires a client certificate signed by ``client_ca_file`` (mutual TLS) and takes
the validator id from that certificate's subject CN. Relative paths are relative to the file's
folder. The server key file and the journal key file are refused when others may read them.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from validator.app.settings import is_host
from validator.app.ship.settings import check_file, check_private_key_file
from yamlconfig import ConfigError, load_model

SETTINGS_NAME = "collector.yaml"
DB_ENV = "CALYPSO_OFFICE_DB"


class CollectorSettings(BaseModel):
    """The whole of collector.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen_address: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535, description="0: any free port (tests).")
    certificate_file: str = Field(description="PEM certificate of the collector.")
    key_file: str = Field(description="PEM private key of that certificate (mode 0600).")
    client_ca_file: str = Field(description="PEM CA that signed the validators' certificates.")
    database_url: str | None = Field(
        default=None, description=f"Office database URL (else ${DB_ENV})."
    )
    journal_key_file: str | None = Field(
        default=None, description="Hex journal HMAC key: each entry's HMAC is checked."
    )
    office_key_file: str | None = Field(
        default=None,
        description="Hex office key (mode 0600) of a pseudonyms-only database: entries are "
        "stored pseudonymised (docs/operations.md, Privacy).",
    )

    @field_validator("listen_address")
    @classmethod
    def _host(cls, address: str) -> str:
        if not is_host(address):
            raise ValueError("not an IP address or a host name")
        return address


def load_collector_settings(config_dir: Path) -> CollectorSettings:
    """collector.yaml of ``config_dir`` (ConfigError naming the file and line when wrong)."""
    path = config_dir / SETTINGS_NAME
    if not path.exists():
        raise ConfigError(path, f"missing: no {SETTINGS_NAME} in {config_dir}")
    return load_model(path, CollectorSettings)


def database_url(settings: CollectorSettings, config_dir: Path) -> str:
    """The database URL: the setting, else $CALYPSO_OFFICE_DB."""
    url = settings.database_url or os.environ.get(DB_ENV)
    if not url:
        raise ConfigError(config_dir / SETTINGS_NAME, f"database_url: not set (nor ${DB_ENV})")
    return url


def server_context(settings: CollectorSettings, config_dir: Path) -> ssl.SSLContext:
    """The TLS context: the collector's certificate, client certificates required and checked."""
    cert = check_file(config_dir / settings.certificate_file, "certificate_file")
    key = check_private_key_file(config_dir / settings.key_file, "key_file")
    ca = check_file(config_dir / settings.client_ca_file, "client_ca_file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise ConfigError(
            cert, f"certificate_file/key_file: not a usable pair ({exc.reason})"
        ) from None
    return context
