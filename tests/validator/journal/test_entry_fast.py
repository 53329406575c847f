# SPDX-License-Identifier: Apache-2.0
"""The typed records' fast builders against the careful ones they fall back on (issue 21).

``read_record`` (and ``JournalEntry.from_json``, ``ClosingIntent.from_json``) build the common
shape in one pass and hand anything else to ``_read_record_reference`` and the
``_from_json_reference`` methods, the builders as they were. Both must give the same record,
field by field, for every line of real journals, and the same EntryFormatError message (or the
same record) for every line changed in one or two places.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.journal import entry as entry_module
from validator.journal import intent as intent_module
from validator.journal import jsonline
from validator.journal.entry import (
    Decision,
    EntryFormatError,
    JournalEntry,
    PkiEvidence,
    Resolution,
    Trace,
)
from validator.journal.intent import ClosingIntent, _read_record_reference, read_record
from validator.journal.writer import Journal, journal_files

RELEASE_1 = Path(__file__).parent / "journals" / "release-cd1443f"
BENCH = Path("/tmp/rj200k")  # noqa: S108 - the shared bench journal, read when it is there
START = dt.datetime(2026, 3, 2, 7, 0)

# Values a field can be given by a damaged or hostile line: every JSON kind, the 64-bit bounds
# and just beyond them (as each parser reads them), and the versions around the schema's.
WRONG: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    3,
    150,
    2**63 - 1,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    2**70,
    float(2**64),
    float(-(2**63)),
    1.5,
    -0.0,
    math.inf,
    math.nan,
    "",
    "x",
    "intent",
    "granted",
    "1",
    [],
    ["00"],
    [1],
    [{}],
    [{"to": "card"}, 7],
    {},
    {"a": "b"},
    {"a": 1},
)


def _lines(directory: Path, limit: int | None = None) -> list[bytes]:
    out: list[bytes] = []
    for path in journal_files(directory):
        with path.open("rb") as file:
            for raw in file:
                if raw.strip():
                    out.append(raw)
                if limit is not None and len(out) >= limit:
                    return out
    return out


@pytest.fixture(scope="module")
def demo_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """A real demo journal with many tears: taps, intents, unknown taps and their resolutions,
    PKI taps, and the release-1 journal's lines (no schema, a recovery)."""
    directory = tmp_path_factory.mktemp("entryfast") / "journal"
    with Journal(directory, key=bytes(range(32))) as writer:
        run_demo(
            CONFIG,
            load_settings(CONFIG),
            taps=300,
            seed=1,
            start=START,
            journal=writer,
            tear_rate=0.3,
        )
    return _lines(directory) + _lines(RELEASE_1)


def _outcome(read: Callable[[Any], Any], data: Any) -> tuple[str, str]:
    """What ``read`` makes of (a copy of) ``data``: the record's full repr, or the error's
    message. The repr names every class and field, nested ones included (a tuple is not a list,
    a mappingproxy not a dict), so equal reprs are equal records of the same types."""
    try:
        record = read(copy.deepcopy(data))
    except EntryFormatError as error:
        return "error", str(error)
    return "record", repr(record)


def _same(data: Any) -> tuple[str, str]:
    """Both builders give the same outcome for ``data`` (returned), and so do both builders of
    each record type (a tap entry's given an intent's line, or the other way round)."""
    fast = _outcome(read_record, data)
    reference = _outcome(_read_record_reference, data)
    assert fast == reference, data
    for kind in (JournalEntry, ClosingIntent):
        assert _outcome(kind.from_json, data) == _outcome(kind._from_json_reference, data), data
    return fast


def _records_equal(data: Any) -> None:
    record = read_record(data)
    reference = _read_record_reference(data)
    assert type(record) is type(reference)
    assert record == reference
    assert repr(record) == repr(reference)
    assert record.to_json() == reference.to_json() == data
    for kind in (JournalEntry, ClosingIntent):  # either, given the other's line: one error
        fast = _outcome(kind.from_json, data)
        assert fast == _outcome(kind._from_json_reference, data)
        assert fast[0] == ("record" if kind is type(record) else "error")


def test_every_line_of_a_real_journal_builds_the_same_record(demo_lines: list[bytes]) -> None:
    """Every line of the demo and release-1 journals reads the same through both builders:
    equal records of the same types, which write back the line's object."""
    kinds = set()
    for raw in demo_lines:
        data = jsonline.loads(raw)
        _records_equal(data)
        kinds.add(data.get("kind", data.get("outcome")))
        kinds.update(name for name in ("resolves", "pki", "recovered_from_tap") if name in data)
    assert {"intent", "granted", "unknown", "resolves", "pki"} <= kinds


def test_the_fast_builder_makes_ordinary_frozen_records(demo_lines: list[bytes]) -> None:
    """What the fast path builds is an instance of the class itself, frozen, with slots, equal
    to what the dataclass's own constructor makes of the same fields."""
    seen: set[type] = set()
    for raw in demo_lines:
        record = read_record(jsonline.loads(raw))
        for obj in (record, *(getattr(record, n, None) for n in ("decision", "trace", "resolves"))):
            if obj is None:
                continue
            seen.add(type(obj))
            values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            assert type(obj)(**values) == obj
            assert not hasattr(obj, "__dict__")
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(obj, dataclasses.fields(obj)[0].name, None)
    assert {JournalEntry, ClosingIntent, Decision, Trace, Resolution} <= seen


@pytest.mark.skipif(not BENCH.is_dir(), reason="the bench journal is not built")
def test_the_bench_journal_builds_the_same_records() -> None:
    """The first 40,000 lines of the bench journal (make bench-replay) read the same."""
    for raw in _lines(BENCH, 40_000):
        _records_equal(jsonline.loads(raw))


def _paths(data: Any, prefix: tuple[Any, ...] = (), depth: int = 3) -> Iterator[tuple[Any, ...]]:
    """Every place in ``data`` down to ``depth``: keys of objects, the first items of arrays."""
    if depth == 0:
        return
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key), depth - 1)
    elif isinstance(data, list):
        for index, value in enumerate(data[:2]):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index), depth - 1)


def _places(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The places of ``data`` plus the known fields it lacks (to be added) and an unknown one."""
    places = list(_paths(data))
    for name in (*entry_module._NAMES, *intent_module._NAMES, "kind", "later"):
        if name not in data:
            places.append((name,))
    for nested in ("decision", "trace", "resolves", "pki"):
        if isinstance(data.get(nested), dict):
            places.append((nested, "later"))
    return places


def _changed(data: Any, place: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``data`` with ``value`` at ``place`` (``_DROP``: without it)."""
    data = copy.deepcopy(data)
    target = data
    for key in place[:-1]:
        target = target[key]
    if value is _DROP:
        if isinstance(target, dict):
            target.pop(place[-1], None)
        else:
            del target[place[-1]]
    else:
        target[place[-1]] = value
    return data


_DROP = object()


def _samples(lines: list[bytes]) -> list[dict[str, Any]]:
    """One line of each shape: intents and taps, with and without resolves, PKI, schema..."""
    shapes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for raw in lines:
        data = jsonline.loads(raw)
        key = tuple(sorted(data)) + tuple(
            tuple(sorted(data[n])) for n in ("decision", "trace") if isinstance(data.get(n), dict)
        )
        shapes.setdefault(key, data)
    return list(shapes.values())


def _cold() -> None:
    """Forget every shape either builder has seen, so that the first sight is tested too."""
    for cache in (
        entry_module._ENTRY_SHAPES,
        entry_module._DECISION_SHAPES,
        entry_module._RESOLVES_SHAPES,
        entry_module._PKI_SHAPES,
        entry_module._ENTRY_PLANS,
        entry_module._ENTRY_READERS,
        intent_module._READERS,
        intent_module._SHAPES,
        intent_module._PLANS,
    ):
        cache.clear()


def test_every_single_change_of_a_real_line_reads_the_same(demo_lines: list[bytes]) -> None:
    """Each line shape, changed in one place (dropped, or any value of WRONG, or added), gives
    the same record or the same error message through both builders, cold or warm."""
    outcomes = {"record": 0, "error": 0}
    for data in _samples(demo_lines):
        for place in _places(data):
            for value in (_DROP, *WRONG):
                changed = _changed(data, place, value)
                _cold()
                outcomes[_same(changed)[0]] += 1
                outcomes[_same(changed)[0]] += 1  # warm: the shape is known now
    assert outcomes["record"] > 1000 and outcomes["error"] > 1000


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(choice=st.data())
def test_changes_in_two_places_read_the_same(
    demo_lines: list[bytes], choice: st.DataObject
) -> None:
    """Two changes at once (the first error found must be the same one), on any line."""
    data = jsonline.loads(choice.draw(st.sampled_from(demo_lines), label="line"))
    for _ in range(2):
        place = choice.draw(st.sampled_from(_places(data)), label="place")
        value = choice.draw(st.sampled_from((_DROP, *WRONG)), label="value")
        data = _changed(data, place, value)
    if choice.draw(st.booleans(), label="cold"):
        _cold()
    _same(data)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "x",
        1,
        {},
        {"kind": "intent"},
        {"kind": "later", "schema": 3},
        {"kind": "later", "schema": 2},
        {"kind": 7},
        {"kind": None, "seq": 1, "time": "t", "prev": "p"},
        {"seq": 1, "time": "t", "prev": "p"},
        {"seq": 1, "time": "t", "prev": "p", "kind": "intent"},
    ],
)
def test_odd_objects_read_the_same(data: Any) -> None:
    """Whatever is not a line's object at all reads (or fails) the same both ways."""
    _same(data)


def test_a_mapping_that_is_not_a_dict_reads_the_same(demo_lines: list[bytes]) -> None:
    """A read-only mapping (the careful path copies it) gives the same record."""
    from types import MappingProxyType

    for raw in demo_lines[:20]:
        data = jsonline.loads(raw)
        assert repr(read_record(MappingProxyType(data))) == repr(
            _read_record_reference(MappingProxyType(data))
        )


def test_huge_integers_read_by_either_parser_give_one_error(demo_lines: list[bytes]) -> None:
    """An integer beyond 64 bits in any integer field: the same message from both builders,
    whether orjson (a float) or json (an int) parsed the line."""
    for data in _samples(demo_lines)[:6]:
        for place in _paths(data):
            if type(_at(data, place)) is not int:
                continue
            for huge in (2**64, -(2**63) - 1):
                line = json.dumps(_changed(data, place, huge)).encode()
                for parsed in (jsonline.loads(line), json.loads(line)):
                    assert _same(parsed)[0] == "error"


def _at(data: Any, place: tuple[Any, ...]) -> Any:
    for key in place:
        data = data[key]
    return data


def test_nested_builders_agree_alone() -> None:
    """Decision, Resolution, PkiEvidence and Trace read alone: the same both ways."""
    samples: list[tuple[type, Any]] = [
        (Decision, {"verdict": "grant", "contract": 1, "product": "p", "debit": 1,
                    "remaining": None, "valid_until": None}),
        (Resolution, {"seq": 1, "tap": 2, "committed": True, "debit": 3}),
        (PkiEvidence, {"ca": "c", "card_certificate": None, "certificate_index": 0,
                       "cached": False, "notices": ["n"]}),
        (Trace, {"card": [{"c": "00"}], "sam": []}),
    ]  # fmt: skip
    for kind, data in samples:
        for place in _places(data):
            for value in (_DROP, *WRONG):
                changed = _changed(data, place, value)
                fast = _outcome(kind.from_json, changed)
                assert fast == _outcome(kind._from_json_reference, changed), changed


def test_the_fast_path_takes_every_line_of_a_real_journal(demo_lines: list[bytes]) -> None:
    """No line the writer wrote needs the careful builder (else the tests above test it twice),
    whether the line's keys are known or not, cold or warm."""
    for cold in (True, False):
        for raw in demo_lines:
            data = jsonline.loads(raw)
            if cold:
                _cold()
            if data.get("kind") == "intent":
                assert intent_module._intent_fast(data) is not None
                assert intent_module._intent_fast({**data, "later": [1]}) is not None
            else:
                assert entry_module._entry_fast(data) is not None
                assert entry_module._entry_fast({**data, "later": [1]}) is not None
