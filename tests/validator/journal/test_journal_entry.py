# SPDX-License-Identifier: Apache-2.0
"""The typed journal entry: exact round trips, typed errors, the schema version (issue 17)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.engine.recording import JournalError
from validator.journal.entry import (
    SCHEMA_VERSION,
    TAP_SCHEMA,
    Decision,
    EntryFormatError,
    JournalEntry,
    Trace,
)
from validator.journal.writer import Journal, canonical, journal_files

# A journal the release before the typed entry wrote (commit cd1443f: `run_demo`, seed 2, 16
# taps, tear rate 0.3, journal key bytes(range(32))): no ``schema`` field, an unknown tap, its
# resolution and a recovery.
RELEASE_1 = Path(__file__).parent / "journals" / "release-cd1443f"


def release_entries() -> list[dict[str, Any]]:
    """The entries of the release-1 journal, as parsed JSON objects."""
    (path,) = journal_files(RELEASE_1)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def a_tap() -> dict[str, Any]:
    """A written tap entry: the release-1 journal's first granted one."""
    return next(e for e in release_entries() if e["outcome"] == "granted")


def test_release_journal_round_trips_exactly() -> None:
    """Every entry the previous release wrote reads as version 1 and writes back the same."""
    entries = release_entries()
    assert {"unknown", "recovered"} <= {e["outcome"] for e in entries}
    assert any("resolves" in e for e in entries) and any("recovered_from_tap" in e for e in entries)
    for data in entries:
        entry = JournalEntry.from_json(data)
        assert entry.schema == 1 and "schema" in entry.absent
        assert entry.to_json() == data


def test_typed_fields() -> None:
    """Fields read typed: nested decision and trace, writes as a tuple, time fallback."""
    entry = JournalEntry.from_json(a_tap())
    assert entry.seq > 0 and entry.outcome == "granted" and entry.station == 101
    assert entry.decision is not None and entry.decision.verdict == "grant"
    assert entry.trace is not None and entry.trace.card[0]["c"].startswith("00A4")
    assert isinstance(entry.writes, tuple) and entry.resolves is None
    assert entry.when == entry.tap_time


def test_unknown_keys_survive_a_round_trip() -> None:
    """Keys this release does not know are kept, at the top and inside nested objects."""
    data = a_tap()
    data["later_field"] = {"x": [1, 2]}
    data["decision"]["later"] = "kept"
    data["trace"]["reader"] = "PC/SC"
    data["resolves"] = {"seq": 3, "tap": 3, "committed": True, "debit": 150, "why": "event"}
    entry = JournalEntry.from_json(data)
    assert entry.extra == {"later_field": {"x": [1, 2]}}
    assert entry.to_json() == data


def test_schema_absent_is_version_1_and_a_newer_one_is_refused() -> None:
    """No schema: version 1; the current version reads; a newer one is an EntryFormatError."""
    data = a_tap()
    assert "schema" not in JournalEntry.from_json(data).to_json()
    data["schema"] = SCHEMA_VERSION
    assert JournalEntry.from_json(data).to_json() == data
    data["schema"] = SCHEMA_VERSION + 1
    newer = rf"^schema: version {SCHEMA_VERSION + 1} is newer than this release"
    with pytest.raises(EntryFormatError, match=newer):
        JournalEntry.from_json(data)
    data["schema"] = "1"
    with pytest.raises(EntryFormatError, match="^schema: "):
        JournalEntry.from_json(data)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("station",), "101", "station: expected an integer, got a string"),
        (("debit",), True, "debit: expected an integer, got a boolean"),
        (("card",), 7, "card: expected a string or null, got an integer"),
        (("outcome",), None, "outcome: expected a string, got null"),
        (("decision", "debit"), "150", "decision.debit: expected an integer, got a string"),
        (("trace", "card"), {}, "trace.card: expected an array, got an object"),
        (("writes",), ["00", 1], "writes[1]: expected a string, got an integer"),
        (("state_read", "07:1"), 1, "state_read.07:1: expected a string, got an integer"),
        (("seq",), "1", "seq: expected an integer, got a string"),
    ],
)
def test_wrong_type_names_the_field(path: tuple[str, ...], value: Any, message: str) -> None:
    """A field of the wrong type is an EntryFormatError (a ValueError) naming the field."""
    data = a_tap()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(EntryFormatError) as raised:
        JournalEntry.from_json(data)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("field", ["seq", "time", "prev"])
def test_missing_chain_field_names_it(field: str) -> None:
    """An entry without one of its chain fields is an EntryFormatError naming it."""
    data = a_tap()
    del data[field]
    with pytest.raises(EntryFormatError, match=f"^{field}: missing$"):
        JournalEntry.from_json(data)


def test_missing_nested_field_names_it() -> None:
    """A decision without its verdict names ``decision.verdict``."""
    data = a_tap()
    del data["decision"]["verdict"]
    with pytest.raises(EntryFormatError, match=r"^decision\.verdict: missing$"):
        JournalEntry.from_json(data)


def test_append_writes_the_schema_and_what_reads_back(tmp_path: Path) -> None:
    """A new tap entry carries ``schema`` 1 (tap entries have not changed, so a release-1 reader
    reads them); its line is the old one plus that field, and reads back."""
    data = a_tap()
    body = {k: v for k, v in data.items() if k not in ("seq", "time", "prev", "hmac")}
    with Journal(tmp_path, key=bytes(range(32))) as journal:
        written = journal.append(body)
    (path,) = journal_files(tmp_path)
    line = path.read_text(encoding="utf-8").rstrip("\n")
    assert json.loads(line) == written and written["schema"] == TAP_SCHEMA == 1
    assert JournalEntry.from_json(written).to_json() == written
    old = {k: v for k, v in written.items() if k not in ("schema", "hmac")}
    again = {**old, "schema": TAP_SCHEMA, "hmac": written["hmac"]}
    assert canonical(again) == line


def test_append_refuses_a_malformed_entry_and_writes_nothing(tmp_path: Path) -> None:
    """An entry that would not read back is a JournalError naming the field; no line is written."""
    data = a_tap()
    data["station"] = "101"
    with Journal(tmp_path) as journal:
        with pytest.raises(JournalError, match="station: expected an integer"):
            journal.append({k: v for k, v in data.items() if k not in ("seq", "time", "prev")})
        assert journal.last_seq == 0
    assert all(path.stat().st_size == 0 for path in journal_files(tmp_path))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(
    extra=st.dictionaries(st.text(min_size=1, max_size=8), _JSON, max_size=4),
    dropped=st.sets(st.sampled_from(["card", "decision", "resolves", "layout", "ms", "trace"])),
)
def test_round_trip_of_any_extra_keys_and_absent_fields(
    extra: dict[str, Any], dropped: set[str]
) -> None:
    """Whatever unknown keys an entry holds and whichever tap fields it lacks, it round-trips."""
    data = a_tap()
    for name in dropped:
        data.pop(name, None)
    known = set(a_tap()) | {"schema", "resolves", "recovered_from_tap"}
    data.update({key: value for key, value in extra.items() if key not in known})
    assert JournalEntry.from_json(data).to_json() == data


def test_a_read_entry_is_an_ordinary_frozen_entry() -> None:
    """What from_json builds (by its fast constructor) equals the dataclass's own, and is frozen."""
    entry = JournalEntry.from_json(a_tap())
    assert type(entry) is JournalEntry and type(entry.decision) is Decision
    assert type(entry.trace) is Trace
    values = {f.name: getattr(entry, f.name) for f in dataclasses.fields(JournalEntry)}
    assert JournalEntry(**values) == entry
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.seq = 2  # type: ignore[misc]
    assert not hasattr(entry, "__dict__")
