# SPDX-License-Identifier: Apache-2.0
"""The ticketing model: what a card holds and what a decision asks of it, in neutral terms.

No bytes and no layout's names: a layout adapter (``validator.engine.layouts``) decodes a card's
records into a ``CardState`` and encodes a decision's writes (``Debit``, a new ``Validation``,
titles to retire) back into its own records; the fare decision (``validator.engine.fares``)
sees only these types. The demo layout (calypso-data-model 3.3) and Intercode (section 2) both
read into it: a title is a demo contract or an Intercode contract, a validation an event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from calypso.frozen import fast_init


class TitleKind(StrEnum):
    """What a title is, as the card or the fare rules say."""

    SEASON_PASS = "season_pass"  # noqa: S105 - a kind of title, not a password
    TRIPS = "trips"  # a number of journeys (a carnet)
    STORED_VALUE = "stored_value"  # an amount of value units
    OTHER = "other"  # neither the card nor the rules say


class CounterUnit(StrEnum):
    """What a counter's units are, as the title that uses it reads them."""

    JOURNEYS = "journeys"
    AMOUNT = "amount"


class TitleStatus(StrEnum):
    """Whether the card allows a title to be validated at all."""

    VALID = "valid"
    BLOCKED = "blocked"  # suspended, invalid, refunded, to renew...: the card says no


class Transition(StrEnum):
    """What a validation was."""

    ENTRY = "entry"
    INTERCHANGE = "interchange"  # a free interchange entry: it never opens another one
    EXIT = "exit"
    OTHER = "other"


@fast_init
@dataclass(frozen=True, slots=True)
class Counter:
    """The counter that backs a title: its number on the card and what it holds."""

    number: int
    unit: CounterUnit
    value: int  # units left, in ``unit`` (journeys left on a carnet, an amount)
    titles: tuple[int, ...] = ()  # every title that uses it (a counter may be shared)


@fast_init
@dataclass(frozen=True, slots=True)
class Title:
    """One title (a contract) on the card."""

    pointer: int  # where the card keeps it (contract record 1..8): what a decision names
    tariff: int  # the full tariff code (16 bits on Intercode, 8 on the demo layout)
    network: str | None = None  # the network id as digits ("250901"), None: the card names none
    kind: TitleKind = TitleKind.OTHER
    rank: int = 0  # lower first: the card's priority, or its place in the card's list
    status: TitleStatus = TitleStatus.VALID
    status_note: str = ""  # why it is blocked, as the card says
    valid_from: dt.date | None = None
    valid_from_time: dt.time | None = None
    valid_until: dt.date | None = None  # the last day of validity (included)
    valid_until_time: dt.time | None = None
    zones: frozenset[int] | None = None  # None: valid in every zone
    journeys: int | None = None  # journeys the title allows (ContractValidityJourneys)
    period_journeys: int | None = None  # journeys allowed per period
    counter: Counter | None = None  # None: no counter, or not read
    format_error: str | None = None  # the record is not one the layout can read, and why

    def covers_zone(self, zone: int) -> bool:
        """Whether the title is valid at a station of ``zone`` (zone 0: no zone system)."""
        return self.zones is None or zone == 0 or zone in self.zones

    def started(self, now: dt.datetime) -> bool:
        """Whether the validity has begun at ``now`` (start date, then start time that day)."""
        if self.valid_from is None:
            return True
        today = now.date()
        if today != self.valid_from:
            return today > self.valid_from
        return self.valid_from_time is None or now.time() >= self.valid_from_time

    def ended(self, now: dt.datetime) -> bool:
        """Whether the validity is over at ``now`` (end date included, up to its end time)."""
        if self.valid_until is None:
            return False
        today = now.date()
        if today != self.valid_until:
            return today > self.valid_until
        return self.valid_until_time is not None and now.time() > self.valid_until_time


@fast_init
@dataclass(frozen=True, slots=True)
class Validation:
    """A validation (an event): one read from the card, or the one a decision writes."""

    when: dt.datetime  # to the minute, as cards store it
    location: int
    title: int | None = None  # the title used (its pointer); None: none (the purse)
    transition: Transition = Transition.ENTRY
    ok: bool = True  # the validation's result
    network: str | None = None
    format_error: str | None = None  # the record is not one the layout can read, and why


@fast_init
@dataclass(frozen=True, slots=True)
class CardEnvironment:
    """The application's environment: whose card it is, until when, for whom."""

    valid_until: dt.date
    network: str | None = None
    holder_profile: int = 0  # the holder's profile code (the demo's HolderCompany)
    format_error: str | None = None  # the record is not one the layout can read, and why


@fast_init
@dataclass(frozen=True, slots=True)
class Debit:
    """Units to take from title ``title``'s counter (in its unit), or from the SV purse."""

    title: int
    units: int
    purse: bool = False  # the Calypso SV purse (SV Debit), not a title's counter


@fast_init
@dataclass(frozen=True, slots=True)
class CardState:
    """What the session read from the card, decoded by its layout."""

    serial: bytes
    environment: CardEnvironment
    validations: tuple[Validation, ...] = ()  # newest first; none on a clean card
    titles: tuple[Title, ...] = ()
    listed: bool = True  # False: the card lists no title at all (a clean card)
    ratified: bool = True  # the previous session was ratified
    sv_balance: int | None = None  # the Calypso SV purse, when it was read

    @property
    def last(self) -> Validation | None:
        """The newest validation, if the card holds one."""
        return self.validations[0] if self.validations else None

    def title(self, pointer: int | None) -> Title | None:
        """The title at ``pointer``, if it was read."""
        return next((t for t in self.titles if t.pointer == pointer), None)

    def ranked(self) -> list[Title]:
        """The titles in the card's order of preference (rank, then place)."""
        titles = self.titles
        if len(titles) < 2:
            return list(titles)
        return sorted(titles, key=_rank_then_place)


def _rank_then_place(title: Title) -> tuple[int, int]:
    return title.rank, title.pointer
