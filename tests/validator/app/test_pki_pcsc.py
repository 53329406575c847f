# SPDX-License-Identifier: Apache-2.0
"""``validator run --sam-reader none`` through pcscd and vpcd: PKI cards with no SAM (issue 19).

The card is an emulated PKI card served by vpcd to the private pcscd; the validator runs as an
operator runs it, with a PC/SC card reader and no SAM at all. A genuine card is granted and
debited; a card whose signature, certificate or chain is wrong is refused and keeps its trips.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import CARDS, CONFIG

from calypso.emulator.dispatch import CardEmulator
from calypso.layouts.demo import SFI_COUNTERS
from lab.pcscd import CARD_READER, InsertCard
from lab.pki.cards import PkiCard, hostile_pki_cards
from validator.cli.main import main
from validator.journal.writer import journal_files

pytest_plugins = ["pcsc_fixtures"]

SERIAL = bytes.fromhex("00000000C0FFEE72")


def settings_of(config: Path, **changes: object) -> None:
    """Change top-level settings of ``config``'s validator.yaml."""
    path = config / "validator.yaml"
    settings = yaml.safe_load(path.read_text())
    settings.update(changes)
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The shipped settings (its test root trusted) with a journal in tmp_path."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    settings_of(target, journal_dir=str(tmp_path / "journal"))
    return target


def run_once(config: Path, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``validator run`` on the vpcd card reader for one tap: its JSON line and journal entry."""
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--config",
            str(config),
            "--card-reader",
            f"pcsc:{re.escape(CARD_READER)}",
            "--max-taps",
            "1",
            "--json",
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    line = next(json.loads(x) for x in result.stdout.splitlines() if x.startswith("{"))
    journal = yaml.safe_load((config / "validator.yaml").read_text())["journal_dir"]
    last = journal_files(Path(journal))[-1].read_text().splitlines()[-1]
    return line, json.loads(last)


def test_pki_card_granted_without_sam(config: Path, insert_card: InsertCard) -> None:
    """A genuine PKI card is granted and debited once, with no SAM exchange at all."""
    card = PkiCard(CARDS / "multi_trip.yaml", SERIAL).card()
    trips = card.counter(SFI_COUNTERS, 1)
    insert_card(card)
    line, entry = run_once(config, "--sam-reader", "none")
    assert line["outcome"] == "granted" and line["mac_verified"] is True
    assert line["apdus"]["sam"] == 0
    assert card.counter(SFI_COUNTERS, 1) == trips - 1
    assert entry["pki"]["cached"] is False and entry["sam_serial"] is None
    assert entry["trace"]["sam"] == []


def test_symmetric_card_refused_without_sam(config: Path, insert_card: InsertCard) -> None:
    """Settings with no SAM refuse a card with no PKI mode, with its reason, debiting nothing."""
    settings_of(config, sam_reader="none")
    card = CardEmulator.from_profile(CARDS / "multi_trip.yaml")
    trips = card.counter(SFI_COUNTERS, 1)
    insert_card(card)
    line, _ = run_once(config)
    assert (line["outcome"], line["reason"]) == ("denied", "no_sam")
    assert card.counter(SFI_COUNTERS, 1) == trips


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pki_forged_signature", "card_signature_invalid"),
        ("pki_other_serial", "certificate_mismatch"),
        ("pki_wrong_key_reference", "unknown_issuer"),
    ],
)
def test_wrong_card_refused(config: Path, insert_card: InsertCard, name: str, reason: str) -> None:
    """A wrong signature, certificate or chain keeps the gate shut."""
    card = hostile_pki_cards(CARDS / "multi_trip.yaml", SERIAL)[name].card()
    insert_card(card)
    line, entry = run_once(config, "--sam-reader", "none")
    assert (line["outcome"], line["reason"]) == ("denied", reason)
    assert line["mac_verified"] is False
    assert entry["outcome"] == "denied"
