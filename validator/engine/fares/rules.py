# SPDX-License-Identifier: Apache-2.0
"""Fare rules (config/fares.yaml): the pydantic models and every bound checked at load time.

The decision that uses them is ``validator.engine.fares.decide.decide``; these models only say
what a valid fares.yaml is, so that no rule that passes ``check-config`` can crash a tap later.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yamlconfig import ValueAt

# Bounds checked at load time (issue 15.10, 15.20), so that no rule can crash a tap later.
MAX_COUNTER_UNITS = 0xFFFFFF  # a Calypso counter is 3 bytes: no debit can exceed it
MAX_SV_AMOUNT = 32767  # SV Debit amount: 2 signed bytes (calypso.commands.sv)
MAX_WINDOW_MINUTES = 24 * 60  # anti-passback, recovery and transfer windows: at most a day
MAX_ZONE = 0xFFFF
# Width of the event's location field by card layout: the demo layout's EventLocation (4 bytes),
# Intercode's EventLocationId (16 bits, calypso-data-model 2.5). A wider station id would be cut.
LOCATION_BITS = {"demo": 32, "intercode": 16}
MAX_TARIFF = 0xFFFFFFFF  # a tariff code of any width up to 32 bits (Intercode: 16, demo: 8)
Tariff = Annotated[int, Field(ge=0, le=MAX_TARIFF)]
CounterUnits = Annotated[int, Field(ge=1, le=MAX_COUNTER_UNITS)]
SvAmount = Annotated[int, Field(ge=1, le=MAX_SV_AMOUNT)]
Zone = Annotated[int, Field(ge=0, le=MAX_ZONE)]
WindowMinutes = Annotated[int, Field(ge=0, le=MAX_WINDOW_MINUTES)]


class ProductKind(StrEnum):
    """What a contract tariff means at the gate."""

    SEASON_PASS = "season_pass"  # noqa: S105 - a product name, not a password
    MULTI_TRIP = "multi_trip"
    STORED_VALUE = "stored_value"

    @property
    def uses_counter(self) -> bool:
        """Whether the product spends units from the contract's counter."""
        return self is not ProductKind.SEASON_PASS


class Product(BaseModel):
    """A product keyed by the network and tariff of the titles it sells (a tariff or a range).

    ``network`` (digits, e.g. "250901", or the rules' own network name) limits it to titles of
    that network; without it the product sells its tariffs on any network, as fare files did
    before networks were named (a network's own product comes first, section ``product``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str | None = Field(default=None, min_length=1)
    tariff: Tariff | None = None
    tariffs: tuple[Tariff, Tariff] | None = Field(
        default=None, description="A range of tariffs: [first, last], both included."
    )
    kind: ProductKind
    name: str = Field(min_length=1)
    units_per_trip: int = Field(default=1, ge=1, le=MAX_COUNTER_UNITS)
    zones: list[Zone] | None = Field(
        default=None, description="Season pass: valid only at stations of these zones."
    )
    fare_by_zone: dict[Zone, CounterUnits] = Field(
        default_factory=dict, description="Stored value: units by station zone."
    )
    off_peak_percent: int = Field(
        default=100, ge=0, le=100, description="Stored value: share of the fare off-peak."
    )

    @field_validator("network", mode="before")
    @classmethod
    def _network_digits(cls, value: object) -> object:
        # network: 250901 reads as an integer in YAML: the same id as "250901".
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return f"{value:06d}"
        return value

    @model_validator(mode="after")
    def _one_tariff_key(self) -> Product:
        if (self.tariff is None) == (self.tariffs is None):
            raise ValueError("give either tariff (one code) or tariffs ([first, last])")
        if self.tariffs is not None and self.tariffs[0] > self.tariffs[1]:
            raise ValueError(f"tariffs [{self.tariffs[0]}, {self.tariffs[1]}]: first after last")
        return self

    @property
    def first(self) -> int:
        """The first tariff sold."""
        return self.tariffs[0] if self.tariffs is not None else self.tariff or 0

    @property
    def last(self) -> int:
        """The last tariff sold."""
        return self.tariffs[1] if self.tariffs is not None else self.tariff or 0

    def sells(self, tariff: int) -> bool:
        """Whether ``tariff`` is one of this product's."""
        return self.first <= tariff <= self.last

    def tariff_text(self) -> str:
        """The tariff or range, as a message names it."""
        first, last = self.first, self.last
        return f"tariff {first}" if first == last else f"tariffs {first}..{last}"


class SvPurse(BaseModel):
    """The Calypso SV purse: used when no contract grants the entry (SV debit in session)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "SV purse"
    fare: int = Field(ge=1, le=MAX_SV_AMOUNT)
    fare_by_zone: dict[Zone, SvAmount] = Field(default_factory=dict)


class PeakPeriod(BaseModel):
    """A peak period: days of the week (0 Monday .. 6 Sunday) and a time range [start, end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    start: dt.time
    end: dt.time

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if not days:
            raise ValueError("a peak period needs at least one day (0 Monday .. 6 Sunday)")
        for day in days:
            if not 0 <= day <= 6:
                raise ValueError(f"day {day} is not a weekday number 0 (Monday) .. 6 (Sunday)")
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return days

    @field_validator("start", "end")
    @classmethod
    def _local_time(cls, value: dt.time) -> dt.time:
        # Taps are matched on the validator's local wall clock, which carries no offset.
        if value.tzinfo is not None:
            raise ValueError(
                f"{value.isoformat()} has a time zone; peak periods are local times (HH:MM)"
            )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> PeakPeriod:
        # [start, end) within one day: an inverted or empty period would never match.
        if not self.start < self.end:
            raise ValueError(
                f"start {self.start:%H:%M} must be before its end {self.end:%H:%M} "
                "(a period past midnight is two periods)"
            )
        return self

    def contains(self, when: dt.datetime) -> bool:
        """Whether ``when`` falls in this period."""
        return when.weekday() in self.days and self.start <= when.time() < self.end


class HolderProfile(BaseModel):
    """A reduced fare for a holder profile (the environment's HolderCompany code)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    percent: int = Field(ge=0, le=100)


class Station(BaseModel):
    """Where this validator stands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location_id: int = Field(ge=0, le=0xFFFFFFFF)
    name: str = ""
    zone: int = Field(default=1, ge=0, le=MAX_ZONE)


_SOLD = "_sold"  # where FareRules.product keeps its answers
_SOLD_KEPT = 4096  # (tariff, network) pairs kept: a network's cards hold few
# The products and network the answers are for, and the answers by (tariff, network).
_Sold = tuple[list[Product], str, dict[tuple[int, str | None], Product | None]]


class FareRules(BaseModel):
    """The whole of config/fares.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str = Field(
        default="demo",
        min_length=1,
        description="This network: the network of titles whose card names none (demo layout).",
    )
    station: Station
    station_groups: dict[str, list[int]] = Field(default_factory=dict)
    products: list[Product]
    anti_passback_minutes: WindowMinutes = 1
    recovery_window_minutes: WindowMinutes = 1
    transfer_minutes: WindowMinutes = 0
    recovery_writes_event: bool = False
    peak_periods: list[PeakPeriod] = Field(default_factory=list)
    holder_profiles: dict[int, HolderProfile] = Field(default_factory=dict)
    sv_purse: SvPurse | None = None
    deny_list: list[str] = Field(default_factory=list)

    @field_validator("products")
    @classmethod
    def _no_overlap(cls, products: list[Product]) -> list[Product]:
        # One title, one product: two products of the same network (or two for any network)
        # whose tariffs meet would make the decision depend on their order in the file.
        for later, product in enumerate(products):
            for earlier, other in enumerate(products[:later]):
                if other.network != product.network:
                    continue
                if product.first <= other.last and other.first <= product.last:
                    where = f"network {product.network}" if product.network else "any network"
                    raise ValueAt(
                        f"{product.tariff_text()} ({product.name}) overlaps products.{earlier} "
                        f"({other.name}, {other.tariff_text()}) on {where}: two products "
                        "share a tariff",
                        (later,),
                    )
        return products

    @model_validator(mode="after")
    def _checked(self) -> FareRules:
        for serial in self.deny_list:
            try:
                if len(bytes.fromhex(serial)) != 8:
                    raise ValueError
            except ValueError:
                raise ValueError(f"deny_list: {serial!r} is not an 8-byte hex serial") from None
        self._station_zone_known()
        return self

    def _station_zone_known(self) -> None:
        """The station's zone must be one the fare tables name, when they name any (15.20)."""
        named: set[int] = set()
        for product in self.products:
            named.update(product.fare_by_zone)
            named.update(product.zones or ())
        if self.sv_purse is not None:
            named.update(self.sv_purse.fare_by_zone)
        zone = self.station.zone
        if named and zone not in named:
            known = ", ".join(str(z) for z in sorted(named))
            raise ValueError(
                f"station zone {zone} appears in no fare table (zones named: {known}): "
                "a mistyped zone would charge the default fare everywhere"
            )

    def product(self, tariff: int, network: str | None = None) -> Product | None:
        """The product that sells ``tariff`` on ``network`` (None: this network), if any: the
        network's own product first, else one sold on any network."""
        # Every title of every tap asks: the answers are kept, for these very products and
        # network (a model_copy that changes either copies the memo too: it is not used then).
        memo: _Sold | None = self.__dict__.get(_SOLD)
        if memo is None or memo[0] is not self.products or memo[1] != self.network:
            memo = (self.products, self.network, {})
            self.__dict__[_SOLD] = memo  # not a field: the rules compare and dump without it
        found = memo[2]
        key = (tariff, network)
        if key in found:
            return found[key]
        product = self._product(tariff, network)
        if len(found) < _SOLD_KEPT:
            found[key] = product
        return product

    def _product(self, tariff: int, network: str | None) -> Product | None:
        home = network if network is not None else self.network
        anywhere = None
        for product in self.products:
            if product.first <= tariff <= product.last:
                if product.network == home:
                    return product
                if product.network is None and anywhere is None:
                    anywhere = product
        return anywhere

    def same_group(self, location_a: int, location_b: int) -> bool:
        """Whether two locations belong to one station group (a location is its own group)."""
        if location_a == location_b:
            return True
        return any(
            location_a in members and location_b in members
            for members in self.station_groups.values()
        )

    def is_peak(self, when: dt.datetime) -> bool:
        """Whether ``when`` is in a peak period."""
        return any(period.contains(when) for period in self.peak_periods)

    def is_denied(self, serial: bytes) -> bool:
        """Whether the card serial is on the deny list."""
        if not self.deny_list:  # the usual case: every tap asks
            return False
        return serial.hex().upper() in {s.upper() for s in self.deny_list}
