# SPDX-License-Identifier: Apache-2.0
"""``validator inspect`` of PKI cards: the certificates and whether the chain verifies."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner
from conftest import CARDS, CONFIG, DEMO_AID

from calypso.pki.session import CardPublicKey, card_private_key
from lab.pki.cards import PkiCard, hostile_pki_cards
from readers.emulated import EmulatedReader
from validator.app.settings import load_settings, load_trust
from validator.cli.main import main
from validator.office.inspect.read import Inspection, inspect_card

PROFILE = CARDS / "pki" / "test_pki_multi_trip.yaml"
TODAY = dt.date(2026, 3, 2)
SERIAL = bytes.fromhex("00000000C0FFEE62")


def inspected(card: PkiCard, config: Path = CONFIG) -> Inspection:
    """Inspect an emulated card with the trust of ``config``'s settings."""
    reader = EmulatedReader("card")
    reader.insert(card.card())
    settings = load_settings(config, environ={})
    return inspect_card(
        reader.connect(),
        aids=[DEMO_AID],
        layouts={},
        pki=load_trust(config, settings),
        today=TODAY,
    )


def test_shipped_card_verifies() -> None:
    """inspect --json of the shipped PKI card: both certificates, every field, chain verified."""
    result = CliRunner().invoke(
        main, ["inspect", "--config", str(CONFIG), "--card-profile", str(PROFILE), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["certificates"]
    assert doc["chain"]["verified"] is True
    card, ca = doc["card"], doc["ca"]
    assert card["serial"] == "00000000C0FFEE12" and card["index"] == 1
    assert (card["start"], card["end"]) == ("2025-01-01", "2045-12-31")
    profile = yaml.safe_load(PROFILE.read_text())
    key = CardPublicKey.of(card_private_key(bytes.fromhex(profile["pki"]["private_key"])))
    assert card["public_key"] == key.hex()
    assert ca["scope"] == "test"
    assert ca["rights"]["may_sign_card"] is True and ca["rights"]["may_sign_ca"] is False
    assert ca["target"]["aid"].endswith("(TESTPKICA)")
    assert ca["public_key"].startswith("RSA-2048 modulus ")


def test_tree_shows_the_verdict() -> None:
    """The readable tree says the chain verifies and shows the card's key."""
    result = CliRunner().invoke(
        main, ["inspect", "--config", str(CONFIG), "--card-profile", str(PROFILE)]
    )
    assert result.exit_code == 0
    assert "PKI certificates: verifies to a trusted root" in result.output
    assert "public_key" in result.output


def test_expired_ca_refused_with_its_fields() -> None:
    """A card of an expired CA: refused with the reason, its recovered fields still shown."""
    result = inspected(hostile_pki_cards(CARDS / "multi_trip.yaml", SERIAL)["pki_expired_ca"])
    view = result.certificates
    assert view is not None and not view.verified
    assert view.verdict.startswith("REFUSED (certificate_expired)")
    assert view.content is not None and view.ca is not None
    assert str(view.ca.end) == "2025-12-31"


def test_other_serial_refused() -> None:
    """A certificate for another serial is shown and refused as a mismatch."""
    card = hostile_pki_cards(CARDS / "multi_trip.yaml", SERIAL)["pki_other_serial"]
    view = inspected(card).certificates
    assert view is not None and "certificate_mismatch" in view.verdict


def test_without_a_root(tmp_path: Path) -> None:
    """With no trusted root, the clear fields are shown and the chain is not checked."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / "validator.yaml"
    settings = yaml.safe_load(path.read_text())
    del settings["pki"]
    path.write_text(yaml.safe_dump(settings))
    view = inspected(PkiCard(CARDS / "multi_trip.yaml", SERIAL), config).certificates
    assert view is not None and not view.verified
    assert view.verdict.startswith("not checked")
    assert view.card is not None and view.card.serial == SERIAL
    assert view.content is None


def test_symmetric_card_has_no_certificates() -> None:
    """A card without PKI mode shows no certificate section (and reads none)."""
    result = CliRunner().invoke(
        main,
        [
            "inspect",
            "--config",
            str(CONFIG),
            "--card-profile",
            str(CARDS / "multi_trip.yaml"),
            "--json",
        ],
    )
    assert json.loads(result.output)["certificates"] is None
