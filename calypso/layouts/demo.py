# SPDX-License-Identifier: Apache-2.0
"""The Keyple demo ticketing layout: byte-aligned 29-byte records (calypso-data-model 3.3).

Dates are DateCompact (days since 2010-01-01), times TimeCompact (minutes since midnight),
all integers big-endian and unsigned (pitfall 7 of section 3.10: no signed 32-bit fields).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import IntEnum

from calypso.constants import RECORD_SIZE
from calypso.frozen import fast_init

SFI_ENVIRONMENT = 0x07
SFI_EVENTS = 0x08
SFI_CONTRACTS = 0x09
SFI_COUNTERS = 0x19

DATE_EPOCH = dt.date(2010, 1, 1)
MAX_CONTRACTS = 4


class EventType(IntEnum):
    """Byte 14 of the event record: a project extension in the demo layout's padding.

    The Keyple demo leaves bytes 14-28 as padding (0), so every demo card reads as ENTRY; this
    validator writes INTERCHANGE for a free transfer, so that a transfer never chains another.
    """

    ENTRY = 0
    INTERCHANGE = 1


class PriorityCode(IntEnum):
    """ContractTariff / ContractPriority values (section 3.2); lower value = higher priority."""

    FORBIDDEN = 0
    SEASON_PASS = 1
    MULTI_TRIP = 2
    STORED_VALUE = 3
    EXPIRED = 31


def date_from_compact(value: int) -> dt.date:
    """DateCompact to a date."""
    return DATE_EPOCH + dt.timedelta(days=value)


def date_to_compact(date: dt.date) -> int:
    """A date to DateCompact (0..65535)."""
    days = (date - DATE_EPOCH).days
    if not 0 <= days <= 0xFFFF:
        raise ValueError(f"date {date} outside the DateCompact range")
    return days


def time_from_compact(value: int) -> dt.time:
    """TimeCompact (hour*60 + minute) to a time; values past 1439 are clamped to 23:59."""
    value = min(value, 1439)
    return dt.time(value // 60, value % 60)


def time_to_compact(time: dt.time) -> int:
    """A time to TimeCompact."""
    return time.hour * 60 + time.minute


def _record(data: bytes) -> bytes:
    """Records shorter than 29 bytes are read as zero-padded (a torn or odd card)."""
    return data if len(data) >= RECORD_SIZE else data.ljust(RECORD_SIZE, b"\x00")


_EPOCH_ORDINAL = DATE_EPOCH.toordinal()
_from_ordinal = dt.date.fromordinal


def _date(d: bytes, start: int) -> dt.date:
    """The DateCompact at ``start`` (2 bytes): date_from_compact, faster (decoders' hot path)."""
    return _from_ordinal(_EPOCH_ORDINAL + (d[start] << 8 | d[start + 1]))


@fast_init
@dataclass(frozen=True, slots=True)
class Environment:
    """Environment/Holder record, SFI 07h record 1."""

    version: int
    application_number: int
    issuing_date: dt.date
    end_date: dt.date
    holder_company: int = 0
    holder_id: int = 0

    @classmethod
    def decode(cls, data: bytes) -> Environment:
        """Bytes 0 version, 1-4 app number, 5-6 issuing date, 7-8 end date, 9 company, 10-13 id."""
        d = _record(data)
        return cls(
            version=d[0],
            application_number=int.from_bytes(d[1:5], "big"),
            issuing_date=_date(d, 5),
            end_date=_date(d, 7),
            holder_company=d[9],
            holder_id=int.from_bytes(d[10:14], "big"),
        )

    def encode(self) -> bytes:
        """The 29-byte record."""
        out = bytes((self.version,)) + self.application_number.to_bytes(4, "big")
        out += date_to_compact(self.issuing_date).to_bytes(2, "big")
        out += date_to_compact(self.end_date).to_bytes(2, "big")
        out += bytes((self.holder_company,)) + self.holder_id.to_bytes(4, "big")
        return out.ljust(RECORD_SIZE, b"\x00")


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    """Event record, SFI 08h record 1 (the newest), carrying the 4 contract priorities."""

    version: int
    date: dt.date
    time: dt.time
    location: int
    contract_used: int
    priorities: tuple[int, int, int, int] = field(default=(0, 0, 0, 0))
    event_type: int = EventType.ENTRY

    @property
    def stamp(self) -> dt.datetime:
        """Date and time of the event as one naive local datetime."""
        return dt.datetime.combine(self.date, self.time)

    @classmethod
    def decode(cls, data: bytes) -> Event:
        """0 version, 1-2 date, 3-4 time, 5-8 location, 9 contract, 10-13 priorities, 14 type."""
        d = _record(data)
        return cls(
            version=d[0],
            date=_date(d, 1),
            time=time_from_compact(d[3] << 8 | d[4]),
            location=int.from_bytes(d[5:9], "big"),
            contract_used=d[9],
            priorities=(d[10], d[11], d[12], d[13]),
            event_type=d[14],
        )

    def encode(self) -> bytes:
        """The 29-byte record."""
        out = bytes((self.version,)) + date_to_compact(self.date).to_bytes(2, "big")
        out += time_to_compact(self.time).to_bytes(2, "big")
        out += self.location.to_bytes(4, "big") + bytes((self.contract_used,))
        out += bytes(self.priorities) + bytes((self.event_type,))
        return out.ljust(RECORD_SIZE, b"\x00")


@fast_init
@dataclass(frozen=True, slots=True)
class Contract:
    """Contract record, SFI 09h records 1-4."""

    version: int
    tariff: int
    sale_date: dt.date
    validity_end_date: dt.date
    sale_sam: int = 0
    sale_counter: int = 0
    auth_kvc: int = 0
    authenticator: int = 0

    @classmethod
    def decode(cls, data: bytes) -> Contract:
        """Bytes 0 version, 1 tariff, 2-3 sale date, 4-5 end date, 6-9 SAM, 10-12 counter, ..."""
        d = _record(data)
        return cls(
            version=d[0],
            tariff=d[1],
            sale_date=_date(d, 2),
            validity_end_date=_date(d, 4),
            sale_sam=int.from_bytes(d[6:10], "big"),
            sale_counter=int.from_bytes(d[10:13], "big"),
            auth_kvc=d[13],
            authenticator=int.from_bytes(d[14:17], "big"),
        )

    def encode(self) -> bytes:
        """The 29-byte record."""
        out = bytes((self.version, self.tariff))
        out += date_to_compact(self.sale_date).to_bytes(2, "big")
        out += date_to_compact(self.validity_end_date).to_bytes(2, "big")
        out += self.sale_sam.to_bytes(4, "big") + self.sale_counter.to_bytes(3, "big")
        out += bytes((self.auth_kvc,)) + self.authenticator.to_bytes(3, "big")
        return out.ljust(RECORD_SIZE, b"\x00")
