# SPDX-License-Identifier: Apache-2.0
"""The journal entry as a type: one tap as the journal holds it, read and written the one way.

The engine builds an entry as a plain mapping (validator.engine.tap.journal_entry: it cannot
import this package); the writer passes it through ``JournalEntry.from_json`` and ``to_json``
before the line is written, so that whatever is written reads back; every reader of entries
(restore at start-up, replay, export, the reliability campaign) goes through ``from_json``.
The chain and the HMAC are computed over the raw mapping, as before: this type changes nothing
of what is hashed.

``schema`` is the entry's format version. An entry without it (every journal written before
it existed) is version 1; a version newer than ``SCHEMA_VERSION`` is refused, as is a field of
the wrong type or a missing chain field (``seq``, ``time``, ``prev``), with an
``EntryFormatError`` naming the field. The tap's own fields are typed where present and None
where absent (``absent`` names them, so that they stay absent on the way back); keys this
release does not know are kept in ``extra``: ``JournalEntry.from_json(d).to_json() == d`` for
every entry the writer writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "SCHEMA_VERSION",
    "Decision",
    "EntryFormatError",
    "JournalEntry",
    "Resolution",
    "Trace",
]

SCHEMA_VERSION = 1

_NONE = type(None)
_INT = (int,)  # exact types: a bool is not a number here, nor an int a string
_STR = (str,)
_BOOL = (bool,)
_NUMBER = (int, float)
_ABSENT: Any = object()


class EntryFormatError(ValueError):
    """A journal entry of the wrong shape: the message names the field and the problem."""


_KIND_NAMES = {
    int: "an integer",
    str: "a string",
    bool: "a boolean",
    float: "a number",
    _NONE: "null",
}


def _wrong(name: str, value: Any, kinds: tuple[type, ...]) -> EntryFormatError:
    wanted = " or ".join(dict.fromkeys(_KIND_NAMES.get(k, k.__name__) for k in kinds))
    return EntryFormatError(f"{name}: expected {wanted}, got {_json_kind(value)}")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return _KIND_NAMES.get(type(value), type(value).__name__)


def _object(name: str, value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise EntryFormatError(f"{name}: expected an object, got {_json_kind(value)}")
    return value


def _array(name: str, value: Any) -> list[Any]:
    if type(value) is not list:
        raise EntryFormatError(f"{name}: expected an array, got {_json_kind(value)}")
    return value


def _field(name: str, data: Mapping[str, Any], kinds: tuple[type, ...], nullable: bool) -> Any:
    """A required field of a nested object, checked against ``kinds`` (and null)."""
    try:
        value = data[name]
    except KeyError:
        raise EntryFormatError(f"{name}: missing") from None
    if (value is None and nullable) or type(value) in kinds:
        return value
    raise _wrong(name, value, kinds + ((_NONE,) if nullable else ()))


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


@dataclass(frozen=True, slots=True)
class Decision:
    """The fare decision of a tap (validator.engine.fares), as journaled."""

    verdict: str
    contract: int | None
    product: str | None
    debit: int
    remaining: int | None
    valid_until: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS: ClassVar[frozenset[str]] = frozenset(
        ("verdict", "contract", "product", "debit", "remaining", "valid_until")
    )

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        """The decision of a ``decision`` object (EntryFormatError naming the field if wrong)."""
        data = _object("decision", data)
        try:
            return cls(
                _field("verdict", data, _STR, False),
                _field("contract", data, _INT, True),
                _field("product", data, _STR, True),
                _field("debit", data, _INT, False),
                _field("remaining", data, _INT, True),
                _field("valid_until", data, _STR, True),
                _extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else {},
            )
        except EntryFormatError as exc:
            raise EntryFormatError(f"decision.{exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The decision's JSON object, as the engine writes it."""
        return {
            **self.extra,
            "verdict": self.verdict,
            "contract": self.contract,
            "product": self.product,
            "debit": self.debit,
            "remaining": self.remaining,
            "valid_until": self.valid_until,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """An earlier unknown tap this tap settled: its seq and tap number, and whether it paid."""

    seq: int
    tap: int
    committed: bool
    debit: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS: ClassVar[frozenset[str]] = frozenset(("seq", "tap", "committed", "debit"))

    @classmethod
    def from_json(cls, data: Any) -> Resolution:
        """The resolution of a ``resolves`` object (EntryFormatError naming the field)."""
        data = _object("resolves", data)
        try:
            return cls(
                _field("seq", data, _INT, False),
                _field("tap", data, _INT, False),
                _field("committed", data, _BOOL, False),
                _field("debit", data, _INT, False),
                _extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else {},
            )
        except EntryFormatError as exc:
            raise EntryFormatError(f"resolves.{exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The resolution's JSON object, as the engine writes it."""
        return {
            **self.extra,
            "seq": self.seq,
            "tap": self.tap,
            "committed": self.committed,
            "debit": self.debit,
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """The APDUs of a tap, card and SAM, each exchange as readers.trace writes it.

    An exchange stays the JSON object it was ({"to", "c", "r", "ms"}, hex strings): the trace
    format is the readers' (readers.trace.Exchange.as_dict), and replay parses its bytes.
    """

    card: tuple[dict[str, Any], ...]
    sam: tuple[dict[str, Any], ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS: ClassVar[frozenset[str]] = frozenset(("card", "sam"))

    @classmethod
    def from_json(cls, data: Any) -> Trace:
        """The trace of a ``trace`` object (EntryFormatError naming the field if wrong)."""
        data = _object("trace", data)
        return cls(
            _exchanges("trace.card", data.get("card", _ABSENT)),
            _exchanges("trace.sam", data.get("sam", _ABSENT)),
            _extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else {},
        )

    def to_json(self) -> dict[str, Any]:
        """The trace's JSON object, as the engine writes it."""
        return {**self.extra, "card": list(self.card), "sam": list(self.sam)}


def _exchanges(name: str, value: Any) -> tuple[dict[str, Any], ...]:
    if value is _ABSENT:
        raise EntryFormatError(f"{name}: missing")
    items = tuple(_array(name, value))
    for number, item in enumerate(items):
        if type(item) is not dict:
            raise EntryFormatError(f"{name}[{number}]: expected an object, got {_json_kind(item)}")
    return items


def _strings(name: str, value: Any) -> tuple[str, ...]:
    items = tuple(_array(name, value))
    for number, item in enumerate(items):
        if type(item) is not str:
            raise EntryFormatError(f"{name}[{number}]: expected a string, got {_json_kind(item)}")
    return items


def _records(name: str, value: Any) -> dict[str, str]:
    records = _object(name, value)
    for key, item in records.items():
        if type(item) is not str:
            raise EntryFormatError(f"{name}.{key}: expected a string, got {_json_kind(item)}")
    return records


# The tap's scalar fields: JSON key -> (types, null allowed). Each is None where absent.
_SCALARS: dict[str, tuple[tuple[type, ...], bool]] = {
    "tap_time": (_STR, False),
    "validator": (_STR, False),
    "station": (_INT, False),
    "card": (_STR, True),
    "product_type": (_STR, True),
    "df_name": (_STR, True),
    "layout": (_STR, True),
    "transaction_counter": (_INT, True),
    "ratified_seen": (_BOOL, True),
    "outcome": (_STR, False),
    "reason": (_STR, True),
    "explanation": (_STR, True),
    "debit": (_INT, False),
    "sam_serial": (_STR, True),
    "terminal_mac": (_STR, True),
    "card_mac": (_STR, True),
    "mac_verified": (_BOOL, True),
    "attempts": (_INT, False),
    "ms": (_NUMBER, False),
    "recovered_from_tap": (_INT, True),
    "hmac": (_STR, False),
}
_CHAIN: dict[str, tuple[type, ...]] = {"seq": _INT, "time": _STR, "prev": _STR}
_NESTED = ("state_read", "writes", "decision", "trace", "resolves")
_OPTIONAL = (*_SCALARS, *_NESTED)
_KNOWN = frozenset((*_OPTIONAL, *_CHAIN, "schema"))


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal entry: a tap (validator.engine.tap.journal_entry) with its chain fields.

    ``absent`` names the optional fields the entry does not hold (read as None, and left out
    again by ``to_json``); ``extra`` holds the keys this release does not know, kept as read.
    """

    seq: int
    time: str
    prev: str
    schema: int = SCHEMA_VERSION
    tap_time: str | None = None
    validator: str | None = None
    station: int | None = None
    card: str | None = None
    product_type: str | None = None
    df_name: str | None = None
    layout: str | None = None
    transaction_counter: int | None = None
    ratified_seen: bool | None = None
    state_read: Mapping[str, str] | None = None
    writes: tuple[str, ...] | None = None
    outcome: str | None = None
    reason: str | None = None
    explanation: str | None = None
    decision: Decision | None = None
    debit: int | None = None
    sam_serial: str | None = None
    terminal_mac: str | None = None
    card_mac: str | None = None
    mac_verified: bool | None = None
    attempts: int | None = None
    ms: float | None = None
    trace: Trace | None = None
    resolves: Resolution | None = None
    recovered_from_tap: int | None = None
    hmac: str | None = None
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalEntry:
        """The entry of a JSON object; EntryFormatError naming the field if it is malformed."""
        if not isinstance(data, Mapping):
            raise EntryFormatError(f"entry: expected an object, got {_json_kind(data)}")
        schema = data.get("schema", _ABSENT)
        absent: set[str] = set()
        if schema is _ABSENT:
            absent.add("schema")
            schema = 1  # written before the field existed
        elif type(schema) is not int or schema < 1:
            raise EntryFormatError(f"schema: expected a version number, got {schema!r}")
        elif schema > SCHEMA_VERSION:
            raise EntryFormatError(
                f"schema: version {schema} is newer than this release knows ({SCHEMA_VERSION})"
            )
        values: dict[str, Any] = {"schema": schema}
        for name, kinds in _CHAIN.items():
            values[name] = _field(name, data, kinds, False)
        for name, (kinds, nullable) in _SCALARS.items():
            value = data.get(name, _ABSENT)
            if value is _ABSENT:
                absent.add(name)
            elif (value is None and nullable) or type(value) in kinds:
                values[name] = value
            else:
                raise _wrong(name, value, kinds + ((_NONE,) if nullable else ()))
        values.update(_nested(data, absent))
        extra = _extra(data, _KNOWN) if not _KNOWN.issuperset(data) else {}
        return cls(**values, absent=frozenset(absent), extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The entry's JSON object: what ``from_json`` read, keys unknown to it included."""
        out: dict[str, Any] = dict(self.extra)
        absent = self.absent
        if "schema" not in absent:
            out["schema"] = self.schema
        out["seq"] = self.seq
        out["time"] = self.time
        out["prev"] = self.prev
        for name in _SCALARS:
            if name not in absent:
                out[name] = getattr(self, name)
        if "state_read" not in absent:
            out["state_read"] = self.state_read
        if "writes" not in absent:
            out["writes"] = None if self.writes is None else list(self.writes)
        if "decision" not in absent:
            out["decision"] = None if self.decision is None else self.decision.to_json()
        if "trace" not in absent:
            out["trace"] = None if self.trace is None else self.trace.to_json()
        if "resolves" not in absent:
            out["resolves"] = None if self.resolves is None else self.resolves.to_json()
        return out

    @property
    def when(self) -> str:
        """The tap's time (the entry's write time for an entry without one)."""
        return self.tap_time or self.time


def _nested(data: Mapping[str, Any], absent: set[str]) -> dict[str, Any]:
    """The nested fields present in ``data``, typed (state_read and decision may be null)."""
    values: dict[str, Any] = {}
    value = data.get("state_read", _ABSENT)
    if value is _ABSENT:
        absent.add("state_read")
    elif value is not None:
        values["state_read"] = _records("state_read", value)
    value = data.get("writes", _ABSENT)
    if value is _ABSENT:
        absent.add("writes")
    else:
        values["writes"] = _strings("writes", value)
    value = data.get("decision", _ABSENT)
    if value is _ABSENT:
        absent.add("decision")
    elif value is not None:
        values["decision"] = Decision.from_json(value)
    value = data.get("trace", _ABSENT)
    if value is _ABSENT:
        absent.add("trace")
    else:
        values["trace"] = Trace.from_json(value)
    value = data.get("resolves", _ABSENT)
    if value is _ABSENT:
        absent.add("resolves")
    else:
        values["resolves"] = Resolution.from_json(value)
    return values
