# SPDX-License-Identifier: Apache-2.0
"""Readable trees (rich) for ``validator inspect`` and ``validator decode``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from calypso.en1545.networks import NetworkTable
from validator.office.inspect.as_json import application_json, counter_values, meanings
from validator.office.inspect.certificates import CertificatesView, certificates_json
from validator.office.inspect.read import FileView, Inspection, RecordView


def print_inspection(result: Inspection, console: Console | None = None) -> None:
    """Print a whole card inspection as a tree."""
    (console or Console()).print(inspection_tree(result))


def print_record(
    item: RecordView,
    title: str,
    console: Console | None = None,
    table: NetworkTable | None = None,
) -> None:
    """Print one decoded record as a tree (coded values named with ``table``)."""
    tree = Tree(f"[bold]{escape(title)}[/]")
    _record_into(tree, item, numbered=False, table=table)
    (console or Console()).print(tree)


def inspection_tree(result: Inspection) -> Tree:
    """The card as a tree: application, how it was read, files and decoded records."""
    app = application_json(result.app)
    root = Tree(f"[bold]Calypso card {app['serial']}[/] ({app['product_type']})")
    node = root.add("[bold]Application[/]")
    node.add(f"AID / DF name: {app['aid'] or '(Rev1: none, known from the ATR)'}")
    node.add(f"serial: {app['serial']}")
    node.add(f"product type: {app['product_type']}")
    node.add(
        f"startup info: {app['startup_info']} (type {app['application_type']:02X}h, "
        f"subtype {app['application_subtype']:02X}h, platform {app['platform']:02X}h)"
    )
    node.add(f"options: {', '.join(app['options']) or 'none'}")
    buffer = app["session_buffer"]
    size = f"{buffer['bytes']} bytes" if "bytes" in buffer else f"{buffer['commands']} commands"
    node.add(f"session buffer: {size}")
    if app["invalidated"]:
        node.add("[red]application invalidated[/]")
    if result.certificates is not None:
        _certificates_into(root, result.certificates)
    root.add(_read_line(result))
    if result.network is not None:
        tables = result.network.describe()
        network = root.add(
            f"[bold]Network[/]: {escape(tables['network'])} {escape(tables['name'])}"
        )
        network.add(f"providers: {escape(tables['providers'])}")
        network.add(f"event codes: {escape(tables['event_codes'])}")
        network.add(f"locations: {escape(tables['locations'])}")
        network.add(f"[dim]sources: {escape(tables['sources'])}[/]")
    files = root.add(
        f"[bold]Files[/] ({escape(result.files_source)}; decoded with the {result.layout} layout)"
    )
    for view in result.files:
        _file_into(files, view, result.network)
    root.add(f"{result.apdus} card APDUs")
    return root


def _certificates_into(parent: Tree, view: CertificatesView) -> None:
    """The PKI card's certificates, field by field, and the chain's verdict."""
    doc = certificates_json(view)
    colour = "green" if view.verified else "red" if view.verdict.startswith("REFUSED") else "yellow"
    node = parent.add(f"[bold]PKI certificates[/]: [{colour}]{escape(view.verdict)}[/]")
    for notice in view.notices:
        node.add(f"[yellow]accepted by the policy: {escape(notice)}[/]")
    for error in view.errors:
        node.add(f"[red]{escape(error)}[/]")
    for title, fields in (("card", doc["card"]), ("CA", doc["ca"])):
        if fields is None:
            continue
        branch = node.add(f"[bold]{title}[/]: {escape(fields['type'])}")
        for name, value in fields.items():
            if name == "type":
                continue
            if isinstance(value, dict):
                shown = ", ".join(f"{k} {v}" for k, v in value.items())
            else:
                shown = str(value)
            branch.add(f"{name}: [cyan]{escape(shown)}[/]")


def _read_line(result: Inspection) -> str:
    secure = result.secure
    if secure is None:
        return "[bold]Read[/]: free read, outside any secure session (not authenticated)"
    key = f"KIF {secure.kif:02X}h KVC {secure.kvc:02X}h" if secure.kif is not None else "no key"
    if secure.mac_verified:
        verdict = "[green]card MAC verified by the SAM: the data is authentic[/]"
    else:
        verdict = f"[red]NOT verified: {escape(secure.error or 'card MAC rejected')}[/]"
    return f"[bold]Read[/]: inside a DEBIT secure session ({key}), closed; {verdict}"


def _file_into(parent: Tree, view: FileView, table: NetworkTable | None) -> None:
    lid = f"{view.lid:04X}h" if view.lid is not None else "----"
    title = (
        f"SFI {view.sfi:02X}h  LID {lid}  [bold]{escape(view.name)}[/]  "
        f"{view.ef_type}, {view.records} x {view.record_size} bytes"
    )
    node = parent.add(title)
    if view.error is not None:
        node.add(f"[red]{escape(view.error)}[/]")
    for item in view.items:
        _record_into(node, item, numbered=True, table=table)


def _record_into(
    parent: Tree, item: RecordView, *, numbered: bool, table: NetworkTable | None = None
) -> None:
    label = f"#{item.number} " if numbered else ""
    shape = f"  (contract structure {escape(item.structure)})" if item.structure else ""
    node = parent.add(f"{label}[dim]{item.data.hex().upper()}[/]{shape}")
    if item.counters is not None:  # by the contract that points at each counter
        for line in item.counters.lines():
            node.add(escape(line))
        return
    decoded = item.decoded
    if decoded is None:
        return
    if decoded.empty:
        node.add("[dim](empty)[/]")
        return
    notes = meanings(decoded, table)
    if isinstance(decoded.values.get("Counter1"), dict):  # carnet split: show the raw value
        for name, value in counter_values(item.data).items():
            notes[name] = f"24-bit value {value}"
    _values_into(node, decoded.to_json()["fields"], notes, "")
    if decoded.truncated is not None:
        node.add(f"[yellow]record ends inside {escape(decoded.truncated)}: rest not read[/]")
    for path in decoded.unknown:
        node.add(f"[yellow]{escape(path)}: present, content unspecified[/]")
    value, size = decoded.rest
    if value:
        node.add(f"[yellow]{size} bits after the structure are not zero[/]")


def _values_into(parent: Tree, values: dict[str, Any], notes: dict[str, str], path: str) -> None:
    for name, value in values.items():
        here = f"{path}.{name}" if path else name
        if isinstance(value, dict):
            suffix = f"  ({escape(notes[here])})" if here in notes else ""
            if value and all(v == 0 for v in value.values()):
                parent.add(f"{name}: [cyan]0[/]{suffix}")
            else:
                _values_into(parent.add(f"[bold]{name}[/]{suffix}"), value, notes, here)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            group = parent.add(f"[bold]{name}[/] ({len(value)})")
            for index, entry in enumerate(value):
                _values_into(group.add(f"[{index}]"), entry, notes, f"{here}[{index}]")
        else:
            note = notes.get(here)
            shown = escape(str(value))
            parent.add(f"{name}: [cyan]{shown}[/]" + (f"  ({escape(note)})" if note else ""))
