# SPDX-License-Identifier: Apache-2.0
"""The process-crash part at smoke level: a few SIGKILLs and power cuts, every invariant held."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from lab.reliability.faults import crashes
from lab.reliability.report import Level
from validator.bench.scenarios import Bench
from validator.journal.writer import Journal, canonical, journal_files


def test_smoke_crashes_keep_every_invariant(tmp_path: Path) -> None:
    """Five crashes of the validator process: nothing lost, cards whole, journal verifies."""
    logged: list[str] = []
    result = crashes.run(Level.SMOKE, tmp_path, logged.append)
    assert result.violations == []
    figures = {name: int(str(value)) for name, value in result.figures.items()}
    assert figures["timed_kills"] + figures["power_cuts"] == 5
    assert figures["taps_begun"] > 0 and figures["taps_decided"] > 0
    assert figures["cards_old_image"] + figures.get("cards_new_image", 0) > 0
    assert figures.get("committed_not_journaled", 0) == 0  # issue 20: the intent records it
    assert result.part == crashes.NAME and "SIGKILL" in result.tried


def test_an_sv_tap_replayed_with_another_sam_gives_the_same_card_data() -> None:
    """The "after" image of a crashed SV tap is comparable although the replay's SAM differs:
    the SAM's signature and transaction number are left out, balance and logs are not."""
    profile = crashes.CONFIG / "cards" / "sv_purse.yaml"
    bench = Bench(crashes.CONFIG, latency=False)
    for _ in range(3):  # the crashed child's SAM had already signed other SV debits
        bench.tap(CardEmulator.from_profile(profile), dt.datetime(2026, 3, 2, 8, 0), engine=True)
    card = CardEmulator.from_profile(profile)
    before = CardEmulator(card.profile, random.Random(2).randbytes)
    before.restore(card.snapshot())
    when = dt.datetime(2026, 3, 2, 9, 0)
    result, _ = bench.tap(card, when, engine=True)
    assert result.outcome.value == "granted"
    replayed = crashes._data(crashes._complete_tap(before, when))
    assert replayed == crashes._data(card)
    assert replayed != crashes._data(before)


def test_an_entry_that_does_not_read_is_a_violation(tmp_path: Path) -> None:
    """The campaign reads the journal through JournalEntry: a malformed entry is a violation."""
    release = Path(__file__).parents[1] / "validator" / "journal" / "journals" / "release-cd1443f"
    (source,) = journal_files(release)
    lines = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    lines[2]["outcome"] = 1
    (tmp_path / "journal").mkdir()
    text = "".join(canonical(entry) + "\n" for entry in lines)
    (tmp_path / "journal" / source.name).write_text(text, encoding="utf-8")
    campaign = crashes.Campaign(tmp_path, lambda _: None, random.Random(1))
    entries = campaign._entries_after(0)
    assert sorted(entries) == [entry["seq"] for entry in lines if entry["seq"] != 3]
    assert campaign.violations == [
        "seq 3: malformed entry: outcome: expected a string, got an integer"
    ]


def test_an_intent_another_card_follows_is_a_violation(tmp_path: Path) -> None:
    """A closing intent followed by another card's tap, with no outcome of its own, is found."""
    intent = {"card": "00000000C0FFEE01", "writes": ["0030"], "debit": 1}
    with Journal(tmp_path / "journal") as journal:
        journal.write_intent(intent).wait()
        journal.append({"card": "00000000C0FFEE02", "outcome": "granted", "debit": 1})
        journal.write_intent(intent).wait()  # the last one: open, not a violation
    campaign = crashes.Campaign(tmp_path, lambda _: None, random.Random(1))
    campaign.check_unknowns()
    assert campaign.violations == [
        "closing intent seq 1 (card 00000000C0FFEE01) is followed by seq 2 of card "
        "00000000C0FFEE02: its tap has no outcome"
    ]
    assert campaign.figures["intents"] == 2 and campaign.figures["intents_open_at_end"] == 1
