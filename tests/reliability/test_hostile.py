# SPDX-License-Identifier: Apache-2.0
"""The hostile-cards part at SMOKE level, and the hostile layers on their own."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from calypso.commands import CardIns
from lab.reliability.hostile import cards as hostile
from lab.reliability.hostile.card import (
    HostileCard,
    Mutation,
    RewriteAnswers,
    Slow,
    mutate,
)
from lab.reliability.hostile.cards import Bench
from lab.reliability.hostile.cases import Case, Fleet, personalise
from lab.reliability.report import Level, PartResult
from validator.engine.outcome import Outcome


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> PartResult:
    """One SMOKE run of the part, shared by the tests of this module."""
    return hostile.run(Level.SMOKE, tmp_path_factory.mktemp("hostile"), lambda _: None)


@pytest.fixture
def fleet() -> Fleet:
    """The shipped demo fleet, seeded."""
    return Fleet(hostile.CONFIG / "cards", seed=3)


def test_smoke_tries_every_family(smoke: PartResult) -> None:
    """The SMOKE run taps scripted, sweep and random hostile cards, journaled one by one."""
    figures = smoke.figures
    taps, raised = figures["taps"], figures["process_raised"]
    assert isinstance(taps, int) and isinstance(raised, int) and taps >= 150
    assert figures["journal_entries"] == taps - raised
    outcomes = figures["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes.get("granted", 0) > 0 and outcomes.get("denied", 0) > 0


def test_smoke_has_no_violation(smoke: PartResult) -> None:
    """No hostile card crashes the validator, opens the gate on a lie, or goes unjournaled."""
    assert smoke.violations == []


@pytest.mark.parametrize("sw", [0x6700, 0x6985, 0x6B00])
def test_a_lying_refusal_of_close_never_costs_two_trips(
    tmp_path: Path, fleet: Fleet, sw: int
) -> None:
    """A card that commits, then answers Close with a refusal, pays one trip at most."""
    bench = Bench(tmp_path, seed=1)
    bench.processor.rules = bench.processor.rules.model_copy(update={"anti_passback_minutes": 0})
    card = fleet.card("multi_trip")
    lie = RewriteAnswers(0x8E, lambda raw: raw[:-2] + sw.to_bytes(2, "big"), last=1)
    bench.run(Case("lying_close", HostileCard(card, lie), [card]))
    bench.close()
    assert card.counter(0x19, 1) >= 9


def test_mutations_damage_the_answer() -> None:
    """Each mutation changes the answer, deterministically for a seed."""
    raw = bytes(range(20)) + b"\x90\x00"
    for how in Mutation:
        first = mutate(raw, how, random.Random(1))
        assert first != raw
        assert first == mutate(raw, how, random.Random(1))


def test_honest_layers_are_transparent(tmp_path: Path, fleet: Fleet) -> None:
    """A HostileCard with no lie is granted like the card itself, and debited once."""
    bench = Bench(tmp_path, seed=1)
    card = fleet.card("multi_trip")
    record = bench.run(Case("honest", HostileCard(card), [card]))
    bench.close()
    assert record is not None and record.result.outcome is Outcome.GRANTED
    assert card.counter(0x19, 1) == 9
    assert bench.tally.violations == []


def test_check_flags_value_lost_without_a_journaled_debit(tmp_path: Path, fleet: Fleet) -> None:
    """The ledger check flags a touched card that lost value the tap never sent."""
    bench = Bench(tmp_path, seed=1)
    card, other = fleet.card("multi_trip"), fleet.card("multi_trip")
    case = Case("behind_the_back", HostileCard(card), [card, other])
    before = {id(c): (hostile.ledger(c), c.transaction_counter) for c in case.real}
    record = bench.run(Case("honest", case.card, [card]))
    bench.close()
    assert record is not None
    personalise(other, {(0x19, 1): bytes.fromhex("000003")})  # debited behind the back
    problems = hostile.check(case, record, before, hostile=True, tally=bench.tally)
    assert any("lost {'19/1': 7}" in p for p in problems)


def test_check_flags_a_forged_card_that_opens(tmp_path: Path, fleet: Fleet) -> None:
    """A case that must stay shut is a violation as soon as its tap opens the gate."""
    bench = Bench(tmp_path, seed=1)
    card = fleet.card("multi_trip")
    bench.run(Case("forged", HostileCard(card), [card], must_stay_shut=True))
    bench.close()
    assert any("forged card opened the gate" in v for v in bench.tally.violations)


def test_damaged_read_is_never_granted(tmp_path: Path, fleet: Fleet) -> None:
    """Read Records answers changed inside the session: no gate, nothing taken from the card."""
    bench = Bench(tmp_path, seed=1)
    card = fleet.card("multi_trip")
    # The last data byte of each read answer (the event log's padding, a counter's low byte).
    layer = RewriteAnswers(
        CardIns.READ_RECORDS, lambda raw: raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:]
    )
    record = bench.run(Case("flip_read", HostileCard(card, layer), [card]))
    bench.close()
    assert record is not None
    assert not record.result.outcome.opens_gate
    assert record.result.outcome in (Outcome.DENIED, Outcome.ERROR)
    assert card.counter(0x19, 1) == 10
    assert bench.tally.violations == []


def test_slow_card_tap_ends_within_budget(tmp_path: Path, fleet: Fleet) -> None:
    """A card answering one APDU after 1.5 budgets still gets its tap ended within budget."""
    bench = Bench(tmp_path, seed=1)
    card = fleet.card("multi_trip")
    bench.run(Case("slow", HostileCard(card, Slow(bench.budget_s * 1.5, at=4)), [card]))
    bench.close()
    assert bench.tally.taps == 1
    assert bench.tally.slowest_s <= bench.budget_s + hostile.MARGIN_S


def test_hostile_pki_cards_refused_with_their_reason(tmp_path: Path, fleet: Fleet) -> None:
    """Each scripted PKI case is refused for what is wrong with it, and the card keeps its trips."""
    from lab.reliability.hostile.cases import _pki

    expected = {
        "pki_forged_signature": "card_signature_invalid",
        "pki_other_serial": "certificate_mismatch",
        "pki_wrong_key_reference": "unknown_issuer",
        "pki_expired_ca": "certificate_expired",
        "pki_revoked_ca": "certificate_revoked",
        "pki_truncated_certificate": "certificate_malformed",
        "pki_random_signature": "card_signature_invalid",
        "pki_replayed_signature": "card_signature_invalid",
    }
    bench = Bench(tmp_path, seed=1)
    seen = {}
    for case in _pki(fleet):
        record = bench.run(case)
        assert record is not None
        seen[case.name] = record.result.reason
        assert not record.result.outcome.opens_gate, case.name
    bench.close()
    assert seen == expected
    assert bench.tally.violations == []
