# SPDX-License-Identifier: Apache-2.0
"""EN 1545 decoders compiled from structure tables: one Python function per structure.

``codec.decode_reference`` walks a structure's nodes with a BitReader for every record; the
function this module writes out reads the record as one integer and takes each field with a
shift and a mask, the walk done once, when the structure is first decoded. It gives what the
walk gives, key for key (codec.decode's contract): values in record order, bitmaps' present
fields, repeats' lists, 0-bit placeholders (0, listed in ``unknown`` when of kind UNKNOWN), the
field a truncated record ends in, the rest and the invalid values.

``r`` is the number of bits not read yet: a field of ``n`` bits is ``v >> (r - n) & mask``.
A run of nodes of fixed size (fields, containers of fields) is checked against ``r`` once, its
fields taken at constant shifts from one slice; a record too short for the run is read field by
field, checked, so that ``truncated`` names the field it ends in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from calypso.en1545.schema import Container, Field, Node, Repeat, Structure
from calypso.en1545.types import CHECKED_KINDS, Kind, invalid_reason

# What a compiled decoder hands its results to: (structure, values, size_bits, bits_used,
# truncated, unknown, rest, invalid), Decoded's fields in order.
Make = Callable[..., Any]
# A path as the walk spells it, in parts: literal text and, in repeats, the item index
# variables (a part "\0i3": the value of i3), joined when a record is cut or a value invalid.
Path = tuple[str, ...]


class Cut(Exception):
    """The record ended inside the field at ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def fixed_size(node: Node) -> int | None:
    """The bits ``node`` always takes (fields and containers of them), else None."""
    if isinstance(node, Field):
        return node.bits
    if isinstance(node, Container):
        total = 0
        for child in node.fields:
            size = fixed_size(child)
            if size is None:
                return None
            total += size
        return total
    return None


def _join(path: Path, name: str | None) -> Path:
    if name is None:
        return path
    return (*path, ".", name) if path else (name,)


def _text(path: Path) -> str:
    """The path as a Python expression: a literal, or a concatenation with str(index)."""
    parts: list[str] = []
    literal = ""
    for part in path:
        if part.startswith("\0"):  # an index variable
            if literal:
                parts.append(repr(literal))
                literal = ""
            parts.append(f"str({part[1:]})")
        else:
            literal += part
    if literal or not parts:
        parts.append(repr(literal))
    return " + ".join(parts)


class _Writer:
    """Writes a decoder's source, line by line, with fresh variable names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names = 0
        self.constants: dict[str, object] = {}

    def fresh(self, stem: str) -> str:
        """A variable name not used yet."""
        self.names += 1
        return f"{stem}{self.names}"

    def line(self, depth: int, text: str) -> None:
        """One line of source, indented ``depth`` levels."""
        self.lines.append("    " * depth + text)

    def leaf_checks(self, depth: int, node: Field, value: str, path: Path) -> None:
        """The unknown and invalid lists, as the walk fills them when it reads ``node``."""
        if node.kind is Kind.UNKNOWN:
            self.line(depth, f"unknown.append({_text(_join(path, node.name))})")
        if node.kind in CHECKED_KINDS:
            kind = self.fresh("kind")
            self.constants[kind] = node.kind
            why = self.fresh("why")
            self.line(depth, f"{why} = invalid_reason({kind}, {value})")
            self.line(depth, f"if {why} is not None:")
            where = _text(_join(path, node.name))
            self.line(depth + 1, f"invalid.append({where} + ': ' + {why})")

    def node(self, depth: int, node: Node, out: str, path: Path) -> None:
        """Read ``node`` into the dictionary ``out``: one check if its size is fixed."""
        size = fixed_size(node)
        if size is not None and not isinstance(node, Field):
            self.run(depth, [node], size, out, path)
        else:
            self.checked(depth, node, out, path)

    def run(self, depth: int, nodes: list[Node], size: int, out: str, path: Path) -> None:
        """Nodes of fixed total ``size``: taken from one slice, else read one by one."""
        if len(nodes) == 1 and isinstance(nodes[0], Field):
            self.checked(depth, nodes[0], out, path)  # as quick, and written once
            return
        if size == 0:
            for node in nodes:
                self.fixed(depth, node, out, path, "0", 0, 0)
            return
        self.line(depth, f"if r >= {size}:")
        word = self.fresh("w")
        self.line(depth + 1, f"{word} = v >> (r - {size}) & {(1 << size) - 1:#x}")
        offset = 0
        for node in nodes:
            offset = self.fixed(depth + 1, node, out, path, word, size, offset)
        self.line(depth + 1, f"r -= {size}")
        self.line(depth, "else:")
        for node in nodes:
            self.checked(depth + 1, node, out, path)

    def fixed(
        self, depth: int, node: Node, out: str, path: Path, word: str, size: int, offset: int
    ) -> int:
        """Read a fixed-size node at ``offset`` bits into ``word`` (``size`` bits); the next
        offset."""
        if isinstance(node, Field):
            shift = size - offset - node.bits
            if node.bits == 0:
                value = "0"
            elif offset == 0:
                value = f"{word} >> {shift}" if shift else word  # the top bits: no mask
            elif shift:
                value = f"{word} >> {shift} & {(1 << node.bits) - 1:#x}"
            else:
                value = f"{word} & {(1 << node.bits) - 1:#x}"
            if node.kind in CHECKED_KINDS:
                held = self.fresh("x")
                self.line(depth, f"{held} = {value}")
                value = held
            self.line(depth, f"{out}[{node.name!r}] = {value}")
            self.leaf_checks(depth, node, value, path)
            return offset + node.bits
        if not isinstance(node, Container):
            raise TypeError(f"{node!r} has no fixed size")
        target = out
        if node.name is not None:
            target = self.fresh("d")
            self.line(depth, f"{target} = {out}[{node.name!r}] = {{}}")
        for child in node.fields:
            offset = self.fixed(depth, child, target, _join(path, node.name), word, size, offset)
        return offset

    def read(self, depth: int, bits: int, into: str, path: Path) -> None:
        """``into`` = the next ``bits`` bits, or Cut(path) when fewer are left."""
        if bits == 0:
            self.line(depth, f"{into} = 0")
            return
        self.line(depth, f"if r < {bits}:")
        self.line(depth + 1, f"raise Cut({_text(path)})")
        self.line(depth, f"r -= {bits}")
        self.line(depth, f"{into} = v >> r & {(1 << bits) - 1:#x}")

    def checked(self, depth: int, node: Node, out: str, path: Path) -> None:
        """Read ``node`` field by field, each checked against the bits left."""
        if isinstance(node, Field):
            value = self.fresh("x")
            self.read(depth, node.bits, value, _join(path, node.name))
            self.line(depth, f"{out}[{node.name!r}] = {value}")
            self.leaf_checks(depth, node, value, path)
            return
        if isinstance(node, Repeat):
            here = _join(path, node.name)
            count, items, at = self.fresh("n"), self.fresh("items"), self.fresh("i")
            self.read(depth, node.count_bits, count, here)
            self.line(depth, f"{items} = {out}[{node.name!r}] = []")
            self.line(depth, f"for {at} in range({count}):")
            item = self.fresh("d")
            self.line(depth + 1, f"{item} = {{}}")
            self.line(depth + 1, f"{items}.append({item})")
            self.node(depth + 1, node.item, item, (*here, "[", "\0" + at, "]"))
            return
        here = _join(path, node.name)
        target = out
        if node.name is not None:
            target = self.fresh("d")
            self.line(depth, f"{target} = {out}[{node.name!r}] = {{}}")
        if isinstance(node, Container):
            self.children(depth, node.fields, target, here)
            return
        mask = self.fresh("b")
        self.read(depth, node.bits, mask, _join(here, "bitmap") if here else ("bitmap",))
        for index, child in enumerate(node.fields):
            self.line(depth, f"if {mask} & {1 << index:#x}:")
            self.node(depth + 1, child, target, here)

    def children(self, depth: int, nodes: tuple[Node, ...], out: str, path: Path) -> None:
        """A container's children: runs of fixed-size nodes checked once, the others alone."""
        for run, size in _runs(nodes):
            if size is None:
                self.checked(depth, run[0], out, path)
            else:
                self.run(depth, run, size, out, path)


def _runs(nodes: tuple[Node, ...]) -> Iterator[tuple[list[Node], int | None]]:
    """Consecutive fixed-size nodes grouped with their total size; other nodes alone (None)."""
    run: list[Node] = []
    size = 0
    for node in nodes:
        bits = fixed_size(node)
        if bits is None:
            if run:
                yield run, size
                run, size = [], 0
            yield [node], None
        else:
            run.append(node)
            size += bits
    if run:
        yield run, size


def source(structure: Structure) -> tuple[str, dict[str, object]]:
    """The decoder's Python source and the constants it names (kinds of checked fields)."""
    writer = _Writer()
    writer.line(0, "def decode(data):")
    writer.line(1, "v = from_bytes(data, 'big')")
    writer.line(1, "total = r = len(data) << 3")
    writer.line(1, "values = {}")
    writer.line(1, "unknown = []")
    writer.line(1, "invalid = []")
    writer.line(1, "truncated = None")
    writer.line(1, "try:")
    start = len(writer.lines)
    writer.node(2, structure.root, "values", ())
    if len(writer.lines) == start:
        writer.line(2, "pass")
    writer.line(1, "except Cut as cut:")
    writer.line(2, "truncated = cut.path")
    writer.line(1, "return make(structure, values, total, total - r, truncated, unknown,")
    writer.line(1, "            (v & ((1 << r) - 1), r), invalid)")
    return "\n".join(writer.lines) + "\n", writer.constants


def compile_decoder(structure: Structure, make: Make) -> Callable[[bytes], Any]:
    """The decoding function of ``structure``; ``make`` builds its result (Decoded)."""
    text, constants = source(structure)
    namespace: dict[str, Any] = {
        "from_bytes": int.from_bytes,
        "Cut": Cut,
        "invalid_reason": invalid_reason,
        "make": make,
        "structure": structure,
        **constants,
    }
    code = compile(text, f"<en1545 decoder {structure.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - source written above from the structure's own table
    decoder: Callable[[bytes], Any] = namespace["decode"]
    return decoder
