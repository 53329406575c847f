# SPDX-License-Identifier: Apache-2.0
"""A closing intent left without its tap's entry becomes an unknown tap, resolved by the card
(issue 20): at start-up after a crash, or before the next tap when the entry could not be written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CONFIG, make_card
from test_journal_reserve import _NoReserve
from test_restore_pending import NOON, _processor, _tap

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from lab.reliability.faults.infra_disk import Disk, DiskJournal
from readers.base import CardRemovedError, PassThroughHandler
from validator.cli.main import main
from validator.engine.outcome import Outcome
from validator.engine.recording import TapNotServedError
from validator.engine.tap import OUTCOME_NOT_JOURNALED
from validator.journal.pending import restore_pending
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, PendingIntent, journal_files

EVENT = (0x08, 1)  # the card's last event record: written only by a committed validation
LATER = NOON + dt.timedelta(seconds=30)


class _Killed(BaseException):
    """The validator process dies here (SIGKILL, a power cut): nothing after it runs."""


class _DiesBeforeTheEntry(Journal):
    """A validator killed after the card's Close, before the tap's entry is written."""

    armed = True

    def append(self, entry: Mapping[str, Any], *, reserve: bool = True) -> dict[str, Any]:
        if self.armed and self.report.last_seq and "kind" not in entry:
            raise _Killed
        return super().append(entry, reserve=reserve)


class _DiesBeforeClose(Journal):
    """A validator killed once its closing intent is durable, before Close is sent."""

    def write_intent(self, intent: Mapping[str, Any]) -> PendingIntent:
        writing = super().write_intent(intent)

        class Dying(PendingIntent):
            def wait(self) -> dict[str, Any]:
                writing.wait()
                raise _Killed

        return Dying(self, writing.written, writing._flight)


class _LostClose(PassThroughHandler[CardEmulator]):
    """A card pulled as Close Secure Session is sent: it never gets it, the answer is lost."""

    def process(self, apdu: bytes) -> bytes:
        """The card's answer, unless the command is Close (then the card is gone)."""
        if apdu[1] == CardIns.CLOSE_SECURE_SESSION and len(apdu) > 5:
            self.inner.power_off()
            raise CardRemovedError("removed as Close was sent")
        return super().process(apdu)


def records(directory: Path) -> list[dict[str, Any]]:
    """Every record of the journal, parsed."""
    return [
        json.loads(line)
        for path in journal_files(directory)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def crash(directory: Path, journal_class: type[Journal], card: Any) -> None:
    """One tap of ``card`` at NOON by a validator that dies in it."""
    with journal_class(directory) as journal:
        with pytest.raises(_Killed):
            _tap(_processor(journal), card, NOON)


def test_a_committed_tap_whose_entry_was_never_written_is_resolved_as_paid(
    tmp_path: Path,
) -> None:
    """Killed after Close: start-up journals the intent as unknown; the card, back, says paid."""
    card = make_card("multi_trip")
    before = card.read_record(*EVENT)
    crash(tmp_path, _DiesBeforeTheEntry, card)
    assert card.read_record(*EVENT) != before  # the card committed the tap
    (intent,) = records(tmp_path)
    assert intent["kind"] == "intent" and intent["debit"] > 0
    with Journal(tmp_path) as journal:
        processor = _processor(journal)
        assert restore_pending(processor, journal) == 1
        unknown = records(tmp_path)[-1]
        assert unknown["outcome"] == "unknown" and unknown["reason"] == OUTCOME_NOT_JOURNALED
        assert unknown["intent"] == intent["seq"] == 1 and unknown["seq"] == 2
        assert (unknown["card"], unknown["debit"], unknown["writes"]) == (
            intent["card"],
            intent["debit"],
            intent["writes"],
        )
        back = _tap(processor, card, LATER)
    assert back.resolved == {"seq": 2, "tap": 2, "committed": True, "debit": intent["debit"]}
    assert back.result.outcome is not Outcome.GRANTED or back.result.debit == 0  # not twice
    report = verify_journal(tmp_path)
    assert report.ok and (report.entries, report.intents) == (2, 1)


def test_a_tap_killed_before_close_is_resolved_as_not_paid(tmp_path: Path) -> None:
    """Killed once the intent is durable, before Close: unknown at start-up, then not paid."""
    card = make_card("multi_trip")
    before = card.read_record(*EVENT)
    crash(tmp_path, _DiesBeforeClose, card)
    assert card.read_record(*EVENT) == before  # Close never sent: the card rolled back
    with Journal(tmp_path) as journal:
        processor = _processor(journal)
        assert restore_pending(processor, journal) == 1
        back = _tap(processor, card, LATER)
    assert back.resolved is not None and back.resolved["committed"] is False
    assert back.resolved["debit"] == 0
    assert back.result.outcome is Outcome.GRANTED and back.result.debit > 0  # paid once


def test_start_up_journals_an_open_intent_once(tmp_path: Path) -> None:
    """A second start-up finds the unknown tap already written: nothing more is appended."""
    crash(tmp_path, _DiesBeforeTheEntry, make_card("multi_trip"))
    for _ in range(2):
        with Journal(tmp_path) as journal:
            assert restore_pending(_processor(journal), journal) == 1
    assert [r.get("outcome") for r in records(tmp_path)] == [None, "unknown"]


def test_an_earlier_unknown_the_crashed_tap_settled_is_settled_by_its_intent(
    tmp_path: Path,
) -> None:
    """The crashed tap had read the card of an earlier unknown tap: the intent carries that
    resolution, and the unknown made of it at start-up settles it."""
    card = make_card("multi_trip")
    with _DiesBeforeTheEntry(tmp_path) as journal:
        journal.armed = False
        first = _tap(_processor(journal), _LostClose(card), NOON - dt.timedelta(seconds=20))
        assert first.result.outcome is Outcome.UNKNOWN
    with _DiesBeforeTheEntry(tmp_path) as journal:
        processor = _processor(journal)
        assert restore_pending(processor, journal) == 1
        with pytest.raises(_Killed):
            _tap(processor, card, NOON)
    intent = records(tmp_path)[-1]
    assert intent["kind"] == "intent"
    assert intent["resolves"] == {
        "seq": first.seq,
        "tap": first.seq,
        "committed": False,
        "debit": 0,
    }
    with Journal(tmp_path) as journal:
        processor = _processor(journal)
        assert restore_pending(processor, journal) == 1
        unknown = records(tmp_path)[-1]
        assert unknown["resolves"] == intent["resolves"]
        (pending,) = processor.pending.values()
        assert pending.seq == unknown["seq"]


def test_a_running_validator_settles_an_intent_whose_entry_failed(tmp_path: Path) -> None:
    """The tap's entry could not be written after Close: before the next tap is served, the
    intent is journaled as unknown and pending; the card resolves it as paid."""
    disk = Disk()
    card, other = make_card("multi_trip"), make_card("season_pass")
    with DiskJournal(tmp_path, disk) as journal:
        journal.__class__ = _NoReserve
        processor = _processor(journal)
        with pytest.raises(TapNotServedError) as raised:
            _tap(processor, card, NOON)
        assert not raised.value.journaled and raised.value.debit > 0
        disk.free = None  # room again
        journal.__class__ = DiskJournal
        _tap(processor, other, LATER)
        back = _tap(processor, card, LATER + dt.timedelta(minutes=1))
    kinds = [(r.get("kind"), r.get("outcome"), r.get("intent")) for r in records(tmp_path)]
    assert kinds[:2] == [("intent", None, None), (None, "unknown", 1)]
    assert back.resolved is not None and back.resolved["seq"] == 2
    assert back.resolved["committed"] is True


def _replay(directory: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["replay", str(directory), "--config", str(CONFIG), "--json"])
    return result.exit_code, json.loads(result.output)


class TestReplay:
    """Replay follows intents to their taps, counts those settled at a restart, and reports an
    intent another card's record follows."""

    def test_an_intent_settled_at_restart_is_counted_and_resolved(self, tmp_path: Path) -> None:
        """The crash's journal replays clean: one intent, settled at restart, unknown resolved."""
        card = make_card("multi_trip")
        crash(tmp_path, _DiesBeforeTheEntry, card)
        with Journal(tmp_path) as journal:
            processor = _processor(journal)
            restore_pending(processor, journal)
            _tap(processor, card, LATER)
        code, doc = _replay(tmp_path)
        assert code == 0 and doc["integrity"]["ok"]
        total = sum(1 for r in records(tmp_path) if r.get("kind") == "intent")
        assert doc["intents"] == {"total": total, "settled_at_restart": 1, "open_at_end": []}
        assert doc["unknown"]["total"] == doc["unknown"]["resolved"] == 1
        assert doc["unknown"]["committed"] == 1

    def test_an_open_intent_at_the_end_is_listed(self, tmp_path: Path) -> None:
        """A journal that ends with an intent (not restarted yet) lists it; integrity holds."""
        crash(tmp_path, _DiesBeforeTheEntry, make_card("multi_trip"))
        code, doc = _replay(tmp_path)
        assert code == 0 and doc["integrity"]["ok"] and doc["entries"] == 0
        (opened,) = doc["intents"]["open_at_end"]
        assert opened["seq"] == 1 and opened["card"] == make_card("multi_trip").serial.hex().upper()

    def test_an_intent_followed_by_another_card_is_unsettled(self, tmp_path: Path) -> None:
        """Another card's tap after an intent, with no outcome of its own: exit 1."""
        crash(tmp_path, _DiesBeforeTheEntry, make_card("multi_trip"))
        with Journal(tmp_path) as journal:  # no restore: the intent is left open
            _tap(_processor(journal), make_card("season_pass"), LATER)
        code, doc = _replay(tmp_path)
        assert code == 1 and doc["integrity"]["counts"] == {"unsettled_intent": 1}
        (problem,) = doc["integrity"]["breaks"]
        assert problem["seq"] == 1 and "another card" in problem["detail"]
