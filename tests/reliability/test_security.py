# SPDX-License-Identifier: Apache-2.0
"""The security part, and the secret scanner the whole campaign uses."""

from __future__ import annotations

import base64
from pathlib import Path

from lab.reliability.report import Level
from lab.reliability.security import campaign as security
from lab.reliability.security import leakscan
from validator.engine.outcome import Outcome, TapResult
from validator.engine.tap import TapRecord
from validator.journal.writer import GENESIS

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
SECRETS = [leakscan.Secret("test key", KEY), leakscan.Secret("test PIN", b"\x12\x34\x56\x78")]


def test_smoke_security_has_no_violation(tmp_path: Path) -> None:
    """Forged/replayed MACs, simulation cards, leaks, tampering, permissions: all hold."""
    result = security.run(Level.SMOKE, tmp_path, lambda _: None)
    assert result.violations == []
    figures = result.figures
    assert figures["forged"] == 5 and figures["replayed"] == 1
    assert figures["tampered"] == 18 and figures["tamper_missed"] == 0  # 10 + 8 tail cases
    assert figures["scanned_files"] > 10 and figures["secrets"] > 40  # type: ignore[operator]
    assert figures["checks"] > 50  # type: ignore[operator]


def test_scanner_finds_every_form() -> None:
    """Hex in any case, spaced hex, a bytes repr, base64 at any alignment, coloured text."""
    leaks = [
        "key=" + KEY.hex().upper(),
        "key " + " ".join(f"{b:02x}" for b in KEY),
        f"locals: key = {KEY!r}",
        "blob " + base64.b64encode(b"xy" + KEY + b"z").decode(),
        "url " + base64.urlsafe_b64encode(b"q" + KEY).decode(),
        "\x1b[32m" + KEY.hex()[:10] + "\x1b[0m\x1b[32m" + KEY.hex()[10:] + "\x1b[0m",
        "pin 12345678",
    ]
    for text in leaks:
        (finding,) = leakscan.scan_text(text, SECRETS)
        assert KEY.hex() not in str(finding).lower()  # a finding never shows the value
    assert leakscan.scan_text("nothing to see: 0011223344 5566", SECRETS) == []


def test_scan_paths_skips_secret_stores(tmp_path: Path) -> None:
    """A key file is skipped and listed; a log holding the key is found with its line."""
    (tmp_path / "keys.yaml").write_text(f'keys: [{{kvc: "79", key: "{KEY.hex()}"}}]\n')
    (tmp_path / "run.log").write_text("fine\n" * 3 + f"oops {KEY.hex()}\n")
    report = leakscan.scan_paths([tmp_path], SECRETS)
    assert report.files == 1 and report.skipped == [str(tmp_path / "keys.yaml")]
    (finding,) = report.findings
    assert (finding.where, finding.line) == (str(tmp_path / "run.log"), 4)


def test_collect_secrets_covers_the_configuration() -> None:
    """Simulation keys, card masters, the CNA PIN and the fleet's card keys are collected."""
    secrets = leakscan.collect_secrets(security.CONFIG)
    labels = " ".join(s.label for s in secrets)
    assert "keys.sim.yaml KIF 30 KVC F0" in labels and "cna_test_kit.yaml PIN" in labels
    assert "wrong_keys.yaml debit master" in labels and " debit key" in labels
    assert all(str(s.value) not in repr(s) for s in secrets)


def test_gate_check_catches_an_open_gate() -> None:
    """The forged-MAC check reports a granted tap (it can fail)."""
    checks = security.Checks(lambda _: None)
    granted = TapResult(Outcome.GRANTED, "trip_debited", "", mac_verified=True)
    entry = {"seq": 1, "time": "2026-03-02T08:00:00", "prev": GENESIS}
    entry |= {"mac_verified": True, "outcome": "granted"}
    security._shut(TapRecord(1, granted, entry), "x", checks)
    assert len(checks.violations) == 2
