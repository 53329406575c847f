# SPDX-License-Identifier: Apache-2.0
"""EN 1545 final types (calypso-data-model 2.1) and the Keyple demo's compact types (3.2).

A decoded field keeps its raw unsigned value, so that encoding gives back the same bits; these
functions turn a raw value into a readable JSON value (``display``) and a Python or JSON value
back into raw bits (``to_raw``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

EN1545_EPOCH = dt.date(1997, 1, 1)  # dates: days since 1997-01-01 (section 2.1)
COMPACT_EPOCH = dt.date(2010, 1, 1)  # Keyple demo DateCompact (section 3.2)
ALPHABET = "-ABCDEFGHIJKLMNOPQRSTUVWXYZ???? "  # 5 bits a character, 31 = space (2.1)

JsonValue = int | str | list[int] | None


class Kind(StrEnum):
    """How a field's bits are read."""

    INT = "int"  # unsigned integer (identifiers, codes, counts)
    DATE = "date"  # 14 bits, days since 1997-01-01
    TIME = "time"  # 11 bits, minutes since midnight
    DATETIME = "datetime"  # 30 bits, seconds since 1997-01-01
    QUARTER_HOURS = "quarter_hours"  # 15-minute units; 96 end of service, 127 not significant
    BCD_DATE = "bcd_date"  # 32 bits YYYYMMDD in BCD
    ALPHA = "alpha"  # 5 bits per character
    NETWORK_ID = "network_id"  # 24 bits: 3 BCD digits of country + 3 of network
    AMOUNT = "amount"  # cents
    ZONES = "zones"  # bitmap of zones 1..n (bit 0 = zone 1)
    DATE_COMPACT = "date_compact"  # Keyple demo: 16 bits, days since 2010-01-01
    TIME_COMPACT = "time_compact"  # Keyple demo: 16 bits, minutes since midnight
    UNKNOWN = "unknown"  # content not specified (0-bit placeholders such as ContractData)


def _bcd_digits(raw: int, digits: int) -> str:
    return f"{raw:0{digits}X}"


LAST_MINUTE = 23 * 60 + 59
# The kinds some raw values of which are invalid: invalid_reason answers None for the others.
CHECKED_KINDS = frozenset({Kind.TIME, Kind.TIME_COMPACT})


def invalid_reason(kind: Kind, raw: int) -> str | None:
    """Why a raw value is not a valid value of its kind (a time past 23:59), if it is not."""
    if kind in CHECKED_KINDS and raw > LAST_MINUTE:
        return f"{raw // 60:02d}:{raw % 60:02d} is not a time of day (above 23:59)"
    return None


def display(kind: Kind, raw: int, bits: int) -> JsonValue:
    """A readable JSON value: ISO dates, HH:MM times, text, zone lists; else the integer."""
    if kind in (Kind.DATE, Kind.DATE_COMPACT):
        epoch = EN1545_EPOCH if kind is Kind.DATE else COMPACT_EPOCH
        return (epoch + dt.timedelta(days=raw)).isoformat()
    if kind in (Kind.TIME, Kind.TIME_COMPACT):
        shown = f"{raw // 60:02d}:{raw % 60:02d}"
        # Minutes since midnight: 1440 and above is no time of day (a blank FFFFh reads 1092:15).
        return shown if raw <= LAST_MINUTE else f"{shown} (invalid: above 23:59)"
    if kind is Kind.DATETIME:
        stamp = dt.datetime.combine(EN1545_EPOCH, dt.time()) + dt.timedelta(seconds=raw)
        return stamp.isoformat()
    if kind is Kind.QUARTER_HOURS:
        return f"{raw // 4:02d}:{15 * (raw % 4):02d}" if raw < 96 else raw
    if kind is Kind.BCD_DATE:
        digits = _bcd_digits(raw, bits // 4)
        try:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
        except ValueError:
            return digits  # not a valid BCD date: the digits as stored
    if kind is Kind.ALPHA:
        count = bits // 5
        chars = [ALPHABET[(raw >> (5 * (count - 1 - i))) & 0x1F] for i in range(count)]
        return "".join(chars).rstrip()
    if kind is Kind.NETWORK_ID:
        return _bcd_digits(raw, bits // 4)
    if kind is Kind.ZONES:
        return [zone + 1 for zone in range(bits) if raw >> zone & 1]
    if kind is Kind.UNKNOWN:
        return None
    return raw


def _from_text(kind: Kind, text: str, bits: int) -> int:
    if kind in (Kind.DATE, Kind.DATE_COMPACT, Kind.BCD_DATE):
        return to_raw(kind, dt.date.fromisoformat(text), bits)
    if kind in (Kind.TIME, Kind.TIME_COMPACT, Kind.QUARTER_HOURS):
        return to_raw(kind, dt.time.fromisoformat(text), bits)
    if kind is Kind.DATETIME:
        return to_raw(kind, dt.datetime.fromisoformat(text), bits)
    if kind is Kind.NETWORK_ID:
        if not text.isdigit() or len(text) > bits // 4:
            raise ValueError(f"network id {text!r} is not {bits // 4} digits")
        return int(text, 16)  # BCD: each decimal digit is one nibble
    if kind is Kind.ALPHA:
        count = bits // 5
        if len(text) > count:
            raise ValueError(f"{text!r} is longer than {count} characters")
        raw = 0
        for char in text.upper().ljust(count):
            if char not in ALPHABET or char == "?":
                raise ValueError(f"character {char!r} has no EN 1545 alpha code")
            raw = raw << 5 | ALPHABET.index(char)
        return raw
    raise ValueError(f"a {kind.value} field takes an integer, not {text!r}")


def to_raw(kind: Kind, value: object, bits: int) -> int:
    """The raw bits of a value: an int as is, or a date, time, text or zone list by kind."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _from_text(kind, value, bits)
    if isinstance(value, dt.datetime) and kind is Kind.DATETIME:
        start = dt.datetime.combine(EN1545_EPOCH, dt.time())
        return int((value - start).total_seconds())
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        if kind is Kind.BCD_DATE:
            return int(f"{value.year:04d}{value.month:02d}{value.day:02d}", 16)
        if kind in (Kind.DATE, Kind.DATE_COMPACT):
            epoch = EN1545_EPOCH if kind is Kind.DATE else COMPACT_EPOCH
            return (value - epoch).days
    if isinstance(value, dt.time):
        minutes = value.hour * 60 + value.minute
        if kind in (Kind.TIME, Kind.TIME_COMPACT):
            return minutes
        if kind is Kind.QUARTER_HOURS:
            return minutes // 15
    if isinstance(value, list) and kind is Kind.ZONES:
        raw = 0
        for zone in value:
            if not isinstance(zone, int) or not 1 <= zone <= bits:
                raise ValueError(f"zone {zone!r} outside 1..{bits}")
            raw |= 1 << (zone - 1)
        return raw
    raise ValueError(f"cannot encode {value!r} as a {kind.value} field")


def date_from_raw(raw: int) -> dt.date:
    """An EN 1545 date (days since 1997-01-01) as a date."""
    return EN1545_EPOCH + dt.timedelta(days=raw)


def time_from_raw(raw: int) -> dt.time:
    """An EN 1545 time (minutes since midnight) as a time; past 23:59 reads as 23:59."""
    raw = min(raw, 1439)
    return dt.time(raw // 60, raw % 60)
