# SPDX-License-Identifier: Apache-2.0
"""The journal entry as a type: one tap as the journal holds it, read and written the one way.

The engine builds an entry as a plain mapping (validator.engine.tap.journal_entry: it cannot
import this package); the writer passes it through ``JournalEntry.from_json`` and ``to_json``
before the line is written, so that whatever is written reads back; every reader of entries
(restore at start-up, replay, export, the reliability campaign) goes through ``from_json``.
The chain and the HMAC are computed over the raw mapping, as before: this type changes nothing
of what is hashed.

``schema`` is the format version a reader needs to read the record. An entry without it (every
journal written before it existed) is version 1; a version newer than ``SCHEMA_VERSION`` is
refused, as is a field of the wrong type or a missing chain field (``seq``, ``time``, ``prev``),
with an ``EntryFormatError`` naming the field. Tap entries are still written as version 1
(``TAP_SCHEMA``: their format has not changed, so a release that knows only version 1 reads
them); version 2 is the closing intent (validator.journal.intent), a record with a ``kind``,
which a release-1 reader refuses by its schema instead of taking it for a tap. A record with a
``kind`` is never a JournalEntry: ``from_json`` refuses it (``validator.journal.intent.
read_record`` reads either). The tap's own fields are typed where present and None where absent
(``absent`` names them, so that they stay absent on the way back); keys this release does not
know are kept in ``extra``: ``JournalEntry.from_json(d).to_json() == d`` for every entry the
writer writes.

Replay reads millions of lines (issue 21), so ``from_json`` has a fast path: a reader made once
per line layout and shape (see ``_reader``) checks and builds the record in one pass. Whatever it
does not take (a value out of range, a nested object of another shape, any malformed line) goes
to ``_from_json_reference``, the careful builder, which raises the error naming the field or
builds the same record: the fast path never decides what is valid, nor what the message says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from itertools import product
from operator import itemgetter
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

__all__ = [
    "SCHEMA_VERSION",
    "TAP_SCHEMA",
    "Decision",
    "EntryFormatError",
    "JournalEntry",
    "PkiEvidence",
    "Resolution",
    "Trace",
]

SCHEMA_VERSION = 2  # the newest record format this release reads (2: the closing intent)
TAP_SCHEMA = 1  # what tap entries are written as: unchanged since version 1

_NONE = type(None)
_INT = (int,)  # exact types: a bool is not a number here, nor an int a string
_STR = (str,)
_BOOL = (bool,)
_NUMBER = (int, float)
_ONLY_STR = frozenset((str,))
_ONLY_DICT = frozenset((dict,))
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class _Absent:
    """The value of a key an object does not hold (its type tells a shape apart)."""


_ABSENT: Any = _Absent()
_MAX_SHAPES = 4096  # shapes (the type of each field) already checked, kept per type
# The integers every JSON parser of a journal reads as integers: orjson reads one beyond them as
# a float, the standard library as an int; both are refused, with one message (_out_of_range).
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1


class EntryFormatError(ValueError):
    """A journal entry of the wrong shape: the message names the field and the problem."""


_KIND_NAMES = {
    int: "an integer",
    str: "a string",
    bool: "a boolean",
    float: "a number",
    dict: "an object",
    list: "an array",
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


def _out_of_range(name: str) -> EntryFormatError:
    return EntryFormatError(f"{name}: integer out of the 64-bit range")


def beyond_64_bits(value: Any) -> bool:
    """Whether ``value`` is a number beyond the 64-bit range: an int, or a float such as orjson
    makes of one (-2**63 - 1 rounds to the float -2**63); NaN is not (it is no integer)."""
    kind = type(value)
    if kind is int:
        return bool(value < INT_MIN or value > INT_MAX)
    return kind is float and bool(value <= INT_MIN or value > INT_MAX)


def bounded_int(name: str, value: Any) -> Any:
    """``value``, unless it is a number beyond the 64-bit range (EntryFormatError naming it)."""
    if beyond_64_bits(value):
        raise _out_of_range(name)
    return value


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


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    return MappingProxyType({k: v for k, v in data.items() if k not in known})


def _values(
    data: dict[str, Any],
    names: tuple[str, ...],
    missing: tuple[Any, ...],
    shapes: dict[tuple[type, ...], Any],
    check: Callable[[list[Any]], Any],
) -> tuple[list[Any], Any]:
    """The values of ``names`` in ``data`` (_ABSENT where absent) and what ``check`` said of
    their shape: checked once per shape (the type of each value), then looked up."""
    values = list(map(data.get, names, missing))
    shape = tuple(map(type, values))
    known = shapes.get(shape)
    if known is None:
        known = check(values)  # raises EntryFormatError naming the field
        if len(shapes) < _MAX_SHAPES:
            shapes[shape] = known
    return values, known


@dataclass(frozen=True, slots=True)
class Decision:
    """The fare decision of a tap (validator.engine.fares), as journaled."""

    verdict: str
    contract: int | None
    product: str | None
    debit: int
    remaining: int | None
    valid_until: str | None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    KEYS: ClassVar[frozenset[str]] = frozenset(
        ("verdict", "contract", "product", "debit", "remaining", "valid_until")
    )

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        """The decision of a ``decision`` object (EntryFormatError naming the field if wrong)."""
        if cls is Decision:
            made = _decision_fast(data)
            if made is not None:
                return made
        return cls._from_json_reference(data)

    @classmethod
    def _from_json_reference(cls, data: Any) -> Decision:
        """``from_json`` the careful way: every field checked in turn (the fast path's fallback)."""
        values, _ = _values(
            _object("decision", data), _DECISION, _DECISION_MISSING, _DECISION_SHAPES, _decision
        )
        _decision_ints(values)
        values.append(_extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else _EMPTY)
        return cls(*values)

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
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    KEYS: ClassVar[frozenset[str]] = frozenset(("seq", "tap", "committed", "debit"))

    @classmethod
    def from_json(cls, data: Any) -> Resolution:
        """The resolution of a ``resolves`` object (EntryFormatError naming the field)."""
        if cls is Resolution:
            made = _resolution_fast(data)
            if made is not None:
                return made
        return cls._from_json_reference(data)

    @classmethod
    def _from_json_reference(cls, data: Any) -> Resolution:
        """``from_json`` the careful way: every field checked in turn (the fast path's fallback)."""
        values, _ = _values(
            _object("resolves", data), _RESOLVES, _RESOLVES_MISSING, _RESOLVES_SHAPES, _resolves
        )
        _resolves_ints(values)
        values.append(_extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else _EMPTY)
        return cls(*values)

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
class PkiEvidence:
    """A PKI tap's certificates by reference (validator.engine.pki.trust.CardKey.evidence).

    ``card_certificate`` is the first 16 bytes of the certificate's SHA-256: the certificate
    itself is in the trace of the tap that read it from the card (Get Data), once per card
    while the validator keeps it cached (null in a pseudonymised entry: it names the card);
    ``ca`` is its issuer's key reference.
    """

    ca: str
    card_certificate: str | None
    certificate_index: int
    cached: bool
    notices: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    KEYS: ClassVar[frozenset[str]] = frozenset(
        ("ca", "card_certificate", "certificate_index", "cached", "notices")
    )

    @classmethod
    def from_json(cls, data: Any) -> PkiEvidence:
        """The evidence of a ``pki`` object (EntryFormatError naming the field)."""
        if cls is PkiEvidence:
            made = _pki_fast(data)
            if made is not None:
                return made
        return cls._from_json_reference(data)

    @classmethod
    def _from_json_reference(cls, data: Any) -> PkiEvidence:
        """``from_json`` the careful way: every field checked in turn (the fast path's fallback)."""
        values, _ = _values(_object("pki", data), _PKI, _PKI_MISSING, _PKI_SHAPES, _pki)
        _pki_ints(values)
        values[4] = _strings("pki.notices", values[4])
        values.append(_extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else _EMPTY)
        return cls(*values)

    def to_json(self) -> dict[str, Any]:
        """The evidence's JSON object, as the engine writes it."""
        return {
            **self.extra,
            "ca": self.ca,
            "card_certificate": self.card_certificate,
            "certificate_index": self.certificate_index,
            "cached": self.cached,
            "notices": list(self.notices),
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """The APDUs of a tap, card and SAM, each exchange as readers.trace writes it.

    An exchange stays the JSON object it was ({"to", "c", "r", "ms"}, hex strings): the trace
    format is the readers' (readers.trace.Exchange.as_dict), and replay parses its bytes.
    """

    card: tuple[dict[str, Any], ...]
    sam: tuple[dict[str, Any], ...]
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    KEYS: ClassVar[frozenset[str]] = frozenset(("card", "sam"))

    @classmethod
    def from_json(cls, data: Any) -> Trace:
        """The trace of a ``trace`` object (EntryFormatError naming the field if wrong)."""
        if cls is Trace:
            made = _trace_fast(data)
            if made is not None:
                return made
        return cls._from_json_reference(data)

    @classmethod
    def _from_json_reference(cls, data: Any) -> Trace:
        """``from_json`` the careful way: every field checked in turn (the fast path's fallback)."""
        data = _object("trace", data)
        return cls(
            _exchanges("trace.card", data.get("card", _ABSENT)),
            _exchanges("trace.sam", data.get("sam", _ABSENT)),
            _extra(data, cls.KEYS) if len(data) != len(cls.KEYS) else _EMPTY,
        )

    def to_json(self) -> dict[str, Any]:
        """The trace's JSON object, as the engine writes it."""
        return {**self.extra, "card": list(self.card), "sam": list(self.sam)}


def _exchanges(name: str, value: Any) -> tuple[dict[str, Any], ...]:
    if value is _ABSENT:
        raise EntryFormatError(f"{name}: missing")
    items = _array(name, value)
    if not _ONLY_DICT.issuperset(map(type, items)):
        for number, item in enumerate(items):
            if type(item) is not dict:
                kind = _json_kind(item)
                raise EntryFormatError(f"{name}[{number}]: expected an object, got {kind}")
    return tuple(items)


def _strings(name: str, value: list[Any]) -> tuple[str, ...]:
    if not _ONLY_STR.issuperset(map(type, value)):
        for number, item in enumerate(value):
            if type(item) is not str:
                kind = _json_kind(item)
                raise EntryFormatError(f"{name}[{number}]: expected a string, got {kind}")
    return tuple(value)


def _records(name: str, value: dict[str, Any]) -> dict[str, str]:
    if not _ONLY_STR.issuperset(map(type, value.values())):
        for key, item in value.items():
            if type(item) is not str:
                kind = _json_kind(item)
                raise EntryFormatError(f"{name}.{key}: expected a string, got {kind}")
    return value


_Kind = tuple[tuple[type, ...], bool, bool]  # types, null allowed, required


def _check_fields(
    prefix: str, names: tuple[str, ...], kinds: tuple[_Kind, ...]
) -> Callable[[list[Any]], frozenset[str]]:
    """A shape check of the values of ``names``, each of its kind; it returns the absent."""

    def check(values: list[Any]) -> frozenset[str]:
        absent = set()
        for name, value, (types, nullable, required) in zip(names, values, kinds, strict=True):
            if value is _ABSENT:
                if required:
                    raise EntryFormatError(f"{prefix}{name}: missing")
                absent.add(name)
            elif not ((value is None and nullable) or type(value) in types):
                if types is _INT and beyond_64_bits(value):
                    raise _out_of_range(prefix + name)  # as orjson reads a huge int: a float
                raise _wrong(prefix + name, value, types + ((_NONE,) if nullable else ()))
        return frozenset(absent)

    return check


def _int_bounds(
    prefix: str, names: tuple[str, ...], kinds: tuple[_Kind, ...]
) -> Callable[[list[Any]], None]:
    """A check that the integer fields of ``names`` fit in 64 bits (EntryFormatError if not).

    Per value, not per shape: the shape check knows types only. A few comparisons a record."""
    at = tuple(index for index, (types, _, _) in enumerate(kinds) if types is _INT)

    def check(values: list[Any]) -> None:
        for index in at:
            value = values[index]
            if type(value) is int and not INT_MIN <= value <= INT_MAX:
                raise _out_of_range(prefix + names[index])

    return check


_DECISION = ("verdict", "contract", "product", "debit", "remaining", "valid_until")
_DECISION_MISSING = (_ABSENT,) * len(_DECISION)
_DECISION_SHAPES: dict[tuple[type, ...], Any] = {}
_DECISION_KINDS: tuple[_Kind, ...] = (
    (_STR, False, True),
    (_INT, True, True),
    (_STR, True, True),
    (_INT, False, True),
    (_INT, True, True),
    (_STR, True, True),
)
_decision = _check_fields("decision.", _DECISION, _DECISION_KINDS)
_decision_ints = _int_bounds("decision.", _DECISION, _DECISION_KINDS)
_RESOLVES = ("seq", "tap", "committed", "debit")
_RESOLVES_MISSING = (_ABSENT,) * len(_RESOLVES)
_RESOLVES_SHAPES: dict[tuple[type, ...], Any] = {}
_RESOLVES_KINDS: tuple[_Kind, ...] = (
    (_INT, False, True),
    (_INT, False, True),
    (_BOOL, False, True),
    (_INT, False, True),
)
_resolves = _check_fields("resolves.", _RESOLVES, _RESOLVES_KINDS)
_resolves_ints = _int_bounds("resolves.", _RESOLVES, _RESOLVES_KINDS)

_PKI = ("ca", "card_certificate", "certificate_index", "cached", "notices")
_PKI_MISSING = (_ABSENT,) * len(_PKI)
_PKI_SHAPES: dict[tuple[type, ...], Any] = {}
_PKI_KINDS: tuple[_Kind, ...] = (
    (_STR, False, True),
    (_STR, True, True),
    (_INT, False, True),
    (_BOOL, False, True),
    ((list,), False, True),
)
_pki = _check_fields("pki.", _PKI, _PKI_KINDS)
_pki_ints = _int_bounds("pki.", _PKI, _PKI_KINDS)

# Every field of an entry, in JournalEntry's order. The chain fields are required; a tap's are
# None where absent. Nested objects are checked here for their container type, then for what
# they hold.
_OBJECT = (dict,)
_ARRAY = (list,)
_ENTRY_KINDS: dict[str, _Kind] = {
    "seq": (_INT, False, True),
    "time": (_STR, False, True),
    "prev": (_STR, False, True),
    "schema": (_INT, False, False),
    "tap_time": (_STR, False, False),
    "validator": (_STR, False, False),
    "station": (_INT, False, False),
    "card": (_STR, True, False),
    "product_type": (_STR, True, False),
    "df_name": (_STR, True, False),
    "layout": (_STR, True, False),
    "transaction_counter": (_INT, True, False),
    "ratified_seen": (_BOOL, True, False),
    "state_read": (_OBJECT, True, False),
    "writes": (_ARRAY, False, False),
    "outcome": (_STR, False, False),
    "reason": (_STR, True, False),
    "explanation": (_STR, True, False),
    "decision": (_OBJECT, True, False),
    "debit": (_INT, False, False),
    "sam_serial": (_STR, True, False),
    "terminal_mac": (_STR, True, False),
    "card_mac": (_STR, True, False),
    "mac_verified": (_BOOL, True, False),
    "attempts": (_INT, False, False),
    "ms": (_NUMBER, False, False),
    "trace": (_OBJECT, False, False),
    "resolves": (_OBJECT, False, False),
    "recovered_from_tap": (_INT, True, False),
    "intent": (_INT, False, False),
    "pki": (_OBJECT, False, False),
    "hmac": (_STR, False, False),
}
_NAMES = tuple(_ENTRY_KINDS)
_MISSING = (_ABSENT,) * len(_NAMES)
_KNOWN = frozenset(_NAMES)
_INDEX = {name: index for index, name in enumerate(_NAMES)}
_SCHEMA = _INDEX["schema"]
_STATE_READ = _INDEX["state_read"]
_WRITES = _INDEX["writes"]
_DECISION_AT = _INDEX["decision"]
_TRACE = _INDEX["trace"]
_RESOLVES_AT = _INDEX["resolves"]
_PKI_AT = _INDEX["pki"]
_check_entry = _check_fields("", _NAMES, tuple(_ENTRY_KINDS.values()))
_entry_ints = _int_bounds("", _NAMES, tuple(_ENTRY_KINDS.values()))
_ENTRY_SHAPES: dict[tuple[type, ...], tuple[frozenset[str], tuple[int, ...]]] = {}
_ENTRY_PLANS: dict[tuple[type, ...], Any] = {}


def _entry_shape(values: list[Any]) -> tuple[frozenset[str], tuple[int, ...]]:
    """The absent fields of a shape, and where to put None for them (the schema aside)."""
    schema = values[_SCHEMA]
    if schema is not _ABSENT and type(schema) is not int:
        bounded_int("schema", schema)  # as orjson reads a huge int: a float
        raise EntryFormatError(f"schema: expected a version number, got {schema!r}")
    absent = _check_entry(values)
    return absent, tuple(_INDEX[name] for name in absent if name != "schema")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal entry: a tap (validator.engine.tap.journal_entry) with its chain fields.

    ``absent`` names the optional fields the entry does not hold (read as None, and left out
    again by ``to_json``); ``extra`` holds the keys this release does not know, kept as read.
    """

    seq: int
    time: str
    prev: str
    schema: int = TAP_SCHEMA
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
    intent: int | None = None  # the closing intent (its seq) an unknown tap was made from
    pki: PkiEvidence | None = None
    hmac: str | None = None
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalEntry:
        """The entry of a JSON object; EntryFormatError naming the field if it is malformed."""
        if type(data) is dict and cls is JournalEntry:
            made = _entry_fast(data)
            if made is not None:
                return made
        return cls._from_json_reference(data)

    @classmethod
    def _from_json_reference(cls, data: Mapping[str, Any]) -> JournalEntry:
        """``from_json`` the careful way: every field checked in turn (the fast path's fallback)."""
        if type(data) is not dict:
            if not isinstance(data, Mapping):
                raise EntryFormatError(f"entry: expected an object, got {_json_kind(data)}")
            data = dict(data)
        values, (absent, nones) = _values(data, _NAMES, _MISSING, _ENTRY_SHAPES, _entry_shape)
        _entry_ints(values)
        for index in nones:
            values[index] = None
        schema = values[_SCHEMA]
        if schema is _ABSENT:
            values[_SCHEMA] = 1  # written before the field existed
        elif not 1 <= schema <= SCHEMA_VERSION:
            if schema < 1:
                raise EntryFormatError(f"schema: expected a version number, got {schema!r}")
            raise EntryFormatError(
                f"schema: version {schema} is newer than this release knows ({SCHEMA_VERSION})"
            )
        if "kind" in data:  # a closing intent (or a later kind of record) is not a tap
            raise EntryFormatError(f"kind: {data['kind']!r} is a record, not a tap entry")
        value = values[_STATE_READ]
        if value is not None:
            _records("state_read", value)
        value = values[_WRITES]
        if value is not None:
            values[_WRITES] = _strings("writes", value)
        value = values[_DECISION_AT]
        if value is not None:
            values[_DECISION_AT] = Decision._from_json_reference(value)
        value = values[_TRACE]
        if value is not None:
            values[_TRACE] = Trace._from_json_reference(value)
        value = values[_RESOLVES_AT]
        if value is not None:
            values[_RESOLVES_AT] = Resolution._from_json_reference(value)
        value = values[_PKI_AT]
        if value is not None:
            values[_PKI_AT] = PkiEvidence._from_json_reference(value)
        present = len(_NAMES) - len(absent)
        extra = _extra(data, _KNOWN) if len(data) != present else _EMPTY
        values += (absent, extra)
        return cls(*values)

    def to_json(self) -> dict[str, Any]:
        """The entry's JSON object: what ``from_json`` read, keys unknown to it included."""
        out: dict[str, Any] = dict(self.extra)
        absent = self.absent
        for name in _NAMES:
            if name not in absent:
                out[name] = getattr(self, name)
        if self.writes is not None:
            out["writes"] = list(self.writes)
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        if self.trace is not None:
            out["trace"] = self.trace.to_json()
        if self.resolves is not None:
            out["resolves"] = self.resolves.to_json()
        if self.pki is not None:
            out["pki"] = self.pki.to_json()
        return out

    @property
    def when(self) -> str:
        """The tap's time (the entry's write time for an entry without one)."""
        return self.tap_time or self.time


# from_json builds by position: JournalEntry's fields are _NAMES in order, then absent, extra.
assert tuple(f.name for f in fields(JournalEntry)) == (*_NAMES, "absent", "extra")  # noqa: S101


# The fast builders. Each reads the common shape in one pass and returns None for anything else
# (a shape not yet seen valid, an integer beyond 64 bits, a schema out of range, a nested value
# of the wrong type...): the caller then runs the careful builder (``_from_json_reference``),
# which raises the error naming the field, or builds the same record. A fast builder never
# raises and never accepts what the careful one refuses (tests/validator/journal/
# test_entry_fast.py holds them to that, line by line and change by change).

_T = TypeVar("_T")
_TWINS: dict[type, type] = {}  # each class's mutable twin (_maker)


def _maker(cls: type[_T]) -> Callable[[list[Any]], _T]:
    """A constructor of ``cls`` (a frozen dataclass with slots) from its field values in order.

    The dataclass's ``__init__`` sets each field through ``object.__setattr__`` (the class
    refuses assignment): about 0.1 us a field, 3.7 us a JournalEntry. This one stores them in
    a plain twin of the class (the same slots, so the same memory layout), with the ordinary
    attribute stores Python specialises, then makes the object a ``cls``: CPython allows
    ``__class__`` assignment between classes of the same layout. The object is then exactly
    what ``cls(*values)`` makes, frozen like it.
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    assert cls.__slots__ == names  # type: ignore[attr-defined]  # noqa: S101 - one layout
    twin = _TWINS[cls] = type(f"_{cls.__name__}Draft", (), {"__slots__": names})
    unpack = "".join(f"{name}, " for name in names)
    stores = "".join(f"    made_.{name} = {name}\n" for name in names)
    source = (
        f"def make_(values_):\n    ({unpack}) = values_\n    made_ = new_(twin_)\n"
        f"{stores}    made_.__class__ = cls_\n    return made_\n"
    )
    namespace: dict[str, Any] = {"new_": object.__new__, "twin_": twin, "cls_": cls}
    exec(source, namespace)  # noqa: S102 - our own field names, as dataclasses does
    make: Callable[[list[Any]], _T] = namespace["make_"]
    return make


def _int_getter(at: tuple[int, ...]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The values at ``at`` as a tuple (``itemgetter`` gives a lone value for one index)."""
    if len(at) == 1:
        (index,) = at
        return lambda values: (values[index],)
    return itemgetter(*at)


def _shapes(kinds: tuple[_Kind, ...]) -> frozenset[tuple[type, ...]]:
    """Every shape (the type of each field) the careful check accepts, for required fields."""
    assert all(required for _, _, required in kinds)  # noqa: S101 - absent is no shape here
    return frozenset(
        product(*((*types, _NONE) if nullable else types for types, nullable, _ in kinds))
    )


_make_entry = _maker(JournalEntry)
_make_decision = _maker(Decision)
_make_resolution = _maker(Resolution)
_make_pki = _maker(PkiEvidence)
_make_trace = _maker(Trace)
_DECISION_VALID = _shapes(_DECISION_KINDS)
_RESOLVES_VALID = _shapes(_RESOLVES_KINDS)
_PKI_VALID = _shapes(_PKI_KINDS)
_DECISION_SIZE = len(_DECISION)
_RESOLVES_SIZE = len(_RESOLVES)
_PKI_SIZE = len(_PKI)
_ENTRY_INTS = frozenset(name for name, (types, _, _) in _ENTRY_KINDS.items() if types is _INT)
_EntryPlan = tuple[tuple[int, ...], Callable[[list[Any]], tuple[Any, ...]], int, frozenset[str]]


_DECISION_SORTED = tuple(sorted(_DECISION))  # as the writer writes them (canonical JSON)
_DECISION_TWIN: Any = _TWINS[Decision]


def _decision_fast(data: Any) -> Decision | None:
    if type(data) is not dict:
        return None
    if tuple(data) != _DECISION_SORTED:
        return _decision_any(data)
    # The writer's order, unpacked in one step: a third faster than by key.
    contract, debit, product, remaining, valid_until, verdict = data.values()
    if (
        type(verdict),
        type(contract),
        type(product),
        type(debit),
        type(remaining),
        type(valid_until),
    ) not in _DECISION_VALID:
        return None
    numbers = (contract or 0, debit, remaining or 0)
    if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
        return None
    made = object.__new__(_DECISION_TWIN)  # as _maker's constructor does
    made.verdict = verdict
    made.contract = contract
    made.product = product
    made.debit = debit
    made.remaining = remaining
    made.valid_until = valid_until
    made.extra = _EMPTY
    made.__class__ = Decision
    decision: Decision = made
    return decision


def _decision_any(data: dict[str, Any]) -> Decision | None:
    """The fast builder of a decision whose keys are in another order, or other keys."""
    values: list[Any] = list(map(data.get, _DECISION, _DECISION_MISSING))
    if tuple(map(type, values)) not in _DECISION_VALID:
        return None
    numbers = (values[1] or 0, values[3], values[4] or 0)  # contract, debit, remaining
    if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
        return None
    values.append(_extra(data, Decision.KEYS) if len(data) != _DECISION_SIZE else _EMPTY)
    return _make_decision(values)


def _resolution_fast(data: Any) -> Resolution | None:
    if type(data) is not dict:
        return None
    values: list[Any] = list(map(data.get, _RESOLVES, _RESOLVES_MISSING))
    if tuple(map(type, values)) not in _RESOLVES_VALID:
        return None
    seq, tap, _, debit = values
    if min(seq, tap, debit) < INT_MIN or max(seq, tap, debit) > INT_MAX:
        return None
    values.append(_extra(data, Resolution.KEYS) if len(data) != _RESOLVES_SIZE else _EMPTY)
    return _make_resolution(values)


def _pki_fast(data: Any) -> PkiEvidence | None:
    if type(data) is not dict:
        return None
    values: list[Any] = list(map(data.get, _PKI, _PKI_MISSING))
    if tuple(map(type, values)) not in _PKI_VALID:
        return None
    if not INT_MIN <= values[2] <= INT_MAX or not _ONLY_STR.issuperset(map(type, values[4])):
        return None
    values[4] = tuple(values[4])
    values.append(_extra(data, PkiEvidence.KEYS) if len(data) != _PKI_SIZE else _EMPTY)
    return _make_pki(values)


def _trace_fast(data: Any) -> Trace | None:
    if type(data) is not dict:
        return None
    card = data.get("card")
    sam = data.get("sam")
    if type(card) is not list or type(sam) is not list:
        return None
    if not (_ONLY_DICT.issuperset(map(type, card)) and _ONLY_DICT.issuperset(map(type, sam))):
        return None
    extra = _extra(data, Trace.KEYS) if len(data) != 2 else _EMPTY  # noqa: PLR2004
    return _make_trace([tuple(card), tuple(sam), extra])


def _entry_plan(values: list[Any]) -> _EntryPlan | None:
    """What the fast builder needs to know of the shape of ``values`` (checked once per shape),
    or None if the careful check refuses it: where to put None, the integers to bound, how many
    known fields are present, and the absent ones."""
    try:
        absent, nones = _entry_shape(values)
    except EntryFormatError:
        return None
    ints = tuple(
        index
        for index, name in enumerate(_NAMES)
        if name in _ENTRY_INTS and type(values[index]) is int
    )
    plan = (nones, _int_getter(ints), len(_NAMES) - len(absent), absent)
    if len(_ENTRY_PLANS) < _MAX_SHAPES:
        _ENTRY_PLANS[tuple(map(type, values))] = plan
    return plan


# A reader per line layout and shape. A layout is a line's keys in order (the writer writes them
# sorted: a journal holds a few), a shape the type of each value. For a layout of known fields
# whose shape the careful check accepts, a reader is made (as dataclasses makes __init__): it
# takes the line's values in order (dict.values, one call) and holds, as constants, where each
# one goes and which to check further (integers in 64 bits, the schema's version, the strings
# of a list or an object, nested objects); it returns None where the careful builder must see
# the line. Any other line (keys this release does not know, a shape refused, more readers
# than kept) goes the general fast way (_entry_fast_keys).
_Reader = Callable[[list[Any]], Any]
_MAX_READERS = 256  # per record type: a few per journal, each compiled once (about 0.2 ms)


def _reader(
    cls: type,
    keys: tuple[str, ...],
    shape: tuple[type, ...],
    defaults: dict[str, Any],
    checks: dict[str, str],
) -> _Reader:
    """A reader of lines of ``keys`` and ``shape`` into ``cls`` (see above).

    ``defaults``: the value of an absent field (None if not there); ``checks``: how a field of
    the layout is checked when its value is not null, by name: "int" (64 bits), "version N" (a
    version from N to the newest this release reads), "equals X" (the string X), "strings"
    (an array of strings, made a tuple), "string values" (an object of strings), or "object F"
    (a nested object, built by its fast builder F).
    """
    names = tuple(f.name for f in fields(cls))[:-2]  # absent, extra: set below
    at = {name: index for index, name in enumerate(keys)}
    absent = frozenset({name for name in names if name not in at})  # as _check_fields
    ints = tuple(
        index
        for index, name in enumerate(keys)
        if checks.get(name) == "int" and shape[index] is int
    )
    lines = []
    if ints:
        lines.append(f"numbers_ = ({''.join(f'values_[{i}], ' for i in ints)})")
        lines.append("if min(numbers_) < INT_MIN or max(numbers_) > INT_MAX: return None")
    value: dict[str, str] = {}
    for index, name in enumerate(keys):
        check = checks.get(name)
        value[name] = f"values_[{index}]"
        if check is None or check == "int" or shape[index] is _NONE:
            continue
        how, _, what = check.partition(" ")
        if how == "version":
            lines.append(f"if not {int(what)} <= values_[{index}] <= SCHEMA_VERSION: return None")
        elif how == "equals":
            lines.append(f"if values_[{index}] != {what!r}: return None")
        elif check == "strings":
            lines.append(f"if not _ONLY_STR.issuperset(map(type, values_[{index}])): return None")
            value[name] = f"tuple(values_[{index}])"
        elif check == "string values":
            lines.append(
                f"if not _ONLY_STR.issuperset(map(type, values_[{index}].values())): return None"
            )
        else:
            assert how == "object" and what.isidentifier(), check  # noqa: S101
            lines.append(f"{name}_ = {what}(values_[{index}])")
            lines.append(f"if {name}_ is None: return None")
            value[name] = f"{name}_"
    lines.append("made_ = new_(twin_)")
    for name in names:
        lines.append(f"made_.{name} = {value.get(name, repr(defaults.get(name)))}")
    lines += ["made_.absent = absent_", "made_.extra = _EMPTY", "made_.__class__ = cls_"]
    source = "def read_(values_):\n" + "".join(f"    {line}\n" for line in lines)
    source += "    return made_\n"
    namespace = dict(globals())  # the fast builders, _ONLY_STR, INT_MIN...
    namespace.update(new_=object.__new__, twin_=_TWINS[cls], cls_=cls, absent_=absent)
    exec(source, namespace)  # noqa: S102 - our own field names and checks, as dataclasses does
    read: _Reader = namespace["read_"]
    return read


_ENTRY_CHECKS = {name: "int" for name in _ENTRY_INTS} | {
    "schema": f"version {TAP_SCHEMA}",
    "state_read": "string values",
    "writes": "strings",
    "decision": "object _decision_fast",
    "trace": "object _trace_fast",
    "resolves": "object _resolution_fast",
    "pki": "object _pki_fast",
}
_ENTRY_READERS: dict[tuple[tuple[str, ...], tuple[type, ...]], _Reader | None] = {}


def _entry_reader(
    data: dict[str, Any], key: tuple[tuple[str, ...], tuple[type, ...]]
) -> _Reader | None:
    """The reader of the layout and shape of ``data`` (``key``), or None (the general way)."""
    if len(_ENTRY_READERS) >= _MAX_READERS:
        return None
    reader = None
    keys, shape = key
    if _KNOWN.issuperset(keys) and _entry_plan(list(map(data.get, _NAMES, _MISSING))):
        reader = _reader(JournalEntry, keys, shape, {"schema": TAP_SCHEMA}, _ENTRY_CHECKS)
    _ENTRY_READERS[key] = reader
    return reader


NestedBuilder = Callable[[Any], Any]  # a nested object's fast builder: None if not taken


def built_nested(values: list[Any], builders: Sequence[tuple[int, NestedBuilder]]) -> bool:
    """Each nested object present at its index built in place by its fast builder; False as
    soon as one is not taken (the careful builder then reads the whole record)."""
    for index, build in builders:
        value = values[index]
        if value is not None:
            value = values[index] = build(value)
            if value is None:
                return False
    return True


_ENTRY_NESTED = (
    (_DECISION_AT, _decision_fast),
    (_TRACE, _trace_fast),
    (_RESOLVES_AT, _resolution_fast),
    (_PKI_AT, _pki_fast),
)


def _entry_fast(data: dict[str, Any]) -> JournalEntry | None:
    values = list(data.values())
    key = (tuple(data), tuple(map(type, values)))
    reader = _ENTRY_READERS.get(key, _ABSENT)
    if reader is _ABSENT:
        reader = _entry_reader(data, key)
    if reader is None:
        return _entry_fast_keys(data)
    made: JournalEntry | None = reader(values)
    return made


def _entry_fast_keys(data: dict[str, Any]) -> JournalEntry | None:
    """The general fast builder: any keys (those this release does not know kept in
    ``extra``), a shape checked once then looked up."""
    values: list[Any] = list(map(data.get, _NAMES, _MISSING))
    plan = _ENTRY_PLANS.get(tuple(map(type, values)))
    if plan is None:
        plan = _entry_plan(values)
        if plan is None:
            return None
    nones, ints, present, absent = plan
    numbers = ints(values)  # seq at least: a shape without it is refused
    if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
        return None
    schema = values[_SCHEMA]
    if schema is _ABSENT:
        values[_SCHEMA] = 1  # written before the field existed
    elif not 1 <= schema <= SCHEMA_VERSION:
        return None
    if len(data) == present:
        extra = _EMPTY
    elif "kind" in data:  # a record, not a tap
        return None
    else:
        extra = _extra(data, _KNOWN)
    for index in nones:
        values[index] = None
    value = values[_STATE_READ]
    if value is not None and not _ONLY_STR.issuperset(map(type, value.values())):
        return None
    value = values[_WRITES]
    if value is not None:
        if not _ONLY_STR.issuperset(map(type, value)):
            return None
        values[_WRITES] = tuple(value)
    if not built_nested(values, _ENTRY_NESTED):
        return None
    values += (absent, extra)
    return _make_entry(values)
