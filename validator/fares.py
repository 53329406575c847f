# SPDX-License-Identifier: Apache-2.0
"""Fare rules (config/fares.yaml) and the pure decision: ``decide(card_state, context, rules)``.

The order follows the Keyple demo validation procedure (calypso-data-model section 3.5), with
its two known pitfalls designed around: stored value is debited, and the priority of a contract
found expired or used up is carried into the event written by the same session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from calypso.layouts.demo import (
    MAX_CONTRACTS,
    Contract,
    Environment,
    Event,
    EventType,
    PriorityCode,
)

# Bounds checked at load time (issue 15.10, 15.20), so that no rule can crash a tap later.
MAX_COUNTER_UNITS = 0xFFFFFF  # a Calypso counter is 3 bytes: no debit can exceed it
MAX_SV_AMOUNT = 32767  # SV Debit amount: 2 signed bytes (calypso.commands.sv)
MAX_WINDOW_MINUTES = 24 * 60  # anti-passback, recovery and transfer windows: at most a day
MAX_ZONE = 0xFFFF
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
    """A product keyed by its contract tariff."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tariff: int = Field(ge=1, le=30)
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


class FareRules(BaseModel):
    """The whole of config/fares.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str = "demo"
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

    @model_validator(mode="after")
    def _unique_tariffs(self) -> FareRules:
        tariffs = [p.tariff for p in self.products]
        if len(tariffs) != len(set(tariffs)):
            raise ValueError("two products share a tariff")
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

    def product(self, tariff: int) -> Product | None:
        """The product sold under ``tariff``, if any."""
        return next((p for p in self.products if p.tariff == tariff), None)

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
        return serial.hex().upper() in {s.upper() for s in self.deny_list}


class Verdict(Enum):
    """What the gate does."""

    GRANT = "grant"
    DENY = "deny"
    RECOVER = "recover"


class Reason(StrEnum):
    """Reason codes for every decision."""

    SEASON_PASS_VALID = "season_pass_valid"  # noqa: S105 - a reason code, not a password
    TRIP_DEBITED = "trip_debited"
    VALUE_DEBITED = "value_debited"
    SV_DEBITED = "sv_debited"
    RECOVERED_UNRATIFIED = "recovered_unratified"
    TRANSFER = "transfer"
    DENY_LISTED = "deny_listed"
    ENV_WRONG_VERSION = "environment_wrong_version"
    ENV_EXPIRED = "environment_expired"
    EMPTY_CARD = "empty_card"
    EVENT_WRONG_VERSION = "event_wrong_version"
    ANTI_PASSBACK = "anti_passback"
    CONTRACT_WRONG_VERSION = "contract_wrong_version"
    NO_VALID_TITLE = "no_valid_title"
    EXPIRED_TITLE = "expired_title"
    NO_TRIPS_LEFT = "no_trips_left"
    INSUFFICIENT_VALUE = "insufficient_value"
    ZONE_NOT_COVERED = "zone_not_covered"


@dataclass(frozen=True, slots=True)
class CardState:
    """What the session read from the card, decoded."""

    serial: bytes
    environment: Environment
    event: Event | None
    contracts: Mapping[int, Contract] = field(default_factory=dict)
    counters: Mapping[int, int] = field(default_factory=dict)
    ratified: bool = True
    sv_balance: int | None = None  # the Calypso SV purse, when it was read


@dataclass(frozen=True, slots=True)
class TapContext:
    """When and where the tap happens."""

    now: dt.datetime
    location_id: int


@dataclass(frozen=True, slots=True)
class Debit:
    """Units to take from counter ``counter`` (counter n belongs to contract n), or the purse."""

    counter: int
    units: int
    purse: bool = False  # the Calypso SV purse (SV Debit), not a counter


@dataclass(frozen=True, slots=True)
class Decision:
    """The fare outcome: a value, never an exception."""

    verdict: Verdict
    reason: Reason
    explanation: str
    contract: int | None = None
    product: str | None = None
    debit: Debit | None = None
    remaining: int | None = None
    valid_until: dt.date | None = None
    event: Event | None = None  # the event record to append, when the session writes


def candidate_contracts(event: Event | None) -> list[int]:
    """Contract records worth reading, best priority first (FORBIDDEN and EXPIRED skipped)."""
    if event is None or event.version != 1:
        return []
    ranked = [
        (priority, record)
        for record, priority in enumerate(event.priorities[:MAX_CONTRACTS], start=1)
        if priority not in (PriorityCode.FORBIDDEN, PriorityCode.EXPIRED)
    ]
    return [record for _, record in sorted(ranked)]


def needs_counters(contracts: Mapping[int, Contract], rules: FareRules) -> bool:
    """Whether any contract read is a counter product (so the counters record must be read)."""
    for contract in contracts.values():
        product = rules.product(contract.tariff)
        if product is not None and product.kind.uses_counter:
            return True
    return False


def _percent(units: int, percent: int) -> int:
    """``percent`` of ``units``, rounded half up, never below 1 when there was a fare."""
    if units == 0:
        return 0
    return max(1, (units * percent + 50) // 100)


def fare_units(
    product: Product, rules: FareRules, context: TapContext, environment: Environment
) -> tuple[int, str]:
    """Units one entry costs with this product here and now, and how that was found."""
    if product.kind is not ProductKind.STORED_VALUE:
        return product.units_per_trip, ""
    zone = rules.station.zone
    units = product.fare_by_zone.get(zone, product.units_per_trip)
    notes = [f"zone {zone}"] if product.fare_by_zone else []
    if rules.peak_periods and not rules.is_peak(context.now):
        units = _percent(units, product.off_peak_percent)
        notes.append("off-peak")
    profile = rules.holder_profiles.get(environment.holder_company)
    if profile is not None:
        units = _percent(units, profile.percent)
        notes.append(profile.name)
    return units, ", ".join(notes)


def _deny(reason: Reason, explanation: str) -> Decision:
    return Decision(Verdict.DENY, reason, explanation)


def _minutes_since(event: Event, context: TapContext) -> int:
    """Whole minutes from the event's minute to the current one (card times are to the minute),
    so that "within N minutes" covers N full minutes after the event."""
    now = context.now.replace(second=0, microsecond=0)
    return (now - event.stamp) // dt.timedelta(minutes=1)


def decide_early(card: CardState, context: TapContext, rules: FareRules) -> Decision | None:
    """The decisions that need only the environment and the newest event. Pure.

    Deny list, environment, event version, recovery of an unratified session and anti-passback
    come before any title (calypso-data-model 3.5 steps 3-7): when one of them decides, the
    procedure reads no contract and no counter. ``decide`` starts with it, so both agree.
    """
    if rules.is_denied(card.serial):
        return _deny(Reason.DENY_LISTED, "card serial is on the deny list")
    env = card.environment
    if env.version != 1:
        return _deny(Reason.ENV_WRONG_VERSION, f"environment version {env.version} is not 1")
    if env.end_date < context.now.date():
        return _deny(Reason.ENV_EXPIRED, f"environment ended on {env.end_date}")
    event = card.event
    if event is None or event.version == 0:
        return None  # a clean card: the purse may still pay
    if event.version != 1:
        return _deny(Reason.EVENT_WRONG_VERSION, f"event version {event.version} is not 1")
    minutes = _minutes_since(event, context)
    if 0 <= minutes and rules.same_group(event.location, context.location_id):
        recovery = rules.recovery_window_minutes
        if not card.ratified and recovery and minutes <= recovery:
            recovery_event = None
            if rules.recovery_writes_event:
                recovery_event = dataclasses.replace(
                    event,
                    date=context.now.date(),
                    time=context.now.time().replace(second=0, microsecond=0),
                    location=context.location_id,
                )
            return Decision(
                Verdict.RECOVER,
                Reason.RECOVERED_UNRATIFIED,
                f"previous validation at {event.stamp:%H:%M} was not ratified: "
                "completed without a new debit",
                contract=event.contract_used or None,
                event=recovery_event,
            )
        if rules.anti_passback_minutes and minutes <= rules.anti_passback_minutes:
            return _deny(Reason.ANTI_PASSBACK, f"already validated here at {event.stamp:%H:%M}")
    return None


def decide(card: CardState, context: TapContext, rules: FareRules) -> Decision:
    """Decide one tap from the card's data, the time and place, and the rules. Pure."""
    early = decide_early(card, context, rules)
    if early is not None:
        return early
    today = context.now.date()
    event = card.event
    if event is None or event.version == 0:
        return _purse(card, context, rules, event) or _deny(
            Reason.EMPTY_CARD, "clean card: no title loaded"
        )
    minutes = _minutes_since(event, context)
    transfer = _transfer(card, context, rules, event, minutes)
    if transfer is not None:
        return transfer

    priorities = list(event.priorities)
    reason, explanation = Reason.NO_VALID_TITLE, "no valid title on the card"
    for record in candidate_contracts(event):
        contract = card.contracts.get(record)
        if contract is None:
            continue
        if contract.version != 1:
            return _deny(
                Reason.CONTRACT_WRONG_VERSION, f"contract {record} has version {contract.version}"
            )
        product = rules.product(contract.tariff)
        if product is None:
            explanation = f"contract {record}: tariff {contract.tariff} is not sold here"
            continue
        if product.zones is not None and rules.station.zone not in product.zones:
            reason = Reason.ZONE_NOT_COVERED
            explanation = f"{product.name} does not cover zone {rules.station.zone}"
            continue
        if contract.validity_end_date < today:
            priorities[record - 1] = PriorityCode.EXPIRED
            reason = Reason.EXPIRED_TITLE
            explanation = f"{product.name} (contract {record}) expired {contract.validity_end_date}"
            continue
        debit: Debit | None = None
        remaining: int | None = None
        priced = ""
        if product.kind.uses_counter:
            units = card.counters.get(record, 0)
            if units <= 0:
                priorities[record - 1] = PriorityCode.EXPIRED
                reason, explanation = Reason.NO_TRIPS_LEFT, f"{product.name}: no units left"
                continue
            fare, how = fare_units(product, rules, context, card.environment)
            if units < fare:
                reason = Reason.INSUFFICIENT_VALUE
                explanation = f"{product.name}: {units} left, {fare} needed"
                continue
            debit = Debit(record, fare)
            remaining = units - fare
            if how:
                priced = f" ({how})"
        new_event = Event(
            version=1,
            date=today,
            time=context.now.time().replace(second=0, microsecond=0),
            location=context.location_id,
            contract_used=record,
            priorities=(priorities[0], priorities[1], priorities[2], priorities[3]),
        )
        if product.kind is ProductKind.SEASON_PASS:
            return Decision(
                Verdict.GRANT,
                Reason.SEASON_PASS_VALID,
                f"{product.name} valid until {contract.validity_end_date}",
                contract=record,
                product=product.name,
                valid_until=contract.validity_end_date,
                event=new_event,
            )
        return Decision(
            Verdict.GRANT,
            Reason.TRIP_DEBITED if product.kind is ProductKind.MULTI_TRIP else Reason.VALUE_DEBITED,
            f"{product.name}: {debit.units if debit else 0} debited{priced}, {remaining} left",
            contract=record,
            product=product.name,
            debit=debit,
            remaining=remaining,
            event=new_event,
        )
    return _purse(card, context, rules, event) or _deny(reason, explanation)


SV_FALLBACK_REASONS = frozenset(
    {
        Reason.EMPTY_CARD,
        Reason.NO_VALID_TITLE,
        Reason.EXPIRED_TITLE,
        Reason.NO_TRIPS_LEFT,
        Reason.INSUFFICIENT_VALUE,
        Reason.ZONE_NOT_COVERED,
    }
)


def wants_purse(decision: Decision, rules: FareRules, has_sv: bool) -> bool:
    """Whether the SV purse should be read to retry a refusal (no contract could pay)."""
    return has_sv and rules.sv_purse is not None and decision.reason in SV_FALLBACK_REASONS


def _purse(
    card: CardState, context: TapContext, rules: FareRules, event: Event | None
) -> Decision | None:
    """Pay from the Calypso SV purse when it was read and no contract granted."""
    purse = rules.sv_purse
    if purse is None or card.sv_balance is None:
        return None
    fare = purse.fare_by_zone.get(rules.station.zone, purse.fare)
    if card.sv_balance < fare:
        return _deny(
            Reason.INSUFFICIENT_VALUE, f"{purse.name}: balance {card.sv_balance}, fare {fare}"
        )
    priorities = event.priorities if event is not None and event.version == 1 else (0, 0, 0, 0)
    new_event = Event(
        version=1,
        date=context.now.date(),
        time=context.now.time().replace(second=0, microsecond=0),
        location=context.location_id,
        contract_used=0,
        priorities=priorities,
    )
    return Decision(
        Verdict.GRANT,
        Reason.SV_DEBITED,
        f"{purse.name}: {fare} debited, {card.sv_balance - fare} left",
        product=purse.name,
        debit=Debit(0, fare, purse=True),
        remaining=card.sv_balance - fare,
        event=new_event,
    )


def _transfer(
    card: CardState, context: TapContext, rules: FareRules, event: Event, minutes: int
) -> Decision | None:
    """A free interchange: a paid entry elsewhere (another station group) N minutes ago."""
    if not rules.transfer_minutes or not 0 <= minutes <= rules.transfer_minutes:
        return None
    if event.event_type != EventType.ENTRY or rules.same_group(event.location, context.location_id):
        return None
    contract = card.contracts.get(event.contract_used)
    product = rules.product(contract.tariff) if contract is not None else None
    if contract is None or product is None or not product.kind.uses_counter:
        return None
    if contract.validity_end_date < context.now.date():
        return None
    interchange = Event(
        version=1,
        date=context.now.date(),
        time=context.now.time().replace(second=0, microsecond=0),
        location=context.location_id,
        contract_used=event.contract_used,
        priorities=event.priorities,
        event_type=EventType.INTERCHANGE,
    )
    return Decision(
        Verdict.GRANT,
        Reason.TRANSFER,
        f"interchange: paid entry at {event.location} at {event.stamp:%H:%M}",
        contract=event.contract_used,
        product=product.name,
        event=interchange,
    )
