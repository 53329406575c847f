# SPDX-License-Identifier: Apache-2.0
"""``validator inspect --json`` through pyscard -> pcscd -> vpcd, on every shipped profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from calypso.emulator.dispatch import CardEmulator
from lab.pcscd import CARD_READER, InsertCard
from validator.cli.main import main

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[3] / "config"
CARDS = CONFIG / "cards"
PROFILES = sorted(CARDS.glob("*.yaml")) + sorted((CARDS / "other").glob("*.yaml"))
SPEC = f"pcsc:^{re.escape(CARD_READER)}$"


def run_inspect(*args: str) -> tuple[int, dict[str, object]]:
    """``validator inspect --json`` on the vpcd card reader."""
    result = CliRunner().invoke(
        main,
        ["inspect", "--config", str(CONFIG), "--card-reader", SPEC, "--timeout", "5", "--json"]
        + list(args),
    )
    assert result.output.startswith("{"), result.output
    doc: dict[str, object] = json.loads(result.output)
    return result.exit_code, doc


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_inspect_every_profile_through_pcscd(insert_card: InsertCard, path: Path) -> None:
    """Each card is read through the real PC/SC stack exactly as through the emulated reader."""
    card = CardEmulator.from_profile(path)
    insert_card(card)
    code, doc = run_inspect()
    assert code == 0
    app = doc["application"]
    assert isinstance(app, dict) and app["serial"] == card.serial.hex().upper()
    files = doc["files"]
    assert isinstance(files, list) and files
    assert any(f["content"] for f in files)


def test_secure_inspect_of_the_intercode_card(insert_card: InsertCard) -> None:
    """A secure read through pcscd with the software SAM: the card MAC is verified."""
    insert_card(CardEmulator.from_profile(CARDS / "intercode.yaml"))
    code, doc = run_inspect("--secure", "--sam-reader", "software")
    assert code == 0
    secure = doc["secure_session"]
    assert isinstance(secure, dict) and secure["mac_verified"] is True
    assert doc["layout"] == "intercode"
