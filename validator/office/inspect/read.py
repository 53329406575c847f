# SPDX-License-Identifier: Apache-2.0
"""``validator inspect``: read a whole card and decode every record with its layout.

Select the application (settings' AIDs, then the well-known ones of calypso-data-model 1.1;
a Rev1 card is known from its B-prime ATR), list its files (Get Data EF list where the card
supports it, section 1.3 B, else the layout's file map), read every record and decode it with
the layout's structures (EN 1545 for Intercode, section 2; the demo's byte layout, section 3.3).

A free read sends only Select, Get Data and Read Records. ``secure=True`` reads inside a DEBIT
secure session closed with the card MAC checked by the SAM (nothing is written either way).
A PKI card's certificates are read and judged too (validator.office.inspect.certificates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from calypso.card_image import CalypsoCard
from calypso.commands.files import (
    EfListEntry,
    EfType,
    GetDataTag,
    get_data,
    parse_get_data_ef_list,
)
from calypso.commands.records import ReadMode, parse_read_records, read_records
from calypso.commands.select import (
    ApplicationInfo,
    aid_matches,
    parse_bprime_atr,
    parse_select_application,
    select_application,
)
from calypso.constants import ProductType, WriteAccessLevel
from calypso.en1545 import Decoded, decode
from calypso.en1545 import keyple_demo as demo_tables
from calypso.en1545.networks import NetworkTable, network_table
from calypso.en1545.schema import Structure
from calypso.errors import CardCommandError, CardResponseError, RecordNotFoundError
from calypso.layouts import demo as demo_layout
from calypso.layouts import intercode
from calypso.layouts.intercode import (
    CONTRACT_RECORDS,
    SFI_CONTRACT_LIST,
    SFI_CONTRACTS,
    SFI_CONTRACTS_2,
    SFI_COUNTERS,
    SFI_ENVIRONMENT,
)
from readers.base import CardConnection
from readers.channel import ApduChannel
from validator.engine.fares.decide import FareRules
from validator.engine.layouts.intercode_titles import card_titles
from validator.engine.pki.trust import CardTrust
from validator.engine.session import Ratification, SecureSession, SessionError
from validator.office.inspect.certificates import CertificatesView, read_certificates
from validator.office.inspect.counters import CountersRecord, read_counters, short_record

# Well-known Calypso AIDs (calypso-data-model 1.1), tried after the configured ones.
KNOWN_AIDS = (
    "315449432E49434131",  # 1TIC.ICA1, Keyple test kit
    "A0000004040125090101",  # normalized IDF (Navigo)
    "315449432E494341",  # 1TIC.ICA, generic CNA / Intercode
    "315449432E49434133",  # 1TIC.ICA3, Calypso Light
    "A000000291FF9101",  # Keyple generic test card
    "A000000291FF9201",  # test kit stored value
)
BPRIME_ATR_PREFIX = bytes.fromhex("3B6F0000805A")
EF_TYPE_NAMES: dict[int, str] = {
    EfType.BINARY: "binary",
    EfType.LINEAR: "linear",
    EfType.CYCLIC: "cyclic",
    EfType.SIMULATED_COUNTERS: "simulated counter",
    EfType.COUNTERS: "counters",
}
_RECORD_TYPES = (EfType.LINEAR, EfType.CYCLIC, EfType.COUNTERS, EfType.SIMULATED_COUNTERS)
_DEMO_FILES = (
    intercode.FileEntry(
        "environment", demo_layout.SFI_ENVIRONMENT, 0x2001, 1, demo_tables.ENVIRONMENT
    ),
    intercode.FileEntry("event_log", demo_layout.SFI_EVENTS, 0x2010, 3, demo_tables.EVENT),
    intercode.FileEntry("contracts", demo_layout.SFI_CONTRACTS, 0x2020, 4, demo_tables.CONTRACT),
    intercode.FileEntry("counters", demo_layout.SFI_COUNTERS, 0x2069, 1, demo_tables.COUNTERS),
)
LAYOUT_FILES: dict[str, tuple[intercode.FileEntry, ...]] = {
    "demo": _DEMO_FILES,
    "intercode": intercode.FILES,
}
STRUCTURES: dict[str, Mapping[str, Structure]] = {
    "demo": demo_tables.STRUCTURES,
    "intercode": {s.name: s for s in (f.structure for f in intercode.FILES)},
}
SecureOpener = Callable[[ApduChannel, CalypsoCard], SecureSession]


class InspectError(Exception):
    """The card could not be inspected (no Calypso application found)."""


@dataclass
class RecordView:
    """One record as read, and decoded when the layout knows the file."""

    number: int
    data: bytes
    decoded: Decoded | None = None
    counters: CountersRecord | None = None  # a counters record, read by its contracts
    structure: str | None = None  # an Intercode contract's structure ("20h", ...), as listed


@dataclass
class FileView:
    """One elementary file: where it is, what it holds, and its records."""

    name: str
    sfi: int
    lid: int | None
    ef_type: str
    record_size: int
    records: int
    structure: Structure | None
    items: list[RecordView] = field(default_factory=list)
    error: str | None = None


@dataclass
class SecureRead:
    """How a secure read went: the key used, the counter, and the MAC check."""

    kif: int | None = None
    kvc: int | None = None
    transaction_counter: int | None = None
    ratified: bool | None = None
    mac_verified: bool = False
    error: str | None = None


@dataclass
class Inspection:
    """Everything read from one card."""

    app: ApplicationInfo
    layout: str
    files_source: str
    files: list[FileView]
    secure: SecureRead | None = None
    apdus: int = 0
    network: NetworkTable | None = None  # the tables an Intercode card is read with
    certificates: CertificatesView | None = None  # a PKI card's


def layout_name(df_name: bytes, layouts: Mapping[str, str], default: str = "demo") -> str:
    """The layout the settings give this application (AID hex prefix -> name; the longest
    prefix that matches wins, as at the gate)."""
    matches = [aid for aid in layouts if df_name.startswith(bytes.fromhex(aid))]
    return layouts[max(matches, key=len)] if matches else default


def select(channel: ApduChannel, atr: bytes, aids: Sequence[bytes]) -> ApplicationInfo:
    """Select the first AID that answers with a matching DF name; Rev1 cards by their ATR."""
    if atr.startswith(BPRIME_ATR_PREFIX):
        return parse_bprime_atr(atr)
    for aid in dict.fromkeys(aids):
        command = select_application(aid)
        response = channel.transmit(command)
        try:
            info = parse_select_application(response, command)
        except (CardCommandError, CardResponseError):  # refused, or not a Calypso FCI
            continue
        if aid_matches(aid, info.df_name):
            return info
    raise InspectError("no Calypso application answered (tried the configured and known AIDs)")


def inspect_card(
    connection: CardConnection,
    *,
    aids: Sequence[bytes],
    layouts: Mapping[str, str],
    layout: str | None = None,
    secure: SecureOpener | None = None,
    rules: FareRules | None = None,
    pki: CardTrust | None = None,
    today: dt.date | None = None,
) -> Inspection:
    """Read and decode the whole card; ``secure`` opens the session the reads go through;
    ``rules`` tell what each contract's counter holds (validator.office.inspect.counters);
    a PKI card's chain is verified with ``pki`` (the settings' roots and policy) at ``today``."""
    channel = ApduChannel(connection, label="card")
    known = [bytes.fromhex(aid) for aid in KNOWN_AIDS]
    app = select(channel, connection.atr, [*aids, *known])
    name = layout or layout_name(app.df_name, layouts)
    certificates = None
    if app.startup.pki_mode:
        certificates = read_certificates(channel, app, pki, today or dt.date.today())
    files, source = _file_list(channel, app, name)
    result = Inspection(app, name, source, files, certificates=certificates)
    if secure is None:
        for view in files:
            _free_read(channel, app, view)
    else:
        result.secure = _secure_read(secure, channel, app, files)
    if name == "intercode":
        result.network = _read_intercode(files, rules)
    else:
        _short_counters(files)
    result.apdus = len(channel.exchanges)
    return result


def _counter_views(files: list[FileView]) -> list[FileView]:
    return [
        v for v in files if v.sfi == SFI_COUNTERS and v.ef_type == EF_TYPE_NAMES[EfType.COUNTERS]
    ]


def _short_counters(files: list[FileView]) -> None:
    """In any layout, a counters record shorter than one counter is shown as such."""
    for view in _counter_views(files):
        for item in view.items:
            item.counters = short_record(item.data)


def _first(files: list[FileView], sfi: int) -> bytes | None:
    view = next((v for v in files if v.sfi == sfi), None)
    return view.items[0].data if view is not None and view.items else None


def _read_intercode(files: list[FileView], rules: FareRules | None) -> NetworkTable:
    """Read an Intercode card as the gate does (section 2.4, 1.4): each contract with the
    structure its contract-list entry names, each counter by the contracts that use it; and
    the network's tables (calypso.en1545.networks) from the environment's network id."""
    contracts: dict[int, bytes] = {}
    items: dict[int, RecordView] = {}
    for view in files:
        first = {SFI_CONTRACTS: 1, SFI_CONTRACTS_2: 1 + CONTRACT_RECORDS}.get(view.sfi)
        if first is None or view.structure is None:
            continue
        for item in view.items:
            contracts[first + item.number - 1] = item.data
            items[first + item.number - 1] = item
    read = card_titles(
        _first(files, SFI_ENVIRONMENT), _first(files, SFI_CONTRACT_LIST), contracts, rules
    )
    for pointer, (decoded, label) in read.contracts.items():
        items[pointer].decoded, items[pointer].structure = decoded, label
    for view in _counter_views(files):
        for item in view.items:
            item.counters = read_counters(item.data, read)
    network = read.environment.network if read.environment is not None else None
    return network_table(int(network, 16) if network is not None else None)


def _file_list(
    channel: ApduChannel, app: ApplicationInfo, layout: str
) -> tuple[list[FileView], str]:
    """Files from Get Data EF list (Rev3, Light, Basic) or else the layout's file map."""
    by_sfi = {entry.sfi: entry for entry in LAYOUT_FILES.get(layout, ())}
    if app.product_type not in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
        command = get_data(GetDataTag.EF_LIST, cla=app.card_class)
        response = channel.transmit(command)
        try:
            entries = parse_get_data_ef_list(response, command)
        except (CardCommandError, CardResponseError):  # refused (no EF list) or malformed
            entries = ()
        if entries:
            order = list(by_sfi)  # the layout's order first, then the other files by SFI
            entries = tuple(
                sorted(entries, key=lambda e: order.index(e.sfi) if e.sfi in order else 99)
            )
            return [_entry_view(e, by_sfi.get(e.sfi)) for e in entries], "Get Data EF list"
    views = [
        FileView(e.name, e.sfi, e.lid, "record file", e.record_size, e.records, e.structure)
        for e in by_sfi.values()
    ]
    return views, f"{layout} layout map"


def _entry_view(entry: EfListEntry, known: intercode.FileEntry | None) -> FileView:
    ef_type = EF_TYPE_NAMES.get(entry.ef_type, f"type {entry.ef_type:02X}h")
    structure = known.structure if known is not None else None
    if entry.ef_type == EfType.SIMULATED_COUNTERS:
        structure = None
    name = known.name if known is not None else f"EF {entry.lid:04X}"
    return FileView(
        name, entry.sfi, entry.lid, ef_type, entry.record_size, entry.records, structure
    )


def _readable(view: FileView) -> bool:
    return view.ef_type not in (EF_TYPE_NAMES[EfType.BINARY],) and view.records > 0


def _free_read(channel: ApduChannel, app: ApplicationInfo, view: FileView) -> None:
    """Read the file's records one by one outside any session; stop at a missing record."""
    if not _readable(view):
        return
    for number in range(1, view.records + 1):
        command = read_records(view.sfi, number, le=view.record_size, cla=app.card_class)
        response = channel.transmit(command)
        try:
            got = parse_read_records(response, record=number, mode=ReadMode.ONE, command=command)
        except RecordNotFoundError as exc:
            if number > 1:
                break  # past the last record
            view.error = str(exc)
            return
        except (CardCommandError, CardResponseError) as exc:
            view.error = str(exc)
            return
        _add(view, got)


def _add(view: FileView, records: Mapping[int, bytes]) -> None:
    for number, data in sorted(records.items()):
        decoded = decode(view.structure, data) if view.structure is not None else None
        view.items.append(RecordView(number, data, decoded))


class _ReadRefused(Exception):
    """A record read failed inside the session (the session is aborted; the file is skipped)."""


def _secure_read(
    opener: SecureOpener, channel: ApduChannel, app: ApplicationInfo, files: list[FileView]
) -> SecureRead:
    """Read every readable file inside a DEBIT session, close it and check the card MAC.

    A read the card refuses (a file behind a PIN, a file the map lists but the card lacks)
    aborts the session: a new one is opened without that file, so that the MAC covers all
    that is shown.
    """
    readable = [view for view in files if _readable(view)]
    while True:
        for view in readable:
            view.items.clear()
        report = SecureRead()
        try:
            _secure_pass(opener(channel, CalypsoCard(app)), readable, report)
        except _ReadRefused:
            readable = [view for view in readable if view.error is None]
            continue
        return report


def _secure_pass(session: SecureSession, readable: list[FileView], report: SecureRead) -> None:
    with session:
        try:
            first = readable[0] if readable else None
            opened = session.open(
                WriteAccessLevel.DEBIT, read=(first.sfi, 1) if first is not None else None
            )
            report.kif, report.kvc = opened.kif, opened.kvc
            report.transaction_counter = opened.transaction_counter
            report.ratified = opened.ratified
            if first is not None:
                _add(first, {1: opened.record_data})
            for view in readable:
                start = 2 if view is first else 1
                if start > view.records:
                    continue
                try:
                    got = session.read_records(
                        view.sfi,
                        start,
                        count=view.records - start + 1,
                        record_size=view.record_size,
                    )
                except (CardCommandError, CardResponseError) as exc:
                    view.error = str(exc)
                    raise _ReadRefused from exc  # leaving the block aborts the session
                _add(view, got)
            session.close(Ratification.IMMEDIATE)  # no ratification command: nothing to ratify
            report.mac_verified = session.mac_verified
        except (SessionError, CardCommandError, CardResponseError) as exc:
            report.error = str(exc)
