# SPDX-License-Identifier: Apache-2.0
"""The codec's by-name lookups, kept once built, answer as the tree walks they replace."""

from __future__ import annotations

import random

import pytest

from calypso.en1545 import Structure, decode
from calypso.en1545.codec import Decoded, _find
from calypso.en1545.contracts import BY_TYPE, CONTRACT_COMMON
from calypso.en1545.schema import Field, iter_fields
from calypso.en1545.types import Kind, invalid_reason
from calypso.layouts.intercode import FILES

STRUCTURES = [f.structure for f in FILES] + list(BY_TYPE.values()) + [CONTRACT_COMMON]


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: s.name)
def test_get_is_the_depth_first_walk(structure: Structure) -> None:
    """Decoded.get gives what the walk gives, for every field name, on random and zero records
    (bitmaps with random presence, repeats, truncated records)."""
    rng = random.Random(structure.name)
    names = {f.name for f in structure.fields()} | {"NotAField"}
    for size in (0, 3, 10, 29, 29, 29, 29, 40):
        for _ in range(20):
            data = rng.randbytes(size)
            decoded = decode(structure, data)
            assert {n: decoded.get(n) for n in names} == {
                n: _find(decoded.values, n) for n in names
            }


def test_get_prefers_a_level_own_value() -> None:
    """A name at the current level wins over the same name deeper, as the walk has it."""
    values = {"A": {"X": 1, "Y": 5}, "X": 2, "B": [{"Y": 7}]}
    structure = STRUCTURES[0]
    decoded = decode(structure, b"")
    decoded.values.clear()
    decoded.values.update(values)
    assert [decoded.get(n) for n in ("X", "Y")] == [_find(values, "X"), _find(values, "Y")]


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: s.name)
def test_field_is_the_first_by_name(structure: Structure) -> None:
    """Structure.field gives the first final field of that name, or None, every time."""
    for each in iter_fields(structure.root):
        first = next(f for f in structure.fields() if f.name == each.name)
        assert structure.field(each.name) is first
        assert isinstance(first, Field)
    assert structure.field("NotAField") is None


def _invalid_by_leaves(decoded: Decoded) -> list[str]:
    """The invalid values as decode listed them before: a walk of the leaves once decoded."""
    out = []
    for path, node, raw in decoded.leaves():
        reason = invalid_reason(node.kind, raw)
        if reason is not None:
            out.append(f"{path}: {reason}")
    return out


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: s.name)
def test_invalid_found_while_decoding(structure: Structure) -> None:
    """The invalid values found field by field are the leaves' walk's, in its order (times above
    23:59 in random records, repeats and truncated records included)."""
    rng = random.Random(structure.name + "invalid")
    found = 0
    for size in (2, 10, 29, 29, 29, 40):
        for _ in range(40):
            decoded = decode(structure, rng.randbytes(size))
            assert decoded.invalid == _invalid_by_leaves(decoded)
            found += len(decoded.invalid)
    if any(f.kind in (Kind.TIME, Kind.TIME_COMPACT) for f in structure.fields()):
        assert found > 0
