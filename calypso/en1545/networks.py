# SPDX-License-Identifier: Apache-2.0
"""Network tables: what a network's coded values mean, for display (``validator inspect``).

The network id (EnvNetworkId, or a record's own network field) names the tables an Intercode
card's service providers, event codes, locations and tariffs are read with. A network without a
table of its own is read with the generic Intercode tables (calypso-data-model 2.5). Facts only,
from public descriptions (no code copied):

* 250901 Navigo (Île-de-France): providers 2 SNCF, 3 RATP and the transport modes (cardpeek
  c250n901.lua); a metro, tram or train location of RATP or SNCF is sector (id >> 9), station
  ((id >> 4) & 1Fh) and gate group (id & Fh), with the sector names of Metrodroid's
  IntercodeLookupNavigo (reference section 2.5);
* 250916 Tisséo (Toulouse): provider 1 Tisséo (Metrodroid IntercodeLookupTisseo);
* 250502 OùRA (Grenoble, Lyon): provider 3 TAG, transport mode 1 a tram on TAG, the transitions
  it names (cardpeek c250n502.lua), and tariff 6601h "billet tarif normal" (Metrodroid
  IntercodeLookupOura).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from calypso.en1545.codes import MODES, NETWORKS, TRANSITIONS

Locator = Callable[[int, int | None, int | None], str | None]  # (id, provider, mode) -> text


def _plain(location: int, provider: int | None, mode: int | None) -> str | None:
    return None  # the generic tables name no location


@dataclass(frozen=True)
class NetworkTable:
    """The tables a network's coded values are read with, and where they come from."""

    network_id: int  # BCD, e.g. 0x250901; 0 for the generic tables
    name: str
    providers: Mapping[int, str] = field(default_factory=dict)
    modes: Mapping[int, str] = field(default_factory=lambda: MODES)
    transitions: Mapping[int, str] = field(default_factory=lambda: TRANSITIONS)
    locations: Locator = _plain
    location_table: str = "none (location ids as numbers)"
    tariffs: Mapping[int, str] = field(default_factory=dict)
    sources: str = "calypso-data-model 2.5 (generic Intercode tables)"

    @property
    def digits(self) -> str:
        """The network id as its digits ("250901"), or "generic"."""
        return f"{self.network_id:06X}" if self.network_id else "generic"

    def provider(self, code: int) -> str | None:
        """A service provider's name."""
        return self.providers.get(code)

    def event_code(self, code: int) -> str:
        """EventCode: transport mode (high nibble) and transition (low nibble)."""
        mode = self.modes.get(code >> 4, f"mode {code >> 4:X}h")
        transition = self.transitions.get(code & 0xF, f"transition {code & 0xF:X}h")
        return f"{mode}, {transition}"

    def location(self, location: int, provider: int | None, mode: int | None) -> str | None:
        """What a location id names, where the network's table says."""
        return self.locations(location, provider, mode)

    def tariff(self, tariff: int) -> str | None:
        """A tariff's name, where the network's table names it."""
        return self.tariffs.get(tariff)

    def describe(self) -> dict[str, str]:
        """Which tables are used, for display."""
        return {
            "network": self.digits,
            "name": self.name,
            "providers": ", ".join(f"{k} {v}" for k, v in sorted(self.providers.items()))
            or "none (provider codes as numbers)",
            "event_codes": "the network's" if self.modes is not MODES else "generic Intercode",
            "locations": self.location_table,
            "sources": self.sources,
        }


# Navigo sectors (Metrodroid IntercodeLookupNavigo): metro and RER sector numbers.
NAVIGO_SECTORS = {
    1: "Cité",
    2: "Rennes",
    3: "Villette",
    4: "Montparnasse",
    5: "Nation",
    6: "Saint-Lazare",
    7: "Auteuil",
    8: "République",
    9: "Austerlitz",
    10: "Invalides",
    11: "Sentier",
    12: "Île Saint-Louis",
    13: "Daumesnil",
    14: "Italie",
    15: "Denfert",
    16: "Félix Faure",
    17: "Passy",
    18: "Étoile",
    19: "Clichy - Saint Ouen",
    20: "Montmartre",
    21: "Lafayette",
    22: "Buttes Chaumont",
    23: "Belleville",
    24: "Père Lachaise",
    25: "Charenton",
    26: "Ivry - Villejuif",
    27: "Vanves",
    28: "Issy",
    29: "Levallois",
    30: "Péreire",
    31: "Pigalle",
}
NAVIGO_SNCF, NAVIGO_RATP = 2, 3
RAIL_MODES = (0x3, 0x4, 0x5)  # metro, tram, train


def navigo_location(location: int, provider: int | None, mode: int | None) -> str | None:
    """A RATP or SNCF metro, tram or train location: sector, station, gate group."""
    if provider not in (NAVIGO_SNCF, NAVIGO_RATP) or mode not in RAIL_MODES:
        return None
    sector, station, gate = location >> 9, (location >> 4) & 0x1F, location & 0xF
    name = NAVIGO_SECTORS.get(sector)
    where = f"sector {sector} ({name})" if name else f"sector {sector}"
    return f"{where}, station {station}, gate group {gate}"


GENERIC = NetworkTable(0, "generic Intercode")
NAVIGO = NetworkTable(
    0x250901,
    "Navigo (Île-de-France)",
    providers={NAVIGO_SNCF: "SNCF", NAVIGO_RATP: "RATP"},
    modes={k: MODES[k] for k in (0x1, 0x2, 0x3, 0x4, 0x5, 0x8)},
    locations=navigo_location,
    location_table="sector / station / gate group (RATP, SNCF metro, tram and train)",
    sources="cardpeek c250n901.lua (providers, modes); Metrodroid IntercodeLookupNavigo "
    "(location split, sector names)",
)
TISSEO = NetworkTable(
    0x250916,
    "Tisséo (Toulouse)",
    providers={1: "Tisséo"},
    sources="Metrodroid IntercodeLookupTisseo (provider); generic Intercode event codes",
)
OURA = NetworkTable(
    0x250502,
    "OùRA (Grenoble/Lyon)",
    providers={3: "TAG (Grenoble)"},
    modes={**MODES, 0x1: "tram (TAG)"},
    transitions={k: TRANSITIONS[k] for k in (0x1, 0x2, 0x4, 0x6, 0x7)},
    tariffs={0x6601: "billet tarif normal"},
    sources="cardpeek c250n502.lua (provider, modes, transitions); Metrodroid "
    "IntercodeLookupOura (tariff)",
)
TABLES = {table.network_id: table for table in (NAVIGO, TISSEO, OURA)}


def network_table(network_id: int | None) -> NetworkTable:
    """The tables of a network id, or the generic ones (an unknown or absent network)."""
    if network_id is None:
        return GENERIC
    table = TABLES.get(network_id)
    if table is not None:
        return table
    name = NETWORKS.get(network_id)
    if name is None:
        return GENERIC
    return NetworkTable(network_id, name, sources=GENERIC.sources)
