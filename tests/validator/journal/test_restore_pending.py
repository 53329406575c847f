# SPDX-License-Identifier: Apache-2.0
"""Unknown taps survive a restart: the new process rebuilds them from the journal."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
from conftest import CONFIG, make_card
from structlog.testing import capture_logs

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from readers.base import ApduHandler, CardRemovedError, PassThroughHandler
from readers.emulated import EmulatedReader
from sam.software.dispatch import SoftwareSam
from sam.software.link import in_process_sam
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.pending import restore_pending
from validator.journal.writer import Journal, canonical, journal_files
from yamlconfig import load_model

NOON = dt.datetime(2026, 3, 2, 12, 0)


class _TornClose(PassThroughHandler[CardEmulator]):
    """A card pulled while it executes Close Secure Session: it commits, the answer is lost."""

    def process(self, apdu: bytes) -> bytes:
        """The card's answer, lost with the card when the command is Close."""
        answer = super().process(apdu)
        if apdu[1] == CardIns.CLOSE_SECURE_SESSION:
            self.inner.power_off()
            raise CardRemovedError("removed during Close")
        return answer


def _processor(journal: Journal) -> TapProcessor:
    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    sam = SoftwareSam.from_keys(
        CONFIG / "keys.sim.yaml", random.Random(3).randbytes, allow_simulation=True
    )
    station = build_station(
        CONFIG,
        settings,
        reader=EmulatedReader("card"),
        sam=in_process_sam(sam),
        journal=journal,
        rules=rules,
    )
    return station.processor


def _tap(processor: TapProcessor, card: ApduHandler, when: dt.datetime) -> TapRecord:
    reader = EmulatedReader("card")
    reader.insert(card)
    try:
        return processor.process(reader.connect(), TapContext(when, 101))
    finally:
        reader.remove()


def test_unknown_tap_resolved_by_the_next_process(tmp_path: Path) -> None:
    """An unknown journaled before a restart is resolved (committed) when its card returns."""
    card = make_card("multi_trip")
    with Journal(tmp_path) as journal:
        first = _processor(journal)
        unknown = _tap(first, _TornClose(card), NOON)
        assert unknown.result.outcome is Outcome.UNKNOWN
    with Journal(tmp_path) as journal:
        second = _processor(journal)
        assert restore_pending(second, journal) == 1
        assert second.taps == journal.last_seq == 2  # the closing intent, then the tap
        back = _tap(second, card, NOON + dt.timedelta(seconds=20))
    assert back.resolved == {
        "seq": 2,
        "tap": 2,
        "committed": True,
        "debit": unknown.result.sent_debit,
    }
    assert back.index == 3


def test_resolved_unknowns_are_not_restored(tmp_path: Path) -> None:
    """An unknown already resolved in the journal is not pending after a restart."""
    card = make_card("multi_trip")
    with Journal(tmp_path) as journal:
        processor = _processor(journal)
        _tap(processor, _TornClose(card), NOON)
        resolved = _tap(processor, card, NOON + dt.timedelta(seconds=20))
        assert resolved.resolved is not None
    with Journal(tmp_path) as journal:
        again = _processor(journal)
        assert restore_pending(again, journal) == 0
        assert again.pending == {}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("transaction_counter", "197776", "transaction_counter: expected an integer or null"),
        ("schema", 3, "schema: version 3 is newer than this release knows (2)"),
    ],
)
def test_a_malformed_unknown_entry_is_not_restored_and_is_logged(
    tmp_path: Path, field: str, value: object, error: str
) -> None:
    """An unknown tap whose entry does not read (a field's type, a newer schema) is logged."""
    with Journal(tmp_path) as journal:
        unknown = _tap(_processor(journal), _TornClose(make_card("multi_trip")), NOON)
        assert unknown.result.outcome is Outcome.UNKNOWN
    (path,) = journal_files(tmp_path)
    intent, line = path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    entry[field] = value
    path.write_text(f"{intent}\n{canonical(entry)}\n", encoding="utf-8")
    with Journal(tmp_path) as journal, capture_logs() as logs:
        again = _processor(journal)
        assert restore_pending(again, journal) == 0
    (line,) = [log for log in logs if log["event"] == "pending_entry_unreadable"]
    assert line["seq"] == 2 and line["error"].startswith(error)
