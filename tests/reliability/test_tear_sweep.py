# SPDX-License-Identifier: Apache-2.0
"""The tear sweep (campaign part 1) at SMOKE level, its tear hook, and its invariant checker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from lab.reliability.report import Level, PartResult
from lab.reliability.tearing import sweep as tear_sweep
from lab.reliability.tearing.invariants import History, Tap, check
from lab.reliability.tearing.scenarios import (
    CONFIG,
    PLACES,
    SCENARIOS,
    CardSlot,
    TearingSamConnection,
    load_rules,
    make_fleet,
)
from readers.base import CardRemovedError
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.software.dispatch import SoftwareSam
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome
from validator.journal.entry import JournalEntry
from validator.journal.writer import GENESIS, canonical, journal_files, line_hash

START = dt.datetime(2026, 3, 2, 8, 0)
# The violations of the multiple-session scenario start with this (the sweep found a paid entry
# lost there; validator.engine.attempt now grants on the earlier, committed session).
MULTI_SESSION = "multi_session:"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> PartResult:
    """One SMOKE run of the part, shared by the tests of this module."""
    messages: list[str] = []
    return tear_sweep.run(Level.SMOKE, tmp_path_factory.mktemp("tear"), messages.append)


@pytest.fixture(scope="module")
def rules() -> FareRules:
    """The shipped fare rules."""
    return load_rules()


def test_smoke_sweep_tears_every_scenario(smoke: PartResult) -> None:
    """Every scenario is torn at card and SAM APDUs, and some tears leave the outcome unknown."""
    assert smoke.part == "tear-sweep"
    assert set(smoke.figures) == {s.name for s in SCENARIOS}
    for name, figures in smoke.figures.items():
        assert isinstance(figures, dict)
        pki = name.startswith("pki")  # the card signs: no SAM APDU at all
        assert figures["card_apdus"] > 0 and (figures["sam_apdus"] == 0) is pki, name
        assert figures["torn_taps"] > 0, name
    assert smoke.figures["multi_session"]["sessions"] == 2  # type: ignore[index]
    assert "10 scenarios" in smoke.tried
    assert sum(f["unknown"] for f in smoke.figures.values()) > 0  # type: ignore[index]


def test_smoke_sweep_keeps_every_promise(smoke: PartResult) -> None:
    """No invariant broken by any torn tap."""
    assert smoke.violations == []


def test_multiple_session_tears_keep_every_promise(smoke: PartResult) -> None:
    """A multiple-session tap torn in its second session neither loses nor double-charges."""
    assert not [v for v in smoke.violations if v.startswith(MULTI_SESSION)]


def test_sam_tear_pulls_the_card_at_the_chosen_sam_apdu(rules: FareRules) -> None:
    """Armed for SAM APDU 2 (before), the card leaves when that APDU is sent, not earlier."""
    sam_reader = EmulatedReader("sam")
    sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    sam = TearingSamConnection(sam_reader.connect())
    slot = CardSlot("card")
    slot.reader.insert(SCENARIOS[1].card())
    sam.arm(slot, 2, FaultKind.REMOVED_BEFORE)
    get_challenge = bytes.fromhex("0084000004")
    sam.transmit(get_challenge)
    assert slot.reader.present
    sam.transmit(get_challenge)
    assert not slot.reader.present and sam.hit


def test_sam_tear_after_waits_for_the_next_apdu(rules: FareRules) -> None:
    """An "after" SAM tear removes the card at the next card APDU, which then fails."""
    fleet = make_fleet(SCENARIOS[1], rules, None)
    validator = fleet["A"]
    card = SCENARIOS[1].card()
    validator.slot.reader.insert(card)
    connection = validator.slot.connect()
    validator.sam.arm(validator.slot, 1, FaultKind.REMOVED_AFTER)
    validator.sam.transmit(bytes.fromhex("0084000004"))
    assert validator.slot.reader.present
    with pytest.raises(CardRemovedError):
        connection.transmit(bytes.fromhex("00A4040009315449432E4943413100"))


def _tap(
    validator: str, seconds: int, outcome: str, debit: int = 0, *, mac_verified: bool | None = None
) -> Tap:
    """A fabricated tap: MAC verified when it opens the gate unless told otherwise."""
    opens = outcome in ("granted", "recovered")
    return Tap(
        validator,
        PLACES[validator],
        START + dt.timedelta(seconds=seconds),
        outcome,
        opens if mac_verified is None else mac_verified,
        debit,
        event=debit > 0 or outcome == "granted",
        seq=1,
    )


def _entry(outcome: str) -> JournalEntry:
    """A journal entry of seq 1 with ``outcome`` and no verified card MAC."""
    return JournalEntry(1, "2026-03-02T08:00:00", GENESIS, outcome=outcome, mac_verified=False)


def _clean() -> History:
    """A correct history: torn before Close at A (nothing paid), granted at B, granted at A."""
    old = frozenset({("EF19.1", b"\x0a")})
    new = frozenset({("EF19.1", b"\x09")})
    return History(
        label="fabricated",
        taps=[
            _tap("A", 0, "card_lost"),
            _tap("B", 15, "granted", 1),
            _tap("A", 10800, "granted", 1),
        ],
        torn=0,
        paid=2,
        before=old,
        after=old,
        allowed=[old, new],
        untorn_debit=1,
        untorn_opens=True,
        journals={"A": [_entry("card_lost")]},
    )


def test_checker_passes_a_correct_history(rules: FareRules) -> None:
    """The fabricated correct history has no violation (so the cases below test one thing)."""
    assert check(_clean(), rules) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (  # the torn tap committed and the retry charged again: a double debit
            {
                "taps": [
                    _tap("A", 0, "granted", 1),
                    _tap("B", 15, "granted", 1),
                    _tap("A", 10800, "granted", 1),
                ],
                "paid": 3,
            },
            "same group: the entry took 2 units",
        ),
        (  # a gate opened on an unverified card MAC, as the journal says
            {"journals": {"B": [_entry("granted")]}},
            "gate without MAC",
        ),
        (  # the processor says granted without a verified MAC
            {
                "taps": [
                    _tap("A", 0, "card_lost"),
                    _tap("B", 15, "granted", 1, mac_verified=False),
                    _tap("A", 10800, "granted", 1),
                ]
            },
            "granted without a verified card MAC",
        ),
        (  # the card lost a unit that no granted or committed tap accounts for
            {"paid": 3},
            "the card lost 3 units",
        ),
        (  # half of the new image: one cell new, the other old
            {"after": frozenset({("EF19.1", b"\x09"), ("EF08.1", b"\x01")})},
            "neither old nor new",
        ),
        (  # an unknown journaled at A and never resolved
            {"journals": {"A": [_entry("unknown")]}},
            "unknown seq 1 never resolved",
        ),
        (  # a recovery at another station group
            {
                "taps": [
                    _tap("A", 0, "granted", 1),
                    _tap("C", 15, "recovered"),
                    _tap("A", 10800, "granted", 1),
                ],
                "paid": 2,
            },
            "recovered a validation made at 101",
        ),
        (  # a recovery three hours after the validation
            {
                "taps": [
                    _tap("A", 0, "granted", 1),
                    _tap("B", 15, "denied"),
                    _tap("A", 10800, "recovered"),
                ],
                "paid": 1,
            },
            "recovered 180 min after",
        ),
        (  # the torn tap let in a card that the untorn tap refuses
            {
                "untorn_opens": False,
                "untorn_debit": 0,
                "taps": [
                    _tap("A", 0, "granted"),
                    _tap("B", 15, "denied"),
                    _tap("A", 10800, "granted", 1),
                ],
                "paid": 1,
            },
            "where the untorn tap is refused",
        ),
        (  # a journal whose chain breaks
            {"journal_problems": {"C": ["chain_break at line 2"]}},
            "journal C does not verify",
        ),
    ],
)
def test_checker_reports_broken_promises(
    rules: FareRules, change: dict[str, object], expected: str
) -> None:
    """Each fabricated broken promise is reported by the invariant checker."""
    found = check(dataclasses.replace(_clean(), **change), rules)  # type: ignore[arg-type]
    assert any(expected in line for line in found), found


def test_sweep_catches_recovery_switched_off(rules: FareRules, tmp_path: Path) -> None:
    """With recovery off, a season pass torn after Close is refused at B: the sweep says so."""
    broken = rules.model_copy(update={"recovery_window_minutes": 0})
    scenario = SCENARIOS[0]
    reference = tear_sweep.untorn(scenario, broken)
    found: list[str] = []
    for index in range(1, reference.card_apdus + 1):
        fault = Fault(FaultKind.REMOVED_DURING, index)
        history = tear_sweep.run_point(
            scenario, reference, fault, "B", broken, tmp_path / str(index)
        )
        found += check(history, broken)
    assert any("the entry never opened the gate" in line for line in found), found


def test_a_tap_torn_in_its_second_session_lets_the_payer_in(rules: FareRules) -> None:
    """Torn at the second Open of a multiple-session tap: the first session already took the
    trip and wrote the event (MAC verified), so the gate opens; that session was left
    unratified, so the retry is a recovery, not charged (as after a lost ratification)."""
    scenario = next(s for s in SCENARIOS if s.name == "multi_session")
    fleet = make_fleet(scenario, rules, None)
    card = scenario.card()
    trips = card.counter(0x19, 1)
    torn = fleet["A"].tap(card, START, Fault(FaultKind.REMOVED_BEFORE, 13))  # the second Open
    assert torn.result.outcome is Outcome.GRANTED and torn.result.mac_verified
    assert torn.result.debit == 1 and card.counter(0x19, 1) == trips - 1
    again = fleet["A"].tap(card, START + dt.timedelta(seconds=15))
    assert again.result.outcome is Outcome.RECOVERED and card.counter(0x19, 1) == trips - 1


def test_a_journal_entry_that_does_not_read_is_a_journal_problem(tmp_path: Path) -> None:
    """The sweep reads its journals through JournalEntry: a malformed entry is a problem."""
    release = Path(__file__).parents[1] / "validator" / "journal" / "journals" / "release-cd1443f"
    (source,) = journal_files(release)
    lines = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    lines[3]["station"] = "101"
    prev = GENESIS
    with open(tmp_path / source.name, "w", encoding="utf-8") as handle:
        for entry in lines:  # chained again, without the journal key: only the type is wrong
            entry.pop("hmac")
            entry["prev"] = prev
            handle.write(canonical(entry) + "\n")
            prev = line_hash(canonical(entry))
    entries, problems = tear_sweep._journal(tmp_path)
    assert problems == ["malformed entry at line 4: station: expected an integer, got a string"]
    assert len(entries) == len(lines) - 1
    assert all(isinstance(entry, JournalEntry) for entry in entries)
