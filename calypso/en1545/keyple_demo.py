# SPDX-License-Identifier: Apache-2.0
"""The Keyple demo's byte-aligned records as EN 1545 containers (calypso-data-model 3.3).

The demo layout's value types live in calypso.layouts.demo; these tables let the same codec
show its records with field names (``validator decode --layout demo``, ``validator inspect``).
"""

from __future__ import annotations

from calypso.en1545.schema import Container, Field, Structure, fields
from calypso.en1545.types import Kind


def _priority(raw: int) -> str | None:
    """PriorityCode / demo ContractTariff (section 3.2)."""
    names = {0: "forbidden", 1: "season pass", 2: "multi-trip", 3: "stored value", 31: "expired"}
    return names.get(raw, "reserved")


ENVIRONMENT = Structure(
    "environment",
    Container(
        None,
        fields(
            ("EnvVersionNumber", 8),
            ("EnvApplicationNumber", 32),
            ("EnvIssuingDate", 16, Kind.DATE_COMPACT),
            ("EnvEndDate", 16, Kind.DATE_COMPACT),
            ("HolderCompany", 8),
            ("HolderIdNumber", 32),
        ),
    ),
    description="Environment/Holder (SFI 07h), Keyple demo layout",
)
EVENT = Structure(
    "event",
    Container(
        None,
        (
            *fields(
                ("EventVersionNumber", 8),
                ("EventDateStamp", 16, Kind.DATE_COMPACT),
                ("EventTimeStamp", 16, Kind.TIME_COMPACT),
                ("EventLocation", 32),
                ("EventContractUsed", 8),
            ),
            *(Field(f"ContractPriority{n}", 8, meaning=_priority) for n in range(1, 5)),
            # Byte 14: this project's extension in the demo's padding (0 entry, 1 interchange).
            Field("EventType", 8, meaning=lambda raw: {0: "entry", 1: "interchange"}.get(raw)),
        ),
    ),
    description="Event (SFI 08h), Keyple demo layout",
)
CONTRACT = Structure(
    "contract",
    Container(
        None,
        (
            Field("ContractVersionNumber", 8),
            Field("ContractTariff", 8, meaning=_priority),
            *fields(
                ("ContractSaleDate", 16, Kind.DATE_COMPACT),
                ("ContractValidityEndDate", 16, Kind.DATE_COMPACT),
                ("ContractSaleSam", 32),
                ("ContractSaleCounter", 24),
                ("ContractAuthKvc", 8),
                ("ContractAuthenticator", 24),
            ),
        ),
    ),
    description="Contract (SFI 09h), Keyple demo layout",
)
COUNTERS = Structure(
    "counters",
    Container(None, tuple(Field(f"Counter{n}", 24) for n in range(1, 10))),
    record_size=27,
    description="Counters (SFI 19h): one 3-byte counter per contract",
)

STRUCTURES = {s.name: s for s in (ENVIRONMENT, EVENT, CONTRACT, COUNTERS)}
