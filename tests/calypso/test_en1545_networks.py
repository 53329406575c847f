# SPDX-License-Identifier: Apache-2.0
"""Network tables: the network id names the providers, event codes and locations read."""

from __future__ import annotations

import pytest

from calypso.en1545.networks import GENERIC, NAVIGO, OURA, TISSEO, network_table


class TestChoice:
    """A network id chooses its tables; any other reads with the generic ones."""

    @pytest.mark.parametrize(
        ("network", "table"),
        [(0x250901, NAVIGO), (0x250916, TISSEO), (0x250502, OURA), (None, GENERIC)],
    )
    def test_known_networks(self, network: int | None, table: object) -> None:
        """Navigo, Tisséo and OùRA have tables of their own; no network is generic."""
        assert network_table(network) is table

    def test_a_named_network_without_tables_is_generic(self) -> None:
        """TaM (250064) is named, and read with the generic providers and codes."""
        tam = network_table(0x250064)
        assert tam.name == "TaM Montpellier" and tam.providers == {}
        assert tam.event_code(0x31) == GENERIC.event_code(0x31) == "metro, entry"
        assert network_table(0x999999) is GENERIC


class TestNavigo:
    """Navigo's providers and its sector / station / gate group locations."""

    def test_providers_and_codes(self) -> None:
        """2 is SNCF, 3 RATP; EventCode 31h is a metro entry."""
        assert (NAVIGO.provider(2), NAVIGO.provider(3), NAVIGO.provider(9)) == (
            "SNCF",
            "RATP",
            None,
        )
        assert NAVIGO.event_code(0x36) == "metro, interchange entry"

    def test_rail_locations_split(self) -> None:
        """A RATP metro location: sector id >> 9 (named), station bits 4-8, gate bits 0-3."""
        location = 18 << 9 | 7 << 4 | 2
        assert NAVIGO.location(location, 3, 0x3) == "sector 18 (Étoile), station 7, gate group 2"
        assert NAVIGO.location(location, 3, 0x1) is None  # a bus stop: no such split
        assert NAVIGO.location(location, 29, 0x3) is None  # another provider


class TestOthers:
    """Tisséo's and OùRA's own tables."""

    def test_tisseo_provider(self) -> None:
        """Provider 1 is Tisséo; its event codes are the generic ones."""
        assert TISSEO.provider(1) == "Tisséo"
        assert TISSEO.describe()["event_codes"] == "generic Intercode"

    def test_oura_tables(self) -> None:
        """Provider 3 is TAG, mode 1 a TAG tram, tariff 6601h a normal ticket."""
        assert OURA.provider(3) == "TAG (Grenoble)"
        assert OURA.event_code(0x11) == "tram (TAG), entry"
        assert OURA.tariff(0x6601) == "billet tarif normal"
        assert OURA.describe()["network"] == "250502"
