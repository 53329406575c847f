# SPDX-License-Identifier: Apache-2.0
"""The pure fare decision: ``decide(card_state, context, rules)`` (models in fare_rules).

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

from calypso.layouts.demo import (
    MAX_CONTRACTS,
    Contract,
    Environment,
    Event,
    EventType,
    PriorityCode,
)

# The rule models live in validator.engine.fares.rules; imported here for the decision and
# re-exported,
# since every caller imports them from validator.engine.fares.decide.
from validator.engine.fares.rules import (
    MAX_COUNTER_UNITS,
    MAX_SV_AMOUNT,
    MAX_WINDOW_MINUTES,
    MAX_ZONE,
    FareRules,
    HolderProfile,
    PeakPeriod,
    Product,
    ProductKind,
    Station,
    SvPurse,
)

__all__ = [  # the decision, and the rule models re-exported from fare_rules
    "CardState",
    "Debit",
    "Decision",
    "FareRules",
    "HolderProfile",
    "MAX_COUNTER_UNITS",
    "MAX_SV_AMOUNT",
    "MAX_WINDOW_MINUTES",
    "MAX_ZONE",
    "PeakPeriod",
    "Product",
    "ProductKind",
    "Reason",
    "SV_FALLBACK_REASONS",
    "Station",
    "SvPurse",
    "TapContext",
    "Verdict",
    "candidate_contracts",
    "decide",
    "decide_early",
    "fare_units",
    "needs_counters",
    "wants_purse",
]


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
