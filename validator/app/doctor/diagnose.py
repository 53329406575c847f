# SPDX-License-Identifier: Apache-2.0
"""``validator doctor``: the clock and the configuration first, then every check of the station."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from calypso.emulator.profile import load_profile
from validator.app.doctor.checks import Doctor
from validator.app.doctor.report import Check, Probes, Report, Status, clock_check
from validator.app.settings import ValidatorSettings, load_fares, load_settings
from yamlconfig import ConfigError

__all__ = ["diagnose"]


def diagnose(config_dir: Path, probes: Probes | None = None) -> Report:
    """Run every check on the configuration in ``config_dir``."""
    probes = probes or Probes()
    checks: list[Check] = []
    # The clock first: a host that booted in 1970 fails here, before any check that writes a
    # date (the software SAM's test session) could trip over it (issue 15.11).
    try:
        settings = load_settings(config_dir)
        load_fares(config_dir, settings)
        profiles = _profiles(config_dir, settings)
    except ConfigError as exc:
        checks.append(clock_check(probes, None))
        checks.append(
            Check(
                "config",
                Status.FAIL,
                "; ".join(exc.details()),
                "fix the file at the line shown (validator check-config lists every error)",
            )
        )
        return Report(config_dir, checks)
    checks.append(clock_check(probes, config_dir / settings.journal_dir))
    cards = f" ({len(profiles)} card profiles)" if profiles else ""
    checks.append(Check("config", Status.PASS, f"{config_dir}: valid{cards}"))
    with ExitStack() as stack:
        doctor = Doctor(config_dir, settings, probes, stack)
        checks += doctor.run()
    return Report(config_dir, checks)


def _profiles(config_dir: Path, settings: ValidatorSettings) -> list[Path]:
    profiles = sorted((config_dir / settings.cards).glob("*.yaml"))
    for path in profiles:
        load_profile(path)
    return profiles
