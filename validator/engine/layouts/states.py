# SPDX-License-Identifier: Apache-2.0
"""Card states and titles changed in one field, built as fast as replay needs them (every tap,
every layout): ``dataclasses.replace`` walks every field by name, these build by position."""

from __future__ import annotations

from dataclasses import fields

from validator.engine.ticketing.model import CardState, Counter, Title


def with_titles(
    head: CardState, titles: tuple[Title, ...], listed: bool | None = None
) -> CardState:
    """The head with its titles (and ``listed``, if given): ``dataclasses.replace``, built
    directly (replace walks every field by name)."""
    return CardState(
        head.serial,
        head.environment,
        head.validations,
        titles,
        head.listed if listed is None else listed,
        head.ratified,
        head.sv_balance,
    )


def with_sv_balance(state: CardState, balance: int) -> CardState:
    """The state with the SV purse balance the tap read."""
    return CardState(
        state.serial,
        state.environment,
        state.validations,
        state.titles,
        state.listed,
        state.ratified,
        balance,
    )


def with_counter(title: Title, counter: Counter) -> Title:
    """The title with the counter that backs it, as read."""
    return Title(
        title.pointer,
        title.tariff,
        title.network,
        title.kind,
        title.rank,
        title.status,
        title.status_note,
        title.valid_from,
        title.valid_from_time,
        title.valid_until,
        title.valid_until_time,
        title.zones,
        title.journeys,
        title.period_journeys,
        counter,
        title.format_error,
    )


_CARD_STATE = ("serial", "environment", "validations", "titles", "listed", "ratified", "sv_balance")
_TITLE = (
    "pointer",
    "tariff",
    "network",
    "kind",
    "rank",
    "status",
    "status_note",
    "valid_from",
    "valid_from_time",
    "valid_until",
    "valid_until_time",
    "zones",
    "journeys",
    "period_journeys",
    "counter",
    "format_error",
)
# These build by position: a field added to CardState or Title must be added here too.
assert tuple(f.name for f in fields(CardState)) == _CARD_STATE  # noqa: S101
assert tuple(f.name for f in fields(Title)) == _TITLE  # noqa: S101
