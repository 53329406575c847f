# SPDX-License-Identifier: Apache-2.0
"""The doctor's PKI checks: the trusted roots load, and what a validator without SAM skips."""

from __future__ import annotations

from pathlib import Path

from validator.app.doctor.report import Check, Status
from validator.app.settings import NO_SAM, ValidatorSettings, load_trust
from yamlconfig import ConfigError


def pki_check(config_dir: Path, settings: ValidatorSettings) -> Check:
    """The PKI trust loads as ``run`` loads it: roots, references, revocation list, policy."""
    try:
        trust = load_trust(config_dir, settings)
    except ConfigError as exc:
        return Check("pki", Status.FAIL, str(exc), "fix the file at the line shown (docs/pki.md)")
    if trust is None:
        return Check("pki", Status.PASS, "off: no trusted root (PKI cards use the SAM)")
    roots = len(tuple(trust.roots))
    scopes = ", ".join(settings.pki.scopes)
    detail = f"{roots} trusted roots; CA scopes {scopes}; {settings.pki.card_cache} cards cached"
    if "test" in settings.pki.scopes and not settings.simulation:
        return Check(
            "pki",
            Status.WARN,
            f"{detail}: the TEST scope is accepted outside simulation (allow_test_material)",
            "trust test cards on purpose only; remove 'test' from pki.scopes for real fares",
        )
    return Check("pki", Status.PASS, detail)


def without_sam(settings: ValidatorSettings) -> bool:
    """Whether the validator runs with no SAM at all (PKI cards only)."""
    return settings.sam_reader == NO_SAM


def not_needed(name: str) -> Check:
    """A SAM check a validator without SAM passes: it has nothing to check there."""
    return Check(name, Status.PASS, "not needed: sam_reader none (no SAM, PKI cards only)")
