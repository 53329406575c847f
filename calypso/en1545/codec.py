# SPDX-License-Identifier: Apache-2.0
"""Decode and encode EN 1545 records from structure tables (calypso-data-model 2.1).

``decode`` never raises on odd data: a record that ends inside a field returns what was read,
with ``truncated`` naming the field it stopped at; fields whose content is unspecified (0-bit
placeholders flagged present) are listed in ``unknown``; the bits after the structure are kept
in ``rest``; values their kind does not allow (a time above 23:59) are listed in ``invalid``.
``Decoded.encode()`` gives back the record bit for bit whenever it was not
truncated. ``encode`` builds a record from values (raw integers, or dates, times, text...).

``decode`` runs a decoder written for each structure at its first use (calypso.en1545.compiled:
shifts and masks on the record as one integer); ``decode_reference`` walks the structure node
by node with a BitReader, and is what the compiled decoders are tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from calypso.en1545.bits import BitReader, BitWriter
from calypso.en1545.compiled import compile_decoder
from calypso.en1545.schema import Bitmap, Container, Field, Node, Repeat, Structure, value_names
from calypso.en1545.types import JsonValue, Kind, display, invalid_reason, to_raw

Values = dict[str, Any]  # field name -> raw int, nested dict (bitmap/container) or list (repeat)


class _Truncated(Exception):
    """The record ended inside the field at ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass
class Decoded:
    """What was read from one record: raw values, and what could not be read."""

    structure: Structure
    values: Values
    size_bits: int
    bits_used: int
    truncated: str | None = None
    unknown: list[str] = field(default_factory=list)
    rest: tuple[int, int] = (0, 0)  # the bits after the structure: (value, size)
    invalid: list[str] = field(default_factory=list)  # "path: why", e.g. a time above 23:59
    # What ``get`` answers, by name: built at its first call (the values never change after
    # decoding), as layouts ask a record for a dozen fields.
    _index: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)
    # ``empty``, likewise kept once asked (layouts ask a cached contract at every tap).
    _empty: bool | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """An all-zero record (section 2.1: an empty record)."""
        empty = self._empty
        if empty is None:
            empty = self.bits_used == 0 or (not _any_bit(self.values) and self.rest[0] == 0)
            self._empty = empty
        return empty

    @property
    def complete(self) -> bool:
        """Read to the end of the structure, without unspecified content."""
        return self.truncated is None and not self.unknown

    def get(self, name: str) -> int | None:
        """The raw value of the final field ``name`` (first found, depth first), if present."""
        index = self._index
        if index is None:
            index = self._index = _found(self.values)
        return index.get(name)

    def encode(self) -> bytes:
        """The record again: the structure's bits then the rest, in the original size."""
        writer = BitWriter()
        _encode_node(self.structure.root, self.values, writer, "")
        value, size = self.rest
        writer.write(value, size)
        return writer.to_bytes((self.size_bits + 7) // 8)

    def to_json(self) -> dict[str, Any]:
        """Readable values (ISO dates, HH:MM times...) and what was not read."""
        out: dict[str, Any] = {"fields": to_display(self.structure.root, self.values)}
        out["bits_used"] = self.bits_used
        if self.truncated is not None:
            out["truncated_at"] = self.truncated
        if self.unknown:
            out["unknown"] = list(self.unknown)
        if self.invalid:
            out["invalid"] = list(self.invalid)
        value, size = self.rest
        if value:
            out["rest_bits"] = format(value, f"0{size}b")
        return out

    def leaves(self) -> Iterator[tuple[str, Field, int]]:
        """(path, field, raw value) for every field read, in record order."""
        yield from _leaves(self.structure.root, self.values, "")


def _any_bit(values: object) -> bool:
    if isinstance(values, dict):
        return any(_any_bit(v) for v in values.values())
    if isinstance(values, list):
        return bool(values)
    return bool(values)


def _found(values: object) -> dict[str, int]:
    """What ``_find`` finds of every name at once: a level's own integers first, then its
    children's in order (the first found kept)."""
    out: dict[str, int] = {}
    _collect(values, out)
    return out


def _collect(values: object, out: dict[str, int]) -> None:
    """Add to ``out`` the names it lacks: this level's integers, then each child's, depth
    first (one dictionary filled, where merging each level's own gave the same)."""
    if isinstance(values, dict):
        nested = None
        for name, value in values.items():
            if isinstance(value, int):
                if name not in out:
                    out[name] = value if value.__class__ is int else int(value)
            elif isinstance(value, dict | list):
                if nested is None:
                    nested = [value]
                else:
                    nested.append(value)
        if nested is not None:
            for child in nested:
                _collect(child, out)
    elif isinstance(values, list):
        for child in values:
            if isinstance(child, dict | list):
                _collect(child, out)


def _find(values: object, name: str) -> int | None:
    if isinstance(values, dict):
        if name in values and isinstance(values[name], int):
            return int(values[name])
        for child in values.values():
            found = _find(child, name)
            if found is not None:
                return found
    elif isinstance(values, list):
        for child in values:
            found = _find(child, name)
            if found is not None:
                return found
    return None


def decode(structure: Structure, data: bytes) -> Decoded:
    """Decode ``data`` with ``structure``; never raises on unknown or truncated content.

    Runs the structure's compiled decoder (calypso.en1545.compiled), written at its first use:
    the same Decoded as ``decode_reference``, field for field."""
    held = _DECODERS.get(id(structure))
    if held is None or held[0] is not structure:
        held = (structure, compile_decoder(structure, Decoded))
        if len(_DECODERS) < _DECODERS_KEPT:
            _DECODERS[id(structure)] = held  # the structure held: its id is not reused
    return held[1](data)


# Structures' compiled decoders, by id (hashing a frozen tree walks it all, as Structure.field).
_DECODERS: dict[int, tuple[Structure, Callable[[bytes], Decoded]]] = {}
_DECODERS_KEPT = 1024


def decode_reference(structure: Structure, data: bytes) -> Decoded:
    """Decode ``data`` with ``structure`` node by node: what the compiled decoders must give."""
    reader = BitReader(data)
    values: Values = {}
    unknown: list[str] = []
    invalid: list[str] = []  # found as each field is read: in record order, as leaves() go
    truncated = None
    try:
        _decode_node(structure.root, reader, values, "", unknown, invalid)
    except _Truncated as exc:
        truncated = exc.path
    return Decoded(
        structure, values, reader.total, reader.position, truncated, unknown, reader.rest(), invalid
    )


def _join(path: str, name: str | None) -> str:
    if name is None:
        return path
    return f"{path}.{name}" if path else name


def _decode_node(
    node: Node, reader: BitReader, out: Values, path: str, unknown: list[str], invalid: list[str]
) -> None:
    if isinstance(node, Field):
        raw = reader.read(node.bits)
        if raw is None:
            raise _Truncated(_join(path, node.name))
        out[node.name] = raw
        if node.kind is Kind.UNKNOWN:
            unknown.append(_join(path, node.name))
        reason = invalid_reason(node.kind, raw)
        if reason is not None:
            invalid.append(f"{_join(path, node.name)}: {reason}")
        return
    if isinstance(node, Repeat):
        here = _join(path, node.name)
        count = reader.read(node.count_bits)
        if count is None:
            raise _Truncated(here)
        items: list[Values] = []
        out[node.name] = items
        for index in range(count):
            item: Values = {}
            items.append(item)
            _decode_node(node.item, reader, item, f"{here}[{index}]", unknown, invalid)
        return
    here = _join(path, node.name)
    target: Values = out
    if node.name is not None:
        target = {}
        out[node.name] = target
    if isinstance(node, Container):
        for child in node.fields:
            _decode_node(child, reader, target, here, unknown, invalid)
        return
    mask = reader.read(node.bits)
    if mask is None:
        raise _Truncated(_join(here, "bitmap") if here else "bitmap")
    for index, child in enumerate(node.fields):
        if mask >> index & 1:
            _decode_node(child, reader, target, here, unknown, invalid)


def encode(structure: Structure, values: Mapping[str, Any], *, size: int | None = -1) -> bytes:
    """Build a record from ``values``; padded with 0 bits to the record size by default.

    ``size=None`` gives the shortest whole number of bytes. Raises ValueError for a missing
    container field, an unknown name or a value that does not fit its field.
    """
    root = structure.root
    if isinstance(root, Bitmap | Container) and root.name is None:
        _check_names(root, values, "")
    writer = BitWriter()
    _encode_node(root, values, writer, "")
    return writer.to_bytes(structure.record_size if size == -1 else size)


def _present(node: Node, values: Mapping[str, Any]) -> bool:
    return any(name in values for name in value_names(node))


def _check_names(node: Bitmap | Container, values: Mapping[str, Any], path: str) -> None:
    allowed: frozenset[str] = frozenset()
    for child in node.fields:
        allowed |= value_names(child)
    extra = set(values) - allowed
    if extra:
        raise ValueError(f"{path or 'record'}: unknown field(s) {', '.join(sorted(extra))}")


def _encode_node(node: Node, values: Mapping[str, Any], writer: BitWriter, path: str) -> None:
    if isinstance(node, Field):
        if node.name not in values:
            raise ValueError(f"missing field {_join(path, node.name)}")
        try:
            raw = to_raw(node.kind, values[node.name], node.bits)
            writer.write(raw, node.bits)
        except ValueError as exc:
            raise ValueError(f"{_join(path, node.name)}: {exc}") from None
        return
    if isinstance(node, Repeat):
        here = _join(path, node.name)
        items = values.get(node.name, [])
        if len(items) >= 1 << node.count_bits:
            raise ValueError(f"{here}: {len(items)} items do not fit a {node.count_bits}-bit count")
        writer.write(len(items), node.count_bits)
        for index, item in enumerate(items):
            if isinstance(node.item, Bitmap | Container) and node.item.name is None:
                _check_names(node.item, item, f"{here}[{index}]")
            _encode_node(node.item, item, writer, f"{here}[{index}]")
        return
    here = _join(path, node.name)
    target: Mapping[str, Any] = values
    if node.name is not None:
        target = values.get(node.name, {})
        _check_names(node, target, here)
    if isinstance(node, Container):
        for child in node.fields:
            _encode_node(child, target, writer, here)
        return
    present = [child for child in node.fields if _present(child, target)]
    writer.write(sum(1 << i for i, c in enumerate(node.fields) if c in present), node.bits)
    for child in present:
        _encode_node(child, target, writer, here)


def to_display(node: Node, values: Mapping[str, Any]) -> dict[str, Any]:
    """Readable JSON values for ``values`` decoded with ``node``, in record order."""
    out: dict[str, Any] = {}
    _display_into(node, values, out)
    return out


def _display_into(node: Node, values: Mapping[str, Any], out: dict[str, Any]) -> None:
    if isinstance(node, Field):
        if node.name in values:
            out[node.name] = _leaf(node, values[node.name])
        return
    if isinstance(node, Repeat):
        if node.name in values:
            out[node.name] = [to_display(node.item, item) for item in values[node.name]]
        return
    if node.name is not None:
        if node.name not in values:
            return
        nested: dict[str, Any] = {}
        out[node.name] = nested
        out, values = nested, values[node.name]
    for child in node.fields:
        _display_into(child, values, out)


def _leaf(node: Field, raw: object) -> JsonValue:
    if not isinstance(raw, int):
        raise ValueError(f"{node.name}: raw values are integers")
    return display(node.kind, raw, node.bits)


def _leaves(node: Node, values: Mapping[str, Any], path: str) -> Iterator[tuple[str, Field, int]]:
    if isinstance(node, Field):
        if node.name in values:
            yield _join(path, node.name), node, int(values[node.name])
        return
    if isinstance(node, Repeat):
        for index, item in enumerate(values.get(node.name, [])):
            yield from _leaves(node.item, item, f"{_join(path, node.name)}[{index}]")
        return
    if node.name is not None:
        if node.name not in values:
            return
        path, values = _join(path, node.name), values[node.name]
    for child in node.fields:
        yield from _leaves(child, values, path)
