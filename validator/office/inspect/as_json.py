# SPDX-License-Identifier: Apache-2.0
"""JSON forms of a card inspection and of decoded records (``--json`` of inspect and decode)."""

from __future__ import annotations

from typing import Any

from calypso.commands.select import ApplicationInfo
from calypso.constants import ProductType
from calypso.en1545 import Decoded
from calypso.en1545.networks import NetworkTable, network_table
from validator.office.inspect.certificates import certificates_json
from validator.office.inspect.read import FileView, Inspection, RecordView, SecureRead


def inspection_json(result: Inspection) -> dict[str, Any]:
    """The inspection as one JSON document."""
    table = result.network
    return {
        "application": application_json(result.app),
        "layout": result.layout,
        "network": table.describe() if table is not None else None,
        "read": "secure session" if result.secure is not None else "free read",
        "secure_session": _secure_json(result.secure),
        "files_source": result.files_source,
        "files": [_file_json(f, table) for f in result.files],
        "apdus": result.apdus,
        "certificates": (
            certificates_json(result.certificates) if result.certificates is not None else None
        ),
    }


def application_json(app: ApplicationInfo) -> dict[str, Any]:
    """The application's identity and capabilities (calypso-data-model 1.2)."""
    startup = app.startup
    options = [
        name
        for name, on in (
            ("pin", startup.has_pin),
            ("stored_value", startup.has_stored_value),
            ("ratification_command", startup.ratification_command_required),
            ("extended_mode", startup.extended_mode),
            ("pki", startup.pki_mode),
        )
        if on
    ]
    buffer: dict[str, Any] = {"indicator": startup.buffer_indicator}
    if app.product_type in (ProductType.PRIME_REVISION_3, ProductType.LIGHT):
        buffer["bytes"] = startup.session_buffer_bytes
    else:
        buffer["commands"] = startup.session_buffer_commands or 3  # Rev1: 3 (section 1.2)
    return {
        "aid": app.df_name.hex().upper() or None,
        "serial": app.serial.hex().upper(),
        "product_type": app.product_type.name,
        "startup_info": startup.raw.hex().upper(),
        "platform": startup.platform,
        "application_type": startup.application_type,
        "application_subtype": startup.application_subtype,
        "software": {
            "issuer": startup.software_issuer,
            "version": startup.software_version,
            "revision": startup.software_revision,
        },
        "options": options,
        "session_buffer": buffer,
        "invalidated": app.invalidated,
    }


def _secure_json(secure: SecureRead | None) -> dict[str, Any] | None:
    if secure is None:
        return None
    return {
        "kif": f"{secure.kif:02X}" if secure.kif is not None else None,
        "kvc": f"{secure.kvc:02X}" if secure.kvc is not None else None,
        "transaction_counter": secure.transaction_counter,
        "previous_session_ratified": secure.ratified,
        "mac_verified": secure.mac_verified,
        "error": secure.error,
    }


def _file_json(view: FileView, table: NetworkTable | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": view.name,
        "sfi": f"{view.sfi:02X}",
        "lid": f"{view.lid:04X}" if view.lid is not None else None,
        "type": view.ef_type,
        "record_size": view.record_size,
        "records": view.records,
        "structure": view.structure.name if view.structure is not None else None,
    }
    if view.error is not None:
        out["error"] = view.error
    out["content"] = [record_json(item, table) for item in view.items]
    return out


def record_json(item: RecordView, table: NetworkTable | None = None) -> dict[str, Any]:
    """One record: number, hex, and its decoded fields (coded values named with ``table``)."""
    out: dict[str, Any] = {"record": item.number, "hex": item.data.hex().upper()}
    if item.structure is not None:
        out["contract_structure"] = item.structure
    if item.counters is not None:
        out.update(item.counters.to_json())  # each counter as its contract reads it
    if item.decoded is not None:
        out["empty"] = item.decoded.empty and item.counters is None
        if not item.decoded.empty:
            out.update(item.decoded.to_json())
            out["meanings"] = meanings(item.decoded, table)
            if item.decoded.structure.name == "counters":
                out["counter_values"] = counter_values(item.data)
    return out


def counter_values(data: bytes) -> dict[str, int]:
    """The plain 24-bit value of every counter of a counters record (section 1.4)."""
    return {
        f"Counter{n // 3 + 1}": int.from_bytes(data[n : n + 3], "big")
        for n in range(0, len(data) - 2, 3)
    }


PROVIDER_FIELDS = ("EventServiceProvider", "ContractProvider", "ContractSaleAgent")


def meanings(decoded: Decoded, table: NetworkTable | None = None) -> dict[str, str]:
    """What the coded fields of a record mean (EventCode, EventResult, networks...); with a
    network's ``table`` (Intercode), its providers, event codes, locations and tariffs."""
    out: dict[str, str] = {}
    provider, code = decoded.get("EventServiceProvider"), decoded.get("EventCode")
    for path, fld, raw in decoded.leaves():
        text = _network_meaning(table, fld.name, raw, provider, code) if table else None
        if text is None and fld.meaning is not None:
            text = fld.meaning(raw)
        if text:
            out[path] = text
    return out


def record_network(decoded: Decoded) -> NetworkTable:
    """The tables of the network a record names itself (EventNetworkId, ...), else generic."""
    for name in NETWORK_FIELDS:
        raw = decoded.get(name)
        if raw is not None:
            return network_table(raw)
    return network_table(None)


NETWORK_FIELDS = ("EnvNetworkId", "EventNetworkId", "ContractNetworkId", "BestContractNetworkId")


def _network_meaning(
    table: NetworkTable, name: str, raw: int, provider: int | None, code: int | None
) -> str | None:
    if name in PROVIDER_FIELDS:
        return table.provider(raw)
    if name == "EventCode":
        return table.event_code(raw)
    if name == "EventLocationId":
        return table.location(raw, provider, code >> 4 if code is not None else None)
    if name == "ContractTariff":
        return table.tariff(raw)
    return None
