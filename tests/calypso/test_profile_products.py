# SPDX-License-Identifier: Apache-2.0
"""Profile schema for product types and features: the shipped extra profiles, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from calypso.constants import ProductType
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import ProfileError, load_profile

OTHER = Path(__file__).parents[2] / "config" / "cards" / "other"
BASE = """
serial: "0000000011223344"
keys:
  issuer: {kif: "21", kvc: "F0", master: "000102030405060708090A0B0C0D0E0F"}
  load: {kif: "27", kvc: "F0", master: "101112131415161718191A1B1C1D1E1F"}
  debit: {kif: "30", kvc: "F0", master: "202122232425262728292A2B2C2D2E2F"}
"""


class TestShippedProfiles:
    """Every profile of config/cards/other loads and has the product type its name says."""

    @pytest.mark.parametrize(
        ("name", "product"),
        [
            ("cna_test_kit", ProductType.PRIME_REVISION_3),
            ("navigo_intercode", ProductType.PRIME_REVISION_3),
            ("rev1", ProductType.PRIME_REVISION_1),
            ("rev2", ProductType.PRIME_REVISION_2),
            ("light", ProductType.LIGHT),
            ("basic", ProductType.BASIC),
            ("extended", ProductType.PRIME_REVISION_3),
            ("stored_value", ProductType.PRIME_REVISION_3),
        ],
    )
    def test_loads(self, name: str, product: ProductType) -> None:
        """The profile is valid and builds an emulator of its product type."""
        card = CardEmulator(load_profile(OTHER / f"{name}.yaml"))
        assert card.product is product


class TestRefusals:
    """A wrong profile is refused with its path, the line and the field."""

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ('product: light\nstartup_info: "0A3C2005141001"\n', "product does not match"),
            ('startup_info: "0A3C2005141001"\nsv: {balance: 1}\n', "stored-value bit"),
            ('startup_info: "0A3C2005141001"\npin: {value: "30303030"}\n', "PIN bit"),
            ('startup_info: "0A3C2005141001"\npostpones_counters: true\n', "Rev1/Rev2"),
            ("files:\n  - {name: b, sfi: 1, lid: '2F01', type: binary}\n", "size"),
            (
                "files:\n  - {name: s, sfi: 1, lid: '2F01', type: simulated_counter,"
                " counter_view: {sfi: 25, counter: 1}}\n",
                "not a counters file",
            ),
        ],
    )
    def test_refused(self, tmp_path: Path, extra: str, field: str) -> None:
        """The error names the file and says what is wrong, never the key material."""
        path = tmp_path / "card.yaml"
        path.write_text(BASE + extra, encoding="utf-8")
        with pytest.raises(ProfileError) as caught:
            load_profile(path)
        message = str(caught.value)
        assert str(path) in message and field in message
        assert "0001020304" not in message
