# SPDX-License-Identifier: Apache-2.0
"""The closing intent: the journal's record, made durable before a Close is sent, of what the
Close may commit (DESIGN section 6: a crash after the card commits leaves an ``unknown`` tap to
resolve, never a paid tap with no trace).

An intent is a journal line like a tap entry, in the same chain and under the same HMAC, with
``"kind": "intent"`` and ``"schema": 2``: a release that knows only version 1 refuses it by its
schema rather than reading it as a tap. It holds the card, the transaction counter, the writes
sent (hex APDUs: the event record among them recognises the tap on the card later), the debit
sent, the decision, and the resolution of an earlier unknown tap of the card that the tap's
reads settled. The tap's own entry follows it; an intent that no tap entry follows (the
validator stopped in between) is *open*: at start-up (validator.journal.pending) it becomes an
``unknown`` tap entry carrying ``"intent": <its seq>``, pending until the card comes back.

``read_record`` reads any line: a tap entry (JournalEntry) or an intent (ClosingIntent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

# The entry module's field checks, shared so that both records read alike.
from validator.journal.entry import (
    _ABSENT,
    _EMPTY,
    _INT,
    _MAX_READERS,
    _ONLY_STR,
    _STR,
    INT_MAX,
    INT_MIN,
    SCHEMA_VERSION,
    Decision,
    EntryFormatError,
    JournalEntry,
    Resolution,
    _check_fields,
    _decision_fast,
    _entry_fast,
    _extra,
    _int_bounds,
    _int_getter,
    _json_kind,
    _Kind,
    _maker,
    _Reader,
    _reader,
    _resolution_fast,
    _strings,
    bounded_int,
    built_nested,
)
from validator.journal.files import journal_files, parse_entry

__all__ = [
    "INTENT_KIND",
    "INTENT_SCHEMA",
    "ClosingIntent",
    "open_intents",
    "read_record",
    "unsettled",
]

INTENT_KIND = "intent"
INTENT_SCHEMA = 2  # the first format version that has records of a kind other than taps

_OBJECT = (dict,)
_ARRAY = (list,)
_INTENT_KINDS: dict[str, _Kind] = {
    "seq": (_INT, False, True),
    "time": (_STR, False, True),
    "prev": (_STR, False, True),
    "schema": (_INT, False, True),
    "kind": (_STR, False, True),
    "tap_time": (_STR, False, False),
    "validator": (_STR, False, False),
    "station": (_INT, False, False),
    "card": (_STR, False, True),
    "product_type": (_STR, True, False),
    "df_name": (_STR, True, False),
    "layout": (_STR, True, False),
    "transaction_counter": (_INT, True, False),
    "writes": (_ARRAY, False, True),
    "debit": (_INT, False, True),
    "decision": (_OBJECT, True, False),
    "sam_serial": (_STR, True, False),
    "resolves": (_OBJECT, False, False),
    "hmac": (_STR, False, False),
}
_NAMES = tuple(_INTENT_KINDS)
_KNOWN = frozenset(_NAMES)
_check_intent = _check_fields("", _NAMES, tuple(_INTENT_KINDS.values()))
_intent_ints = _int_bounds("", _NAMES, tuple(_INTENT_KINDS.values()))
_MISSING = (_ABSENT,) * len(_NAMES)
_INDEX = {name: index for index, name in enumerate(_NAMES)}
_WRITES, _DECISION, _RESOLVES = _INDEX["writes"], _INDEX["decision"], _INDEX["resolves"]
_INTENT_NESTED = ((_DECISION, _decision_fast), (_RESOLVES, _resolution_fast))
_SCHEMA, _KIND = _INDEX["schema"], _INDEX["kind"]
_SHAPES: dict[tuple[type, ...], tuple[frozenset[str], tuple[int, ...]]] = {}
_MAX_SHAPES = 4096  # shapes already checked, as the entry module keeps its own
_INTS = frozenset(name for name, (types, _, _) in _INTENT_KINDS.items() if types is _INT)
_Plan = tuple[tuple[int, ...], Callable[[list[Any]], tuple[Any, ...]], int, frozenset[str]]
_PLANS: dict[tuple[type, ...], _Plan] = {}


@dataclass(frozen=True, slots=True)
class ClosingIntent:
    """A closing intent as the journal holds it (see the module's docstring).

    ``absent`` names the optional fields the record does not hold; ``extra`` keeps the keys
    this release does not know, so that ``from_json(d).to_json() == d``.
    """

    seq: int
    time: str
    prev: str
    schema: int
    kind: str
    tap_time: str | None
    validator: str | None
    station: int | None
    card: str
    product_type: str | None
    df_name: str | None
    layout: str | None
    transaction_counter: int | None
    writes: tuple[str, ...]
    debit: int
    decision: Decision | None
    sam_serial: str | None
    resolves: Resolution | None
    hmac: str | None
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    KIND: ClassVar[str] = INTENT_KIND

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClosingIntent:
        """The intent of a JSON object; EntryFormatError naming the field if it is malformed."""
        if type(data) is dict and cls is ClosingIntent:
            made = _intent_fast(data)
            if made is not None:
                return made
        return cls._from_json_reference(data)

    @classmethod
    def _from_json_reference(cls, data: Mapping[str, Any]) -> ClosingIntent:
        """``from_json`` the careful way: every field checked in turn (the fast path's fallback)."""
        if not isinstance(data, Mapping):
            raise EntryFormatError(f"intent: expected an object, got {_json_kind(data)}")
        values = list(map(data.get, _NAMES, _MISSING))
        _intent_ints(values)
        _check_schema(data.get("schema", _ABSENT))
        # The shape (each value's type) is checked once, then looked up: replay reads millions.
        shape = tuple(map(type, values))
        known = _SHAPES.get(shape)
        if known is None:
            absent = _check_intent(values)
            known = (absent, tuple(_INDEX[name] for name in absent))
            if len(_SHAPES) < _MAX_SHAPES:
                _SHAPES[shape] = known
        absent, nones = known
        if data["kind"] != INTENT_KIND:
            raise EntryFormatError(f"kind: expected {INTENT_KIND!r}, got {data['kind']!r}")
        for index in nones:
            values[index] = None
        values[_WRITES] = _strings("writes", values[_WRITES])
        if values[_DECISION] is not None:
            values[_DECISION] = Decision._from_json_reference(values[_DECISION])
        if values[_RESOLVES] is not None:
            values[_RESOLVES] = Resolution._from_json_reference(values[_RESOLVES])
        extra = _extra(data, _KNOWN) if len(data) != len(_NAMES) - len(absent) else _EMPTY
        values += (absent, extra)
        return cls(*values)

    def to_json(self) -> dict[str, Any]:
        """The intent's JSON object: what ``from_json`` read, keys unknown to it included."""
        out: dict[str, Any] = dict(self.extra)
        for name in _NAMES:
            if name not in self.absent:
                out[name] = getattr(self, name)
        out["writes"] = list(self.writes)
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        if self.resolves is not None:
            out["resolves"] = self.resolves.to_json()
        return out


# from_json builds by position: the record's fields are _NAMES, then absent and extra.
assert tuple(f.name for f in fields(ClosingIntent)) == (*_NAMES, "absent", "extra")  # noqa: S101
_make_intent = _maker(ClosingIntent)


def _plan(values: list[Any]) -> _Plan | None:
    """What the fast builder needs to know of the shape of ``values`` (checked once per shape),
    or None if the careful check refuses it: where to put None, the integers to bound, how many
    known fields are present, and the absent ones."""
    try:
        absent = _check_intent(values)
    except EntryFormatError:
        return None
    ints = tuple(
        index for index, name in enumerate(_NAMES) if name in _INTS and type(values[index]) is int
    )
    nones = tuple(_INDEX[name] for name in absent)
    plan = (nones, _int_getter(ints), len(_NAMES) - len(absent), absent)
    if len(_PLANS) < _MAX_SHAPES:
        _PLANS[tuple(map(type, values))] = plan
    return plan


# An intent read by a reader of its line's layout and shape, as a tap entry is
# (validator.journal.entry._reader).
_CHECKS = {name: "int" for name in _INTS} | {
    "schema": f"version {INTENT_SCHEMA}",
    "kind": f"equals {INTENT_KIND}",
    "writes": "strings",
    "decision": "object _decision_fast",
    "resolves": "object _resolution_fast",
}
_READERS: dict[tuple[tuple[str, ...], tuple[type, ...]], _Reader | None] = {}


def _intent_reader(
    data: dict[str, Any], key: tuple[tuple[str, ...], tuple[type, ...]]
) -> _Reader | None:
    """The reader of the layout and shape of ``data`` (``key``), or None (the general way)."""
    if len(_READERS) >= _MAX_READERS:
        return None
    reader = None
    keys, shape = key
    if _KNOWN.issuperset(keys) and _plan(list(map(data.get, _NAMES, _MISSING))):
        reader = _reader(ClosingIntent, keys, shape, {}, _CHECKS)
    _READERS[key] = reader
    return reader


def _intent_fast(data: dict[str, Any]) -> ClosingIntent | None:
    """The intent of ``data`` in one pass, or None for anything the careful builder must see (as
    the entry module's fast builders: never an error, never what the careful one refuses)."""
    values = list(data.values())
    key = (tuple(data), tuple(map(type, values)))
    reader = _READERS.get(key, _ABSENT)
    if reader is _ABSENT:
        reader = _intent_reader(data, key)
    if reader is None:
        return _intent_fast_keys(data)
    made: ClosingIntent | None = reader(values)
    return made


def _intent_fast_keys(data: dict[str, Any]) -> ClosingIntent | None:
    """The general fast builder: any keys (those this release does not know kept in
    ``extra``), a shape checked once then looked up."""
    values: list[Any] = list(map(data.get, _NAMES, _MISSING))
    plan = _PLANS.get(tuple(map(type, values)))
    if plan is None:
        plan = _plan(values)
        if plan is None:
            return None
    nones, ints, present, absent = plan
    numbers = ints(values)  # seq and schema at least: a shape without them is refused
    if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
        return None
    if not INTENT_SCHEMA <= values[_SCHEMA] <= SCHEMA_VERSION or values[_KIND] != INTENT_KIND:
        return None
    for index in nones:
        values[index] = None
    writes = values[_WRITES]
    if not _ONLY_STR.issuperset(map(type, writes)):
        return None
    values[_WRITES] = tuple(writes)
    if not built_nested(values, _INTENT_NESTED):
        return None
    extra = _extra(data, _KNOWN) if len(data) != present else _EMPTY
    values += (absent, extra)
    return _make_intent(values)


def _check_schema(schema: Any) -> None:
    """An intent's schema: a version this release reads, at least the intent's own."""
    if schema is _ABSENT:
        raise EntryFormatError("schema: missing")
    bounded_int("schema", schema)  # as orjson reads a huge int: a float
    if type(schema) is not int or schema < INTENT_SCHEMA:
        wanted = f"a version number >= {INTENT_SCHEMA}"
        raise EntryFormatError(f"schema: expected {wanted}, got {schema!r}")
    if schema > SCHEMA_VERSION:
        raise EntryFormatError(
            f"schema: version {schema} is newer than this release knows ({SCHEMA_VERSION})"
        )


def read_record(data: Mapping[str, Any]) -> JournalEntry | ClosingIntent:
    """A journal line's record: a tap entry, or a closing intent (by its ``kind``).

    EntryFormatError for a malformed record, a newer schema, or a kind this release does not
    know (after the schema: a later release's record says so by its version first).
    """
    if type(data) is dict:  # the fast builders, as from_json runs them
        kind = data.get("kind", _ABSENT)
        if kind is _ABSENT:
            return _entry_fast(data) or JournalEntry._from_json_reference(data)
        if kind == INTENT_KIND:
            return _intent_fast(data) or ClosingIntent._from_json_reference(data)
    return _read_record_reference(data)


def _read_record_reference(data: Mapping[str, Any]) -> JournalEntry | ClosingIntent:
    """``read_record`` the careful way (the fast path's fallback, and its reference in tests)."""
    if not isinstance(data, Mapping) or "kind" not in data:
        return JournalEntry._from_json_reference(data)
    if data["kind"] == INTENT_KIND:
        return ClosingIntent._from_json_reference(data)
    schema = data.get("schema")
    if type(schema) is int and schema > SCHEMA_VERSION:
        raise EntryFormatError(
            f"schema: version {schema} is newer than this release knows ({SCHEMA_VERSION})"
        )
    raise EntryFormatError(f"kind: {data['kind']!r} is not a record this release knows")


def open_intents(directory: Path) -> list[ClosingIntent]:
    """The intents after the journal's last tap entry (no tap entry followed them), oldest first.

    Read from the end of the newest files, past a file that holds nothing else; an intent that
    does not read is skipped (the chain check reports it), any other line ends the search.
    """
    found: list[ClosingIntent] = []
    for path in reversed(journal_files(directory)):
        for raw in reversed(path.read_bytes().split(b"\n")):
            if not raw.strip():
                continue
            data = parse_entry(raw)
            if data is None or data.get("kind") != INTENT_KIND:
                return found[::-1]
            try:
                found.append(ClosingIntent.from_json(data))
            except EntryFormatError:
                continue
    return found[::-1]


def unsettled(intents: list[ClosingIntent]) -> list[ClosingIntent]:
    """Of a card's open intents, the last one (a rerun or a later session of the same tap
    supersedes the earlier: it holds every write sent); by seq."""
    last: dict[str, ClosingIntent] = {}
    for intent in intents:
        last[intent.card] = intent
    return sorted(last.values(), key=lambda intent: intent.seq)
