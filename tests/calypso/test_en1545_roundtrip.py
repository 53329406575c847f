# SPDX-License-Identifier: Apache-2.0
"""Every EN 1545 structure round-trips: generated records decode and encode to the same bits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calypso.en1545 import Structure, decode, encode
from calypso.en1545 import keyple_demo as demo
from calypso.en1545 import tables as intercode
from calypso.en1545.schema import Bitmap, Container, Field, Node, Repeat

STRUCTURES = [*intercode.STRUCTURES.values(), *demo.STRUCTURES.values()]
IDS = [f"{'demo' if s in demo.STRUCTURES.values() else 'intercode'}-{s.name}" for s in STRUCTURES]
MAX_REPEAT = 3  # enough to exercise repeats without outgrowing the 29-byte records too often


def values_for(node: Node) -> st.SearchStrategy[dict[str, Any]]:
    """Random raw values for ``node``, as the dictionary the codec produces."""
    if isinstance(node, Field):
        return st.fixed_dictionaries({node.name: st.integers(0, (1 << node.bits) - 1)})
    if isinstance(node, Repeat):
        cap = min(MAX_REPEAT, (1 << node.count_bits) - 1)
        items = st.lists(values_for(node.item), max_size=cap)
        return st.fixed_dictionaries({node.name: items})
    if isinstance(node, Container):
        parts = [values_for(child) for child in node.fields]
    else:
        parts = [st.one_of(st.just({}), values_for(child)) for child in node.fields]
    merged = st.tuples(*parts).map(lambda dicts: {k: v for d in dicts for k, v in d.items()})
    if node.name is None:
        return merged
    if isinstance(node, Bitmap):
        # A present but empty named bitmap stays present (all bits clear): keep both cases.
        return st.one_of(merged.map(lambda v: {node.name: v}), st.just({}))
    return merged.map(lambda v: {node.name: v})


def _record(structure: Structure) -> st.SearchStrategy[dict[str, Any]]:
    return values_for(structure.root)


@pytest.mark.parametrize("structure", STRUCTURES, ids=IDS)
def test_generated_records_round_trip(structure: Structure) -> None:
    """Encode random values, decode them back: same values, and the same bits once more."""

    @settings(max_examples=150, deadline=None)
    @given(values=_record(structure))
    def check(values: dict[str, Any]) -> None:
        raw = encode(structure, values, size=None)
        decoded = decode(structure, raw)
        assert decoded.truncated is None
        assert decoded.values == values
        assert decoded.encode() == raw

    check()


@pytest.mark.parametrize("structure", STRUCTURES, ids=IDS)
def test_any_bytes_decode_and_re_encode(structure: Structure) -> None:
    """Arbitrary bytes never make decode raise; a complete read encodes back bit for bit."""

    @settings(max_examples=200, deadline=None)
    @given(data=st.binary(max_size=40))
    def check(data: bytes) -> None:
        decoded = decode(structure, data)
        if decoded.truncated is None:
            assert decoded.encode() == data
        else:
            assert decoded.bits_used <= 8 * len(data)

    check()
