# SPDX-License-Identifier: Apache-2.0
"""The compiled EN 1545 decoders give what the reference walk gives, field for field."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calypso.en1545
import calypso.layouts
from calypso.en1545 import Structure, contracts, decode, encode, keyple_demo, tables
from calypso.en1545.codec import Decoded, decode_reference
from calypso.en1545.compiled import source
from calypso.en1545.schema import Bitmap, Container, Field, Repeat, fields
from calypso.en1545.types import Kind


def _shipped() -> list[Structure]:
    """Every Structure the calypso.en1545 and calypso.layouts modules hold, at module level or
    in a module-level dict, list or tuple (each once)."""
    found: dict[int, Structure] = {}
    for package in (calypso.en1545, calypso.layouts):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                items: list[object] = [value]
                if isinstance(value, dict):
                    items = list(value.values())
                elif isinstance(value, list | tuple):
                    items = list(value)
                for item in items:
                    item = getattr(item, "structure", item)  # a layout's FileEntry
                    if isinstance(item, Structure):
                        found.setdefault(id(item), item)
    return list(found.values())


# Made up to reach what the shipped tables do not: a repeat in a repeat, a repeat of plain
# fields, a named container in a repeat, 0-bit bitmaps and placeholders, an empty container,
# fixed runs inside a bitmap, times (invalid values) at every depth.
ODD = Structure(
    "odd",
    Container(
        None,
        (
            Field("Head", 3),
            Container("Empty", ()),
            Field("Nothing", 0, Kind.UNKNOWN),
            Bitmap("NoBits", ()),
            Repeat(
                "Outer",
                2,
                Bitmap(
                    None,
                    (
                        Field("When", 11, Kind.TIME),
                        Repeat("Inner", 2, Field("Tick", 3)),
                        Container("Pair", fields(("Left", 4), ("Right", 5, Kind.TIME_COMPACT))),
                        Field("Blank", 0, Kind.UNKNOWN),
                    ),
                ),
            ),
            Bitmap(
                "Tail",
                (
                    Container(None, fields(("A", 7), ("B", 11, Kind.TIME), ("C", 0))),
                    Bitmap(None, fields(("D", 2), ("E", 13))),
                    Field("F", 17),
                ),
            ),
            Field("Last", 5),
        ),
    ),
    record_size=16,
)
SHIPPED = _shipped()
STRUCTURES = [*SHIPPED, ODD]
IDS = [f"{s.name}-{i}" for i, s in enumerate(STRUCTURES)]


def _keys(values: object) -> object:
    """The nesting and key order of decoded values (dict equality ignores order)."""
    if isinstance(values, dict):
        return [(k, type(v).__name__, _keys(v)) for k, v in values.items()]
    if isinstance(values, list):
        return [_keys(v) for v in values]
    return None


def _facts(decoded: Decoded) -> dict[str, Any]:
    return {
        "structure": decoded.structure,
        "values": decoded.values,
        "keys": _keys(decoded.values),
        "size_bits": decoded.size_bits,
        "bits_used": decoded.bits_used,
        "truncated": decoded.truncated,
        "unknown": decoded.unknown,
        "rest": decoded.rest,
        "invalid": decoded.invalid,
    }


def _same(structure: Structure, data: bytes) -> Decoded:
    """Decode both ways; assert the same Decoded; the compiled one."""
    got, want = decode(structure, data), decode_reference(structure, data)
    assert _facts(got) == _facts(want)
    assert got == want
    return got


def test_every_shipped_structure_is_found() -> None:
    """The scan finds the Intercode, contract-type and Keyple demo tables (and no fewer)."""
    expected = [
        *tables.STRUCTURES.values(),
        *keyple_demo.STRUCTURES.values(),
        contracts.CONTRACT_COMMON,
        contracts.CONTRACT_20,
        contracts.CONTRACT_46,
    ]
    assert all(any(s is e for s in SHIPPED) for e in expected)
    assert len(SHIPPED) == len(expected)


@pytest.mark.parametrize("structure", STRUCTURES, ids=IDS)
def test_compiled_is_the_reference_on_any_bytes(structure: Structure) -> None:
    """Random bytes of 0 to 40 bytes decode alike both ways: values and their order,
    truncation, unknown, rest, invalid and bits used."""

    @settings(max_examples=400, deadline=None)
    @given(data=st.binary(max_size=40))
    def check(data: bytes) -> None:
        _same(structure, data)

    check()


@pytest.mark.parametrize("structure", STRUCTURES, ids=IDS)
def test_compiled_is_the_reference_on_cut_records(structure: Structure) -> None:
    """A record of set bits (every bitmap bit present), cut at every length, decodes alike."""
    full = b"\xff" * 40
    for size in range(len(full) + 1):
        _same(structure, full[:size])


class TestCompiledEdges:
    """The cases the property covers by chance, named."""

    @pytest.mark.parametrize("structure", STRUCTURES, ids=IDS)
    def test_empty_record(self, structure: Structure) -> None:
        """No bytes: nothing read, the first field (or bitmap) named as truncated."""
        got = _same(structure, b"")
        assert got.bits_used == 0 and got.rest == (0, 0)

    def test_empty_event_names_its_first_field(self) -> None:
        """An empty event ends in EventDateStamp, with nothing read."""
        got = _same(tables.EVENT, b"")
        assert (got.values, got.truncated) == ({}, "EventDateStamp")

    def test_truncated_inside_the_top_bitmap(self) -> None:
        """An event of 4 bytes has its date and time (25 bits), not the 28-bit bitmap."""
        data = encode(tables.EVENT, {"EventDateStamp": 10000, "EventTimeStamp": 600})[:4]
        got = _same(tables.EVENT, data)
        assert got.truncated == "bitmap" and got.bits_used == 25
        assert got.values == {"EventDateStamp": 10000, "EventTimeStamp": 600}
        assert got.rest == (data[3] & 0x7F, 7)

    def test_truncated_inside_a_named_bitmap(self) -> None:
        """An event cut in EventData's presence bits names EventData.bitmap, its dict kept."""
        values = {"EventDateStamp": 1, "EventTimeStamp": 2, "EventData": {"EventDataTrip": 1}}
        data = encode(tables.EVENT, values, size=None)[:7]  # 25 + 28 bits, then 3 of 5
        got = _same(tables.EVENT, data)
        assert got.truncated == "EventData.bitmap"
        assert got.values["EventData"] == {}

    def test_truncated_inside_a_repeat(self) -> None:
        """A contract list cut in its second entry names the entry and field it stopped at."""
        entries = [
            {"BestContractTariff": 0x1FF0, "BestContractPointer": 1},
            {"BestContractTariff": 0x2000, "BestContractPointer": 2},
        ]
        data = encode(tables.CONTRACT_LIST, {"BestContracts": entries}, size=None)
        got = _same(tables.CONTRACT_LIST, data[:5])  # 4 + 3 + 21 bits, then 3 of 3 + 16 + 5
        assert got.truncated == "BestContracts[1].BestContractTariff"
        assert got.values == {"BestContracts": [entries[0], {}]}

    def test_truncated_inside_a_fixed_run(self) -> None:
        """Counters cut in the fourth counter: three whole, the fourth's count, then its stamp
        named (the run read field by field once it does not fit)."""
        got = _same(tables.COUNTERS, bytes(range(1, 11)))
        assert got.truncated == "Counter4.CounterRelativeFirstStamp15mn"
        assert list(got.values) == ["Counter1", "Counter2", "Counter3", "Counter4"]
        assert list(got.values["Counter4"]) == ["CounterContractCount"]

    def test_trailing_rest_bits(self) -> None:
        """The bits after the structure are the rest, value and size."""
        data = encode(tables.EVENT, {"EventDateStamp": 1, "EventTimeStamp": 2}, size=None)
        data = data[:-1] + bytes([data[-1] | 0x05]) + b"\x81"
        got = _same(tables.EVENT, data)
        assert got.truncated is None and got.bits_used == 53
        assert got.rest == (int.from_bytes(data, "big") & ((1 << 11) - 1), 11)

    def test_invalid_values_in_record_order(self) -> None:
        """Times above 23:59 are listed where they are read, the nested one with its path."""
        values = {
            "EventDateStamp": 1,
            "EventTimeStamp": 1500,
            "EventData": {"EventDataTimeFirstStamp": 2047},
        }
        got = _same(tables.EVENT, encode(tables.EVENT, values))
        assert got.invalid == [
            "EventTimeStamp: 25:00 is not a time of day (above 23:59)",
            "EventData.EventDataTimeFirstStamp: 34:07 is not a time of day (above 23:59)",
        ]

    def test_unknown_placeholders(self) -> None:
        """A 0-bit ContractData flagged present reads 0 and is listed as unknown."""
        data = encode(contracts.CONTRACT_COMMON, {"ContractTariff": 5, "ContractData": 0})
        got = _same(contracts.CONTRACT_COMMON, data)
        assert got.values["ContractData"] == 0 and got.unknown == ["ContractData"]

    def test_decoders_are_compiled_once(self) -> None:
        """The same structure decodes with the same function every time."""
        from calypso.en1545.codec import _DECODERS

        decode(tables.EVENT, b"")
        first = _DECODERS[id(tables.EVENT)][1]
        decode(tables.EVENT, b"\x00" * 29)
        assert _DECODERS[id(tables.EVENT)][1] is first

    def test_source_is_python(self) -> None:
        """Every shipped structure's decoder compiles (its source is valid Python)."""
        for structure in STRUCTURES:
            text, _ = source(structure)
            compile(text, structure.name, "exec")
