# SPDX-License-Identifier: Apache-2.0
"""Validator settings (config/validator.yaml) and where the configuration directory is."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from calypso.pki.chain import DatePolicy, Revocations
from calypso.pki.fields import KEY_REFERENCE_SIZE, CaScope
from sam.policy import AuthorizedKeys, parse_key_reference
from validator.app.ship.settings import ShippingSettings
from validator.engine.fares.rules import LOCATION_BITS, FareRules
from validator.engine.pki.files import RevocationFile, RootKeyFile
from validator.engine.pki.trust import DEFAULT_CARD_CACHE, CardTrust, TrustPolicy
from yamlconfig import ConfigError, line_of, load_model

LAYOUT_NAMES = ("demo", "intercode")  # validator.engine.layouts.base.build_layouts

# Reader specs each setting takes (validator.app.station opens them; readers.spec: pcsc:, nfc:).
CARD_READER_SPECS = ("emulated", "pcsc:REGEX", "nfc:PATH")
SAM_READER_SPECS = ("software", "emulated", "pcsc:REGEX", "none")
NO_SAM = "none"  # no SAM at all: PKI cards only (pki.roots)
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

CONFIG_ENV = "CALYPSO_VALIDATOR_CONFIG"
ENV_PREFIX = "CALYPSO_VALIDATOR_"


ScopeName = Literal["production", "test"]


def _production_only() -> list[ScopeName]:
    return ["production"]


class TrustedRootSetting(BaseModel):
    """One trusted root: its public key file and the key reference it must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1, description="Root public key file (docs/pki.md).")
    reference: str = Field(description="Its 29-byte key reference, hex: checked against the file.")

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        try:
            size = len(bytes.fromhex(value))
        except ValueError:
            raise ValueError("not hex") from None
        if size != KEY_REFERENCE_SIZE:
            raise ValueError(f"a key reference is {KEY_REFERENCE_SIZE} bytes, not {size}")
        return value.upper()


class PkiSettings(BaseModel):
    """PKI mode (docs/pki.md): the roots trusted, the chain policy, the verified-card cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roots: list[TrustedRootSetting] = Field(
        default_factory=list, description="Trusted root public keys; none: PKI mode is off."
    )
    scopes: list[ScopeName] = Field(
        default_factory=_production_only,
        min_length=1,
        description="CA scopes accepted; 'test' needs simulation or allow_test_material.",
    )
    allow_test_material: bool = Field(
        default=False,
        description="Accept the test PKI (test roots, test scope) outside simulation, on purpose.",
    )
    expired: Literal["reject", "accept"] = "reject"
    not_yet_valid: Literal["reject", "accept"] = "reject"
    revocations: str | None = Field(
        default=None, description="Revocation list file (CA references, card serials)."
    )
    card_cache: int = Field(
        default=DEFAULT_CARD_CACHE,
        ge=0,
        le=1_000_000,
        description="Verified card certificates kept by serial (a returning card reads none).",
    )

    def test_allowed(self, simulation: bool) -> bool:
        """Whether the test PKI may be trusted: in simulation, or when the operator opts in."""
        return simulation or self.allow_test_material


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
    pki: PkiSettings = Field(default_factory=PkiSettings)

    @field_validator("pki")
    @classmethod
    def _pki(cls, pki: PkiSettings, info: ValidationInfo) -> PkiSettings:
        if "test" in pki.scopes and not pki.test_allowed(bool(info.data.get("simulation"))):
            raise ValueError(
                "scopes: the test scope needs 'simulation: true' or pki.allow_test_material: true"
            )
        return pki

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


def load_trust(
    config_dir: Path,
    settings: ValidatorSettings,
    *,
    no_sam: bool | None = None,
    rng: Callable[[int], bytes] | None = None,
) -> CardTrust | None:
    """The PKI trust of ``settings``: its root key files (each checked against the reference
    validator.yaml names), the chain policy and the revocation list; None when no root is set.

    ``no_sam``: whether the validator runs without SAM (default: the settings' sam_reader is
    ``none``); with no SAM and no root no card could be validated, which is refused too.
    ``rng`` gives the terminal challenges (a seeded one in the demo).

    Raises:
        ConfigError: a root or revocation file missing or malformed (its file and line), a
            reference that is not the file's, test material outside simulation without the
            opt-in, or no SAM and no root (validator.yaml and its line).
    """
    pki = settings.pki
    where = config_dir / "validator.yaml"
    if not pki.roots:
        if settings.sam_reader == NO_SAM if no_sam is None else no_sam:
            raise ConfigError(
                where,
                "sam_reader: 'none' (no SAM) validates PKI cards only, and pki.roots is empty",
                line_of(where, ("sam_reader",)),
            )
        return None
    test_allowed = pki.test_allowed(settings.simulation)
    roots = []
    for number, setting in enumerate(pki.roots):
        path = config_dir / setting.file
        root_file = load_model(path, RootKeyFile)
        if root_file.key_reference != setting.reference:
            raise ConfigError(
                where,
                f"pki.roots.{number}.reference: not the key reference of {setting.file}",
                line_of(where, ("pki", "roots", number, "reference")),
            )
        if root_file.test_material and not test_allowed:
            raise ConfigError(
                path,
                "test_material: a test root is trusted only with 'simulation: true' or "
                "pki.allow_test_material: true in validator.yaml",
                line_of(path, ("test_material",)),
            )
        roots.append(root_file.root())
    revocations = Revocations()
    if pki.revocations is not None:
        revocations = load_model(config_dir / pki.revocations, RevocationFile).revocations()
    policy = TrustPolicy(
        expired=DatePolicy(pki.expired),
        not_yet_valid=DatePolicy(pki.not_yet_valid),
        scopes=frozenset(
            CaScope.TEST if name == "test" else CaScope.PRODUCTION for name in pki.scopes
        )
        | {CaScope.ANY},
        revocations=revocations,
    )
    if rng is None:
        return CardTrust(roots, policy, pki.card_cache)
    return CardTrust(roots, policy, pki.card_cache, rng)


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
