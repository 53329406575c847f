# SPDX-License-Identifier: Apache-2.0
"""Validator settings (config/validator.yaml) and where the configuration directory is."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sam.policy import AuthorizedKeys, parse_key_reference
from validator.app.ship.settings import ShippingSettings
from validator.engine.fares.rules import LOCATION_BITS, FareRules
from yamlconfig import ConfigError, load_model

LAYOUT_NAMES = ("demo", "intercode")  # validator.engine.layouts.base.build_layouts

# Reader specs each setting takes (validator.app.station opens them; readers.spec: pcsc:, nfc:).
CARD_READER_SPECS = ("emulated", "pcsc:REGEX", "nfc:PATH")
SAM_READER_SPECS = ("software", "emulated", "pcsc:REGEX")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

CONFIG_ENV = "CALYPSO_VALIDATOR_CONFIG"
ENV_PREFIX = "CALYPSO_VALIDATOR_"


class ValidatorSettings(BaseModel):
    """The whole of config/validator.yaml; relative paths are relative to that file's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    simulation: bool = Field(
        default=False,
        description="Accept the CSIM1 simulation keys (KVC F0h/F1h). Never true in production.",
    )
    validator_id: str = Field(default="validator-1", min_length=1)
    time_budget_ms: int = Field(default=500, ge=50, le=10_000)
    card_reader: str = "emulated"
    sam_reader: str = "emulated"
    aids: list[str] = Field(default_factory=lambda: ["315449432E49434131"], min_length=1)
    keys: str = "keys.sim.yaml"
    fares: str = "fares.yaml"
    cards: str = "cards"
    journal_dir: str = "journal"
    ratification: Literal["command", "immediate"] = "command"
    authorized_keys: list[str] = Field(
        default_factory=list,
        description="Card session keys accepted, as 'KIF/KVC' hex pairs; empty = any key.",
    )
    layouts: dict[str, str] = Field(
        default_factory=dict,
        description="Card data layout by AID (hex prefix): 'demo' (default) or 'intercode'.",
    )
    sam_atr_filter: str | None = Field(
        default=None,
        description="Regex the SAM ATR (hex) must match, e.g. 3B.*805A..80C1.*829000.",
    )
    metrics_address: str | None = Field(
        default=None, description="Prometheus endpoint address (off when unset)."
    )
    metrics_port: int = Field(default=9108, ge=1, le=65535)
    journal_key_file: str | None = Field(
        default=None, description="Hex HMAC key for the journal (chained entries are MACed)."
    )
    multiple_session: bool = Field(
        default=False,
        description="Split a session whose writes overflow the card's buffer into several.",
    )
    log_format: Literal["auto", "console", "json"] = "auto"
    shipping: ShippingSettings | None = Field(
        default=None, description="Shipping journals to the collector (validator ship)."
    )

    @field_validator("aids")
    @classmethod
    def _hex_aids(cls, aids: list[str]) -> list[str]:
        for aid in aids:
            try:
                size = len(bytes.fromhex(aid))
            except ValueError:
                raise ValueError(f"AID {aid!r} is not hex") from None
            if not 5 <= size <= 16:
                raise ValueError(f"AID {aid!r} must be 5 to 16 bytes")
        return aids

    @field_validator("card_reader")
    @classmethod
    def _card_reader(cls, spec: str) -> str:
        return check_reader_spec(spec, CARD_READER_SPECS)

    @field_validator("sam_reader")
    @classmethod
    def _sam_reader(cls, spec: str) -> str:
        return check_reader_spec(spec, SAM_READER_SPECS)

    @field_validator("sam_atr_filter")
    @classmethod
    def _atr_filter(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            _compile(pattern)
        return pattern

    @field_validator("metrics_address")
    @classmethod
    def _metrics_address(cls, address: str | None) -> str | None:
        if address is not None and not is_host(address):
            raise ValueError(
                "not an IP address or a host name (the port is metrics_port, not part of it)"
            )
        return address

    @field_validator("layouts")
    @classmethod
    def _layouts(cls, layouts: dict[str, str]) -> dict[str, str]:
        cls._hex_aids(list(layouts))
        for aid, name in layouts.items():
            if name not in LAYOUT_NAMES:
                raise ValueError(
                    f"AID {aid}: unknown layout {name!r} ({' or '.join(LAYOUT_NAMES)})"
                )
        return layouts

    @field_validator("authorized_keys")
    @classmethod
    def _key_references(cls, references: list[str]) -> list[str]:
        for reference in references:
            parse_key_reference(reference)
        return references

    def key_policy(self) -> AuthorizedKeys:
        """The authorised-keys policy: the list above, simulation keys only in simulation."""
        return AuthorizedKeys.parse(self.authorized_keys, allow_simulation=self.simulation)

    def aid_bytes(self) -> list[bytes]:
        """The AIDs to try, in order, as bytes."""
        return [bytes.fromhex(aid) for aid in self.aids]


def _compile(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression: {exc}") from None


def check_reader_spec(spec: str, allowed: tuple[str, ...]) -> str:
    """``spec`` if it is one of the ``allowed`` forms (a pcsc: regex must compile)."""
    scheme, sep, rest = spec.partition(":")
    if not sep and spec in allowed:
        return spec
    if sep and (f"{scheme}:REGEX" in allowed or f"{scheme}:PATH" in allowed):
        if not rest:
            raise ValueError(f"nothing after {scheme}:")
        if scheme == "pcsc":
            _compile(rest)
        return spec
    raise ValueError(f"unknown reader {spec!r}: expected {' or '.join(allowed)}")


def is_host(address: str) -> bool:
    """Whether ``address`` is an IPv4/IPv6 address or an RFC 1123 host name."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return True
    name = address.removesuffix(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(part) for part in name.split("."))


def default_config_dir() -> Path:
    """$CALYPSO_VALIDATOR_CONFIG, else ./config (from the current directory), nothing else.

    No silent fallback to the checkout's config/ (issue 15.17): the folder used is the one the
    help names, and a missing validator.yaml there is an error naming the path.
    """
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path.cwd() / "config"


def missing_settings(config_dir: Path) -> ConfigError:
    """The error for a folder without validator.yaml, naming near-misses found beside it."""
    path = config_dir / "validator.yaml"
    if not config_dir.is_dir():
        return ConfigError(
            path,
            f"missing: the configuration folder {config_dir} does not exist "
            f"(give --config DIR or set ${CONFIG_ENV})",
        )
    near = sorted(
        p.name
        for p in config_dir.iterdir()
        if p.name.lower().startswith("validator") and p.name != "validator.yaml"
    )
    beside = f"; found beside it: {', '.join(near)} (rename it to validator.yaml)" if near else ""
    return ConfigError(path, f"missing: no validator.yaml in {config_dir}{beside}")


def load_settings(config_dir: Path, environ: Mapping[str, str] | None = None) -> ValidatorSettings:
    """validator.yaml from ``config_dir``, then $CALYPSO_VALIDATOR_<FIELD> overrides on top.

    Command-line flags override both (the CLI applies them). List fields take a comma-separated
    value in the environment, e.g. CALYPSO_VALIDATOR_AIDS=315449432E49434131,A000000291FF9101.
    """
    environ = os.environ if environ is None else environ
    path = config_dir / "validator.yaml"
    if not path.exists() and not path.is_symlink():
        raise missing_settings(config_dir)
    settings = load_model(path, ValidatorSettings)
    overrides: dict[str, object] = {}
    for name, info in ValidatorSettings.model_fields.items():
        value = environ.get(f"{ENV_PREFIX}{name.upper()}")
        if value is None:
            continue
        is_list = getattr(info.annotation, "__origin__", None) is list
        overrides[name] = [v.strip() for v in value.split(",") if v.strip()] if is_list else value
    if not overrides:
        return settings
    try:
        return ValidatorSettings.model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigError(f"${ENV_PREFIX}{field.upper()}", f"{field}: {first['msg']}") from None


def load_fares(
    config_dir: Path, settings: ValidatorSettings, path: Path | None = None
) -> FareRules:
    """fares.yaml of the settings (or ``path``), checked against the settings' card layouts too.

    ``path`` is a fare file other than the one in force (``replay --fares``, what-if): it must
    pass the same checks, or a replay would judge taps by rules no validator could run.
    """
    if path is None:
        path = config_dir / settings.fares
    rules = load_model(path, FareRules)
    location = rules.station.location_id
    for aid, layout in sorted(settings.layouts.items()):
        bits = LOCATION_BITS.get(layout, 32)
        if location >= 1 << bits:
            raise ConfigError(
                path,
                f"station.location_id: {location} does not fit the {bits} bits of the "
                f"{layout} layout's event location (AID {aid} in validator.yaml)",
            )
    return rules
