# SPDX-License-Identifier: Apache-2.0
"""The card-layout seam: a network's records read into the ticketing model and written back.

A layout adapter knows the file map and the byte or bit layout of one family of cards (the
Keyple demo layout, validator.engine.layouts.demo; Intercode / EN 1545,
validator.engine.layouts.intercode). It decodes what the session read into a ``CardState``
(validator.engine.ticketing.model) and encodes a decision's writes into its own records: a
pure ``writes(card, decision, records)`` giving the card commands, which ``write`` sends in the
session. The fare rules never see a record. The procedure picks the layout by AID.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

from calypso.card_image import CalypsoCard
from validator.engine.fares import decide as fares
from validator.engine.fares.decide import Decision, FareRules, TapContext
from validator.engine.layouts.writes import CardWrite, Records
from validator.engine.session import SecureSession
from validator.engine.ticketing.model import CardState


class CardLayout(Protocol):
    """One family of card data layouts."""

    name: str

    @property
    def open_read(self) -> tuple[int, int]:
        """(SFI, record) read inside the Open Secure Session command."""
        ...

    @property
    def event_sfi(self) -> int:
        """SFI of the cyclic event log (its records let an interrupted Close be recognised)."""
        ...

    def read_head(
        self,
        session: SecureSession,
        image: CalypsoCard,
        open_record: bytes,
        *,
        history: bool = True,
    ) -> CardState:
        """Environment and newest validation (``history``: the whole event log), no title."""
        ...

    def read_titles(
        self, session: SecureSession, image: CalypsoCard, head: CardState, rules: FareRules
    ) -> CardState:
        """The head plus the titles and counters the rules need, in as few APDUs as can be
        (``image`` holds the records the head read)."""
        ...

    def writes(
        self, card: CardState, decision: Decision, records: Records
    ) -> tuple[CardWrite, ...]:
        """The card commands that carry out a decision (debit, event, titles retired). Pure."""
        ...

    def write(self, session: SecureSession, card: CardState, decision: Decision) -> None:
        """Apply a decision's writes inside the session."""
        ...


def read_card(
    layout: CardLayout,
    session: SecureSession,
    image: CalypsoCard,
    open_record: bytes,
    rules: FareRules,
    context: TapContext,
    *,
    history: bool = True,
) -> tuple[CardState, Decision | None]:
    """Read the head, decide early if it can (recovery, anti-passback, a bad environment:
    no title read, Keyple's order), else read the titles. Returns the state and that early
    decision, if any."""
    head = layout.read_head(session, image, open_record, history=history)
    early = fares.decide_early(head, context, rules)
    if early is not None:
        return head, early
    return layout.read_titles(session, image, head, rules), None


def layout_for(aid: bytes, layouts: Mapping[bytes, CardLayout], default: CardLayout) -> CardLayout:
    """The layout configured for an AID (the longest prefix that matches), else the default
    one: 1TIC.ICA1 (the demo) and 1TIC.ICA (Intercode) share their first eight bytes."""
    best: bytes | None = None
    for prefix in layouts:
        if aid.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return layouts[best] if best is not None else default


def build_layouts(by_aid: Mapping[str, str]) -> dict[bytes, CardLayout]:
    """Layouts by AID from the settings' ``layouts`` map (AID hex -> layout name)."""
    from validator.engine.layouts.demo import DemoLayout

    registry: dict[str, CardLayout] = {"demo": DemoLayout()}
    try:  # the Intercode layout is optional at this seam
        intercode = importlib.import_module("validator.engine.layouts.intercode")
    except ImportError:
        pass
    else:
        registry["intercode"] = intercode.IntercodeLayout()
    result: dict[bytes, CardLayout] = {}
    for aid, name in by_aid.items():
        if name not in registry:
            raise ValueError(f"unknown card layout {name!r} for AID {aid}")
        result[bytes.fromhex(aid)] = registry[name]
    return result
