# SPDX-License-Identifier: Apache-2.0
"""The early decisions: those taken on the environment and the newest validation alone. Pure.

Deny list, environment, the newest validation's format, recovery of an unratified session and
anti-passback come before any title (calypso-data-model 3.5 steps 3-7): when one of them
decides, the procedure reads no title and no counter. ``decide`` starts with them, so both
agree. They see the ticketing model only (validator.engine.ticketing.model).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum, StrEnum

from calypso.frozen import fast_init
from validator.engine.fares.rules import FareRules
from validator.engine.ticketing.model import CardState, Debit, Validation


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
    NOT_YET_VALID = "title_not_yet_valid"
    NO_TRIPS_LEFT = "no_trips_left"
    INSUFFICIENT_VALUE = "insufficient_value"
    ZONE_NOT_COVERED = "zone_not_covered"


@fast_init
@dataclass(frozen=True, slots=True)
class TapContext:
    """When and where the tap happens."""

    now: dt.datetime
    location_id: int


@fast_init
@dataclass(frozen=True, slots=True)
class Decision:
    """The fare outcome: a value, never an exception; with the writes it asks of the card."""

    verdict: Verdict
    reason: Reason
    explanation: str
    contract: int | None = None  # the title used (its pointer on the card)
    product: str | None = None
    debit: Debit | None = None
    remaining: int | None = None
    valid_until: dt.date | None = None
    event: Validation | None = None  # the validation to write, when the session writes
    retire: tuple[int, ...] = ()  # titles found expired or used up: the card ranks them out


def deny(reason: Reason, explanation: str) -> Decision:
    """A refusal: nothing is written."""
    return Decision(Verdict.DENY, reason, explanation)


_MINUTE = dt.timedelta(minutes=1)


def this_minute(context: TapContext) -> dt.datetime:
    """The tap's time to the minute, as a card stores it."""
    return context.now.replace(second=0, microsecond=0)


def minutes_since(validation: Validation, context: TapContext) -> int:
    """Whole minutes from the validation's minute to the current one (card times are to the
    minute), so that "within N minutes" covers N full minutes after it."""
    return (this_minute(context) - validation.when) // _MINUTE


def decide_early(card: CardState, context: TapContext, rules: FareRules) -> Decision | None:
    """The decisions that need only the environment and the newest validation. Pure."""
    if rules.is_denied(card.serial):
        return deny(Reason.DENY_LISTED, "card serial is on the deny list")
    env = card.environment
    if env.format_error is not None:
        return deny(Reason.ENV_WRONG_VERSION, env.format_error)
    if env.valid_until < context.now.date():
        return deny(Reason.ENV_EXPIRED, f"environment ended on {env.valid_until}")
    last = card.last
    if last is None:
        return None  # a clean card: the purse may still pay
    if last.format_error is not None:
        return deny(Reason.EVENT_WRONG_VERSION, last.format_error)
    minutes = minutes_since(last, context)
    if 0 <= minutes and rules.same_group(last.location, context.location_id):
        recovery = rules.recovery_window_minutes
        if not card.ratified and recovery and minutes <= recovery:
            again = None
            if rules.recovery_writes_event:
                again = Validation(
                    this_minute(context), context.location_id, last.title, last.transition
                )
            return Decision(
                Verdict.RECOVER,
                Reason.RECOVERED_UNRATIFIED,
                f"previous validation at {last.when:%H:%M} was not ratified: "
                "completed without a new debit",
                contract=last.title or None,
                event=again,
            )
        if rules.anti_passback_minutes and minutes <= rules.anti_passback_minutes:
            return deny(Reason.ANTI_PASSBACK, f"already validated here at {last.when:%H:%M}")
    return None
