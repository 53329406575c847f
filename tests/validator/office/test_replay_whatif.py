# SPDX-License-Identifier: Apache-2.0
"""What-if: the same taps replayed with another fare file, checked against a hand count.

Four taps at station 101 on Monday 2 March 2026, with the shipped rules:

1. 08:00 carnet (10 trips): granted, 1 trip debited, 9 left;
2. 08:05 season pass: granted, nothing debited;
3. 09:00 the carnet again (8 left after it): granted, 1 trip debited;
4. 09:10 an empty card: denied (clean card).

The what-if file sells only the carnet, at 2 trips per entry. By hand: tap 1 debits 2 (8 left),
tap 2 is refused (tariff 1 not sold), tap 3 debits 2 (7 left, the card read 9), tap 4 is still
refused. Three decisions change; revenue goes from 2 to 4 units (+2), ridership from 3 to 2.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from conftest import CONFIG, DEMO_AID, make_card
from test_replay import entries, run_replay

from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.cli.main import main
from validator.cli.office import EXIT_BAD_INPUT
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.tap import TapProcessor
from validator.journal.writer import Journal
from yamlconfig import load_model

MONDAY = dt.datetime(2026, 3, 2)
WHAT_IF = """\
network: demo
station: {location_id: 101, name: Central, zone: 1}
station_groups: {central: [101, 102], harbour: [201]}
products:
  - {tariff: 2, kind: multi_trip, name: 10-trip carnet, units_per_trip: 2}
anti_passback_minutes: 1
recovery_window_minutes: 1
transfer_minutes: 60
"""


def write_four_taps(directory: Path) -> None:
    """The four taps of the module docstring, journaled by a real TapProcessor."""
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    sam_reader = EmulatedReader("sam")
    sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    channel = ApduChannel(sam_reader.connect(), label="sam")
    carnet = make_card("multi_trip")
    taps = [
        (carnet, dt.time(8, 0)),
        (make_card("season_pass"), dt.time(8, 5)),
        (carnet, dt.time(9, 0)),
        (make_card("empty"), dt.time(9, 10)),
    ]
    reader = EmulatedReader("card")
    with Journal(directory) as journal:
        processor = TapProcessor(LegacySam(channel), rules, [DEMO_AID], "gate-7", journal)
        for card, at in taps:
            reader.insert(card)
            processor.process(reader.connect(), TapContext(dt.datetime.combine(MONDAY, at), 101))
            reader.remove()


def test_what_if_fares(tmp_path: Path) -> None:
    """The changed decisions, revenue and ridership match the hand count."""
    directory = tmp_path / "journal"
    write_four_taps(directory)
    fares = tmp_path / "what-if.yaml"
    fares.write_text(WHAT_IF, encoding="utf-8")
    code, base = run_replay(str(directory))
    assert code == 0 and base["decisions"]["same"] == 4 and base["decisions"]["different"] == 0
    assert base["decisions"]["revenue"] == {"recorded": 2, "replayed": 2, "difference": 0}
    code, doc = run_replay(str(directory), "--fares", str(fares))
    assert code == 0
    decisions = doc["decisions"]
    assert decisions["fares"] == str(fares)
    assert (decisions["same"], decisions["different"]) == (1, 3)
    assert decisions["revenue"] == {"recorded": 2, "replayed": 4, "difference": 2}
    assert decisions["ridership"] == {"recorded": 3, "replayed": 2, "difference": -1}
    first, second, third = decisions["differences"]
    assert [d["seq"] for d in (first, second, third)] == [e["seq"] for e in entries(directory)[:3]]
    assert first["recorded_explanation"] == "10-trip carnet: 1 debited, 9 left"
    assert first["replayed_explanation"] == "10-trip carnet: 2 debited, 8 left"
    assert first["replayed"]["debit"] == 2 and first["recorded"]["debit"] == 1
    assert second["recorded"]["verdict"] == "grant" and second["replayed"]["verdict"] == "deny"
    assert second["replayed_explanation"] == "contract 1: tariff 1 is not sold here"
    assert third["replayed"]["remaining"] == 7 and third["recorded"]["remaining"] == 8
    assert all(d["validator"] == "gate-7" for d in decisions["differences"])
    assert decisions["incomplete_state"] == 0


def test_what_if_fares_checked_like_run(tmp_path: Path) -> None:
    """A what-if file load_fares refuses (a station id wider than Intercode's 16 bits) exits 2."""
    fares = tmp_path / "what-if.yaml"
    fares.write_text(WHAT_IF.replace("location_id: 101", "location_id: 70000"), encoding="utf-8")
    load_model(fares, FareRules)  # the schema alone accepts it: only the layout check refuses
    journal = tmp_path / "journal"
    write_four_taps(journal)
    result = CliRunner().invoke(
        main, ["replay", str(journal), "--config", str(CONFIG), "--fares", str(fares)]
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"{fares}: station.location_id: 70000 does not fit the 16 bits" in result.stderr
