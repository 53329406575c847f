# SPDX-License-Identifier: Apache-2.0
"""A card state with its titles, built as fast as replay needs it (every tap, every layout)."""

from __future__ import annotations

from dataclasses import fields

from validator.engine.ticketing.model import CardState, Title


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


_CARD_STATE = ("serial", "environment", "validations", "titles", "listed", "ratified", "sv_balance")
# with_titles builds by position: a field added to CardState must be added there too.
assert tuple(f.name for f in fields(CardState)) == _CARD_STATE  # noqa: S101
