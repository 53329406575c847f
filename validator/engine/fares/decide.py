# SPDX-License-Identifier: Apache-2.0
"""The pure fare decision: ``decide(card_state, context, rules)`` on the ticketing model.

The order follows the Keyple demo validation procedure (calypso-data-model section 3.5), made
neutral: the card's titles in the card's order of preference, each matched to a product of the
fare rules by its network and tariff. The demo's two known pitfalls are designed around: stored
value is debited, and a title found expired or used up is retired by the same session's writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from validator.engine.fares.early import (
    Decision,
    Reason,
    TapContext,
    Verdict,
    decide_early,
    deny,
    minutes_since,
    this_minute,
)

# The rule models live in validator.engine.fares.rules; imported here for the decision and
# re-exported, since every caller imports them from validator.engine.fares.decide.
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
from validator.engine.ticketing.model import (
    CardEnvironment,
    CardState,
    Debit,
    Title,
    TitleStatus,
    Transition,
    Validation,
)

__all__ = [  # the decision, and the rule models re-exported from fares.rules
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
    "decide",
    "decide_early",
    "decide_titles",
    "fare_units",
    "needs_counters",
    "product_of",
    "wants_purse",
]


def product_of(title: Title, rules: FareRules) -> Product | None:
    """The product the rules sell under this title's network and tariff, if any."""
    return rules.product(title.tariff, title.network)


def needs_counters(titles: Iterable[Title], rules: FareRules) -> bool:
    """Whether any title read is a counter product (so the counters must be read)."""
    for title in titles:
        product = product_of(title, rules)
        if product is not None and product.kind.uses_counter:
            return True
    return False


def _percent(units: int, percent: int) -> int:
    """``percent`` of ``units``, rounded half up, never below 1 when there was a fare."""
    if units == 0:
        return 0
    return max(1, (units * percent + 50) // 100)


def fare_units(
    product: Product, rules: FareRules, context: TapContext, environment: CardEnvironment
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
    profile = rules.holder_profiles.get(environment.holder_profile)
    if profile is not None:
        units = _percent(units, profile.percent)
        notes.append(profile.name)
    return units, ", ".join(notes)


def decide(card: CardState, context: TapContext, rules: FareRules) -> Decision:
    """Decide one tap from the card's data, the time and place, and the rules. Pure."""
    early = decide_early(card, context, rules)
    if early is not None:
        return early
    return decide_titles(card, context, rules)


def decide_titles(card: CardState, context: TapContext, rules: FareRules) -> Decision:
    """``decide`` for a card ``decide_early`` took no decision on (its head unchanged since):
    the transfer, the titles, the purse. Pure."""
    if not card.listed:
        return _purse(card, context, rules) or deny(
            Reason.EMPTY_CARD, "clean card: no title loaded"
        )
    last = card.last
    if last is not None:
        transfer = _transfer(card, context, rules, last)
        if transfer is not None:
            return transfer

    retired: list[int] = []
    reason, explanation = Reason.NO_VALID_TITLE, "no valid title on the card"
    for title in card.ranked():
        record = title.pointer
        if title.format_error is not None:
            return deny(Reason.CONTRACT_WRONG_VERSION, title.format_error)
        product = product_of(title, rules)
        if product is None:
            explanation = f"contract {record}: tariff {title.tariff} is not sold here"
            continue
        if title.status is TitleStatus.BLOCKED:
            explanation = f"contract {record}: {title.status_note or 'blocked on the card'}"
            continue
        zone = rules.station.zone
        if not title.covers_zone(zone) or (product.zones is not None and zone not in product.zones):
            reason = Reason.ZONE_NOT_COVERED
            explanation = f"{product.name} does not cover zone {zone}"
            continue
        if not title.started(context.now):
            reason = Reason.NOT_YET_VALID
            start = f" {title.valid_from_time:%H:%M}" if title.valid_from_time else ""
            explanation = f"{product.name} (contract {record}) valid from {title.valid_from}{start}"
            continue
        if title.ended(context.now):
            retired.append(record)
            reason = Reason.EXPIRED_TITLE
            explanation = f"{product.name} (contract {record}) expired {title.valid_until}"
            continue
        debit: Debit | None = None
        remaining: int | None = None
        priced = ""
        if product.kind.uses_counter:
            units = title.counter.value if title.counter is not None else 0
            if units <= 0:
                retired.append(record)
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
        entry = Validation(this_minute(context), context.location_id, record, Transition.ENTRY)
        if product.kind is ProductKind.SEASON_PASS:
            return Decision(
                Verdict.GRANT,
                Reason.SEASON_PASS_VALID,
                f"{product.name} valid until {title.valid_until}",
                contract=record,
                product=product.name,
                valid_until=title.valid_until,
                event=entry,
                retire=tuple(retired),
            )
        return Decision(
            Verdict.GRANT,
            Reason.TRIP_DEBITED if product.kind is ProductKind.MULTI_TRIP else Reason.VALUE_DEBITED,
            f"{product.name}: {debit.units if debit else 0} debited{priced}, {remaining} left",
            contract=record,
            product=product.name,
            debit=debit,
            remaining=remaining,
            event=entry,
            retire=tuple(retired),
        )
    return _purse(card, context, rules) or deny(reason, explanation)


SV_FALLBACK_REASONS = frozenset(
    {
        Reason.EMPTY_CARD,
        Reason.NO_VALID_TITLE,
        Reason.EXPIRED_TITLE,
        Reason.NOT_YET_VALID,
        Reason.NO_TRIPS_LEFT,
        Reason.INSUFFICIENT_VALUE,
        Reason.ZONE_NOT_COVERED,
    }
)


def wants_purse(decision: Decision, rules: FareRules, has_sv: bool) -> bool:
    """Whether the SV purse should be read to retry a refusal (no title could pay)."""
    return has_sv and rules.sv_purse is not None and decision.reason in SV_FALLBACK_REASONS


def _purse(card: CardState, context: TapContext, rules: FareRules) -> Decision | None:
    """Pay from the Calypso SV purse when it was read and no title granted."""
    purse = rules.sv_purse
    if purse is None or card.sv_balance is None:
        return None
    fare = purse.fare_by_zone.get(rules.station.zone, purse.fare)
    if card.sv_balance < fare:
        return deny(
            Reason.INSUFFICIENT_VALUE, f"{purse.name}: balance {card.sv_balance}, fare {fare}"
        )
    return Decision(
        Verdict.GRANT,
        Reason.SV_DEBITED,
        f"{purse.name}: {fare} debited, {card.sv_balance - fare} left",
        product=purse.name,
        debit=Debit(0, fare, purse=True),
        remaining=card.sv_balance - fare,
        event=Validation(this_minute(context), context.location_id, None, Transition.ENTRY),
    )


def _transfer(
    card: CardState, context: TapContext, rules: FareRules, last: Validation
) -> Decision | None:
    """A free interchange: a paid entry elsewhere (another station group) N minutes ago."""
    minutes = minutes_since(last, context)
    if not rules.transfer_minutes or not 0 <= minutes <= rules.transfer_minutes:
        return None
    if last.transition is not Transition.ENTRY or rules.same_group(
        last.location, context.location_id
    ):
        return None
    title = card.title(last.title)
    product = product_of(title, rules) if title is not None else None
    if title is None or product is None or not product.kind.uses_counter:
        return None
    if title.ended(context.now):
        return None
    interchange = Validation(
        this_minute(context), context.location_id, last.title, Transition.INTERCHANGE
    )
    return Decision(
        Verdict.GRANT,
        Reason.TRANSFER,
        f"interchange: paid entry at {last.location} at {last.when:%H:%M}",
        contract=last.title,
        product=product.name,
        event=interchange,
    )
