# SPDX-License-Identifier: Apache-2.0
"""The test PKI: the shipped fixtures verify, and ``python -m lab.pki`` makes new ones safely."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from calypso.emulator.profile import load_profile
from calypso.pki.chain import ChainPolicy, TrustedRoot, verify_chain
from calypso.pki.errors import CertificateScopeError, CertificateSignatureError
from calypso.pki.fields import PRODUCTION_SCOPES, TEST_SCOPES
from calypso.pki.testpki import TEST_CA_REFERENCE, TEST_ROOT_REFERENCE
from lab.paths import CONFIG
from lab.pki.__main__ import main
from lab.pki.material import CA_FILE, ROOT_FILE, load_root, load_test_pki

PKI = CONFIG / "pki"
PKI_CARDS = sorted((CONFIG / "cards" / "pki").glob("*.yaml"))
TODAY = dt.date(2026, 3, 2)


def root_of(folder: Path) -> TrustedRoot:
    """The trusted root of a test PKI folder, read from its public root file."""
    root = load_root(folder / ROOT_FILE)
    return TrustedRoot(root.reference(), root.public_key())


def verify(profile_path: Path, root: TrustedRoot, scopes: frozenset = TEST_SCOPES) -> bytes:
    """Verify a PKI card profile's chain; the card's public key."""
    profile = load_profile(profile_path)
    assert profile.pki is not None
    verified = verify_chain(
        profile.pki.card_certificate,
        [profile.pki.ca_certificate],
        [root],
        ChainPolicy(today=TODAY, scopes=scopes),
        serial=profile.serial,
        aid=profile.aid,
    )
    return verified.public_key.raw


class TestShippedFixtures:
    """config/pki and config/cards/pki: test material that verifies, and says it is test."""

    def test_every_pki_card_verifies(self) -> None:
        """Each shipped PKI card's chain verifies with the shipped test root, in test scope."""
        assert len(PKI_CARDS) >= 2
        keys = {verify(path, root_of(PKI)) for path in PKI_CARDS}
        assert len(keys) == len(PKI_CARDS)  # one key per card

    def test_refused_in_production_scope(self) -> None:
        """The test CA (scope 01h) is refused by a production policy, even with its root."""
        with pytest.raises(CertificateScopeError):
            verify(PKI_CARDS[0], root_of(PKI), PRODUCTION_SCOPES)

    def test_marked_as_test_material(self) -> None:
        """File names say test_pki, the first line says TEST MATERIAL, references say TEST."""
        files = sorted(PKI.glob("*.yaml")) + PKI_CARDS
        for path in files:
            assert path.name.startswith("test_pki_"), path
            assert path.read_text().startswith("# TEST MATERIAL"), path
        assert load_root(PKI / ROOT_FILE).test_material
        assert b"TESTPKIROOT" in TEST_ROOT_REFERENCE.raw and b"TESTPKICA" in TEST_CA_REFERENCE.raw
        pki = load_test_pki(PKI)
        assert pki.root.reference == TEST_ROOT_REFERENCE == root_of(PKI).reference

    def test_profiles_carry_the_shipped_ca(self) -> None:
        """The CA certificate in each card profile is config/pki/test_pki_ca.yaml's."""
        shipped = load_test_pki(PKI).ca_certificate
        assert (PKI / CA_FILE).exists()
        for path in PKI_CARDS:
            profile = load_profile(path)
            assert profile.pki is not None and profile.pki.ca_certificate == shipped


class TestTool:
    """``python -m lab.pki``: new test PKI, new card, nothing secret printed."""

    def test_make_and_issue(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """make-test-pki then issue-card: every profile verifies with the new root."""
        out, cards = tmp_path / "pki", tmp_path / "cards"
        assert main(["make-test-pki", "--out", str(out), "--cards-out", str(cards)]) == 0
        made = sorted(cards.glob("*.yaml"))
        assert [p.name for p in made] == ["test_pki_multi_trip.yaml", "test_pki_season_pass.yaml"]
        new_card = tmp_path / "extra.yaml"
        code = main(
            [
                "issue-card",
                "--pki",
                str(out),
                "--profile",
                str(CONFIG / "cards" / "multi_trip.yaml"),
                "--serial",
                "00000000C0FFEE42",
                "--out",
                str(new_card),
            ]
        )
        assert code == 0
        root = root_of(out)
        for path in [*made, new_card]:
            verify(path, root)
        with pytest.raises(CertificateSignatureError):  # same reference, another root key
            verify(made[0], root_of(PKI))
        printed = capsys.readouterr()
        self._assert_nothing_secret(printed.out + printed.err, out, [*made, new_card])

    def _assert_nothing_secret(self, text: str, pki: Path, cards: list[Path]) -> None:
        """No PEM, no private exponent, no card scalar in what the tool printed."""
        assert "PRIVATE KEY" not in text
        material = load_test_pki(pki)
        for authority in (material.root, material.ca):
            d = authority.private_key.private_numbers().d
            assert f"{d:X}"[:32] not in text.upper()
            pem = authority.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            assert pem.splitlines()[1] not in text
        for path in cards:
            profile = load_profile(path)
            assert profile.pki is not None
            assert profile.pki.private_key.get_secret_value().hex().upper() not in text.upper()

    def test_no_silent_overwrite(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A second make-test-pki into the same folder needs --force (exit 2, files kept)."""
        out, cards = tmp_path / "pki", tmp_path / "cards"
        assert main(["make-test-pki", "--out", str(out), "--cards-out", str(cards)]) == 0
        before = (out / ROOT_FILE).read_bytes()
        assert main(["make-test-pki", "--out", str(out), "--cards-out", str(cards)]) == 2
        assert (out / ROOT_FILE).read_bytes() == before
        assert "--force" in capsys.readouterr().err
