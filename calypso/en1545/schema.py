# SPDX-License-Identifier: Apache-2.0
"""EN 1545 structures as data (calypso-data-model 2.1): fields, bitmaps, repeats, containers.

* ``Field``: a final element of ``bits`` bits read as ``kind``.
* ``Bitmap``: ``len(fields)`` presence bits, bit i (from the least significant end) flagging
  ``fields[i]``; the present fields follow in ascending index order. Bitmaps nest.
* ``Repeat``: a ``count_bits`` count, then that many copies of ``item``.
* ``Container``: sub-fields always present, with no bitmap.

A node without a name is transparent: its fields sit in the parent's value dictionary (the
top-level bitmap of an event record, for instance), so that the decoded values read
``{"EventDateStamp": ..., "EventCode": ...}``. Named bitmaps and containers nest a dictionary
under their name; a repeat holds a list of dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from calypso.constants import RECORD_SIZE
from calypso.en1545.types import Kind

Meaning = Callable[[int], str | None]


@dataclass(frozen=True, slots=True)
class Field:
    """A final element: ``bits`` bits read as ``kind``; ``meaning`` names coded values."""

    name: str
    bits: int
    kind: Kind = Kind.INT
    meaning: Meaning | None = None


@dataclass(frozen=True, slots=True)
class Bitmap:
    """Presence bits then the present fields; bit i, from the least significant end, = field i."""

    name: str | None
    fields: tuple[Node, ...]

    @property
    def bits(self) -> int:
        """Size of the presence bitmap."""
        return len(self.fields)


@dataclass(frozen=True, slots=True)
class Repeat:
    """A ``count_bits`` count, then that many ``item`` structures (a list of dictionaries)."""

    name: str
    count_bits: int
    item: Node


@dataclass(frozen=True, slots=True)
class Container:
    """Sub-fields always present, in order, with no bitmap."""

    name: str | None
    fields: tuple[Node, ...]


Node = Field | Bitmap | Repeat | Container


@dataclass(frozen=True, slots=True)
class Structure:
    """A whole record layout: its root node and the record size it is stored in."""

    name: str
    root: Node
    record_size: int = RECORD_SIZE
    description: str = ""

    def fields(self) -> Iterator[Field]:
        """Every final field, depth first."""
        return iter_fields(self.root)

    def field(self, name: str) -> Field | None:
        """The final field called ``name``."""
        held = _FIELDS.get(id(self))
        if held is None or held[0] is not self:
            by_name: dict[str, Field] = {}
            for each in self.fields():
                by_name.setdefault(each.name, each)
            held = (self, by_name)
            if len(_FIELDS) < _FIELDS_KEPT:
                _FIELDS[id(self)] = held  # the structure held: its id is not reused
        return held[1].get(name)


# Structures' fields by name, for Structure.field (a frozen tree: hashing it walks it all).
_FIELDS: dict[int, tuple[Structure, dict[str, Field]]] = {}
_FIELDS_KEPT = 1024


def iter_fields(node: Node) -> Iterator[Field]:
    """Every final field under ``node``, depth first."""
    if isinstance(node, Field):
        yield node
    elif isinstance(node, Repeat):
        yield from iter_fields(node.item)
    else:
        for child in node.fields:
            yield from iter_fields(child)


def value_names(node: Node) -> frozenset[str]:
    """The keys ``node`` contributes to its parent's value dictionary."""
    if isinstance(node, Field | Repeat):
        return frozenset({node.name})
    if node.name is not None:
        return frozenset({node.name})
    names: frozenset[str] = frozenset()
    for child in node.fields:
        names |= value_names(child)
    return names


def fields(*spec: tuple[str, int] | tuple[str, int, Kind] | Node) -> tuple[Node, ...]:
    """Nodes from a compact table: ``("Name", bits)``, ``("Name", bits, Kind)`` or a node."""
    nodes: list[Node] = []
    for item in spec:
        if isinstance(item, tuple):
            nodes.append(Field(item[0], item[1], item[2] if len(item) == 3 else Kind.INT))
        else:
            nodes.append(item)
    return tuple(nodes)
