# SPDX-License-Identifier: Apache-2.0
"""Intercode code tables (calypso-data-model 2.2-2.5): what coded field values mean."""

from __future__ import annotations

from enum import IntEnum


class TransportMode(IntEnum):
    """EventCode high nibble (section 2.5)."""

    UNSPECIFIED = 0x0
    URBAN_BUS = 0x1
    INTERURBAN_BUS = 0x2
    METRO = 0x3
    TRAM = 0x4
    TRAIN = 0x5
    PARKING = 0x8
    VAL = 0xE


class Transition(IntEnum):
    """EventCode low nibble (section 2.5)."""

    ENTRY = 0x1
    EXIT = 0x2
    PASSAGE = 0x3
    INSPECTION = 0x4
    TEST = 0x5
    INTERCHANGE_ENTRY = 0x6
    INTERCHANGE_EXIT = 0x7
    CANCELLED = 0x9
    PUBLIC_ROAD_ENTRY = 0xA
    PUBLIC_ROAD_EXIT = 0xB
    DISTRIBUTION = 0xD
    INVALIDATION = 0xF


class EventResult(IntEnum):
    """EventResult (section 2.5)."""

    OK = 0x00
    TRANSFER_OR_DYSFUNCTION = 0x07
    DISABLED_FOR_FRAUD = 0x08
    DISABLED_FOR_MONETARY_FRAUD = 0x09
    INVALIDATION_IMPOSSIBLE = 0x0A
    DOUBLE_VALIDATION_ENTRY = 0x30
    INVALID_ZONE = 0x31
    CONTRACT_EXPIRED = 0x32
    DOUBLE_VALIDATION_EXIT = 0x33


MODES = {
    0x0: "unspecified",
    0x1: "urban bus",
    0x2: "interurban bus",
    0x3: "metro",
    0x4: "tram",
    0x5: "train",
    0x8: "parking",
    0xE: "VAL",
}
TRANSITIONS = {
    0x1: "entry",
    0x2: "exit",
    0x3: "validation",
    0x4: "inspection",
    0x5: "test validation",
    0x6: "interchange entry",
    0x7: "interchange exit",
    0x9: "validation cancelled",
    0xA: "public-road entry",
    0xB: "public-road exit",
    0xD: "distribution",
    0xF: "invalidation",
}
_RESULTS = {
    0x00: "OK",
    0x07: "transfer / dysfunction",
    0x08: "disabled for fraud",
    0x09: "disabled for monetary fraud",
    0x0A: "invalidation impossible",
    0x30: "double validation (entry)",
    0x31: "invalid zone",
    0x32: "contract expired",
    0x33: "double validation (exit)",
}
NETWORKS = {
    0x250000: "Pass Pass (Lille)",
    0x250064: "TaM Montpellier",
    0x250502: "OùRA (Grenoble/Lyon)",
    0x250901: "Navigo (Île-de-France)",
    0x250908: "KorriGo (Rennes)",
    0x250916: "Tisséo (Toulouse)",
    0x250920: "Envibus",
    0x250921: "Gironde",
}
_CONTRACT_STATUS = {
    0x00: "valid, never used",
    0x01: "valid, used",
    0x03: "renewal required",
    0x0D: "not validable",
    0x13: "blocked",
    0x3F: "suspended",
    0x58: "invalid",
    0x7F: "refunded",
    0xFF: "erasable",
}
_CARD_STATUS = {0: "anonymous", 1: "identified", 2: "personalised", 3: "network-specific"}


def event_code(raw: int) -> str | None:
    """EventCode: transport mode (high nibble) and transition (low nibble)."""
    mode = MODES.get(raw >> 4, f"mode {raw >> 4:X}h")
    transition = TRANSITIONS.get(raw & 0xF, f"transition {raw & 0xF:X}h")
    return f"{mode}, {transition}"


def event_result(raw: int) -> str | None:
    """EventResult."""
    return _RESULTS.get(raw)


def network(raw: int) -> str | None:
    """A network id (BCD country + network) by name, for the networks in section 2.5."""
    return NETWORKS.get(raw)


def contract_status(raw: int) -> str | None:
    """ContractStatus (section 2.3)."""
    return _CONTRACT_STATUS.get(raw)


def application_version(raw: int) -> str | None:
    """EnvApplicationVersionNumber: Intercode generation (high 3 bits) and sub-version."""
    generation = {0: "Intercode I", 1: "Intercode II"}.get(raw >> 3, f"generation {raw >> 3}")
    return f"{generation} v{raw & 7}"


def card_status(raw: int) -> str | None:
    """HolderDataCardStatus: low 2 bits, bit 2 = linked to an organisation (section 2.2)."""
    text = _CARD_STATUS[raw & 3]
    return f"{text}, linked to an organisation" if raw & 4 else text


def best_contract_tariff(raw: int) -> str | None:
    """BestContractTariff: 4-bit sort key, 8-bit contract type, 4-bit priority (section 2.4)."""
    return f"sort key {raw >> 12}, contract type {(raw >> 4) & 0xFF:02X}h, priority {raw & 0xF}"


def carnet_counter(raw: int) -> str | None:
    """A 24-bit counter read as a carnet: 6-bit journeys left, 18-bit first stamp (2.6)."""
    return f"{raw >> 18} journeys, first stamp {raw & 0x3FFFF} quarter-hours"
